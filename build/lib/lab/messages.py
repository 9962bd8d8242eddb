"""The job message: `{jobId, runId, seq, kind, attempt, createdAt, payload}` as JSON.

Parsing is strict because a worker must tell a malformed body (dead-lettered at once, never
retried) from a job that failed while running (retried with a delay).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any


class MalformedMessage(ValueError):
    """A message body that is not a valid job; the message names the problem."""


@dataclass(frozen=True)
class Job:
    jobId: str
    runId: str | None
    seq: int | None
    kind: str
    attempt: int = 1
    createdAt: int = 0  # epoch milliseconds
    payload: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        # Built by hand rather than with asdict(): the scheduler calls this for every job.
        return json.dumps(
            {
                "jobId": self.jobId,
                "runId": self.runId,
                "seq": self.seq,
                "kind": self.kind,
                "attempt": self.attempt,
                "createdAt": self.createdAt,
                "payload": self.payload,
            },
            separators=(",", ":"),
        ).encode()

    def next_attempt(self) -> Job:
        return Job(**{**asdict(self), "attempt": self.attempt + 1})


def run_job(
    run_id: str, seq: int, kind: str = "index", payload: dict[str, Any] | None = None
) -> Job:
    """Job `seq` of a run: its id is `<runId>-<seq>`, so a republish maps to the same document."""
    return Job(
        jobId=f"{run_id}-{seq}",
        runId=run_id,
        seq=seq,
        kind=kind,
        attempt=1,
        createdAt=int(time.time() * 1000),
        payload=payload or {},
    )


def _require(
    body: dict[str, Any], name: str, kinds: type | tuple[type, ...], optional: bool = False
):
    if name not in body or body[name] is None:
        if optional:
            return None
        raise MalformedMessage(f"field '{name}' is missing")
    value = body[name]
    # bool is an int in Python; a job's numbers never are.
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise MalformedMessage(f"field '{name}' has the wrong type ({type(value).__name__})")
    return value


def parse(body: bytes) -> Job:
    """A `Job` from a message body, or `MalformedMessage` naming the problem."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedMessage("body is not a JSON object")
    job_id = _require(data, "jobId", str)
    kind = _require(data, "kind", str)
    run_id = _require(data, "runId", str, optional=True)
    seq = _require(data, "seq", int, optional=True)
    attempt = _require(data, "attempt", int, optional=True)
    attempt = 1 if attempt is None else attempt
    created = _require(data, "createdAt", (int, float), optional=True) or 0
    payload = _require(data, "payload", dict, optional=True) or {}
    if not job_id:
        raise MalformedMessage("field 'jobId' is empty")
    if (run_id is None) != (seq is None):
        raise MalformedMessage("fields 'runId' and 'seq' come together or not at all")
    if seq is not None and (seq < 0 or seq >= 10_000_000):
        raise MalformedMessage(f"field 'seq' is out of range ({seq})")
    if run_id is not None and job_id != f"{run_id}-{seq}":
        raise MalformedMessage(f"field 'jobId' must be '<runId>-<seq>', got {job_id!r}")
    if attempt < 1:
        raise MalformedMessage(f"field 'attempt' must be at least 1 ({attempt})")
    return Job(job_id, run_id, seq, kind, attempt, int(created), payload)
