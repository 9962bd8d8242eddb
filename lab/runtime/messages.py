"""The job message: `{jobId, runId, seq, kind, attempt, createdAt, payload}` as JSON.

Parsing is strict because a worker must tell a malformed body (dead-lettered at once, never
retried) from a job that failed while running (retried with a delay). Anyone who can publish to
the queue can send anything, so `parse` never raises anything but `MalformedMessage`, whatever
the type, size or depth of the body: every id it lets through is safe to put in a Redis key
(no `:`), every number fits where it goes (a bitmap offset, a Lua number, an attempt count).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 32  # nesting of the payload; Elasticsearch maps 20 levels, Lua's cjson 1000
MAX_SEQ = 10_000_000  # a run holds at most this many jobs (the bitmap is then 1.25 MB)
MAX_ATTEMPT = 10_000  # manual retries start a fresh budget but never pass this
MAX_EPOCH_MS = 2**53  # the largest whole number a Lua script or a JSON client keeps exact
# Ids become parts of Redis keys and document ids: no `:` (which would name another key), no
# spaces or control characters, and a bounded length.
# Always applied with `fullmatch`: `$` would also match before a final newline.
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
KIND = re.compile(r"[a-z][a-z0-9_]{0,63}")


# For pydantic and FastAPI, whose Rust regex engine reads `$` as the very end of the text.
ID_PATTERN = f"^{ID.pattern}$"
KIND_PATTERN = f"^{KIND.pattern}$"


def is_id(value: str) -> bool:
    return bool(ID.fullmatch(value))


def is_kind(value: str) -> bool:
    return bool(KIND.fullmatch(value))


class MalformedMessage(ValueError):
    """A message body that is not a valid job; the message names the problem."""


@dataclass(frozen=True)
class Job:
    jobId: str
    runId: str | None
    seq: int | None
    kind: str
    attempt: int = 1
    createdAt: int = 0  # epoch milliseconds: when the job was first released
    payload: dict[str, Any] = field(default_factory=dict)
    dueAt: int = 0  # epoch ms a retry was due (published + its delay); 0: at createdAt

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
                **({"dueAt": self.dueAt} if self.dueAt else {}),
            },
            separators=(",", ":"),
        ).encode()

    def next_attempt(self, due_at: int = 0) -> Job:
        """The retry of this job, due at `due_at` (epoch ms: when its delay ends)."""
        return Job(**{**asdict(self), "attempt": self.attempt + 1, "dueAt": due_at})

    @property
    def released_at(self) -> int:
        """When this attempt was released: first released, or due again after a retry's
        delay (what its queue wait counts from)."""
        return self.dueAt or self.createdAt


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply `value` nests lists and objects, counted up to `limit + 1` (iterative, so a
    hostile value cannot exhaust the stack)."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level) for child in children)
    return deepest


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


def _whole(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise MalformedMessage(f"field '{name}' must be from {low} to {high}")


def _id(name: str, value: str | None) -> None:
    if value is not None and not is_id(value):
        raise MalformedMessage(
            f"field '{name}' must be 1-128 letters, digits, '_', '.' or '-' "
            "and start with a letter or digit"
        )


def parse(body: bytes) -> Job:
    """A `Job` from a message body, or `MalformedMessage` naming the problem.

    Every check below is meant to name what it refuses; the outer guard is the promise that
    nothing else escapes even where a check was missed (a worker, the dead-letter views and a
    replay all rely on it)."""
    try:
        return _parse(body)
    except MalformedMessage:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever was missed is still a malformed body
        raise MalformedMessage(f"body cannot be read: {type(exc).__name__}") from None


def _parse(body: bytes) -> Job:
    if not isinstance(body, bytes | bytearray):
        raise MalformedMessage(f"body is {type(body).__name__}, not bytes")
    if len(body) > MAX_BODY_BYTES:
        raise MalformedMessage(f"body is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted")
    try:
        data = json.loads(body)
    except RecursionError:
        raise MalformedMessage("body is nested too deeply to parse") from None
    except ValueError as exc:  # also UnicodeDecodeError and ints past Python's digit limit
        raise MalformedMessage(f"body is not JSON: {str(exc)[:200]}") from None
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
    due = _require(data, "dueAt", int, optional=True) or 0
    _id("jobId", job_id)
    _id("runId", run_id)
    if not is_kind(kind):
        raise MalformedMessage("field 'kind' must be a lowercase name of letters, digits and _")
    if (run_id is None) != (seq is None):
        raise MalformedMessage("fields 'runId' and 'seq' come together or not at all")
    _whole("seq", seq, 0, MAX_SEQ - 1)
    _whole("attempt", attempt, 1, MAX_ATTEMPT)
    # Compared before any float conversion: a 400-digit integer overflows `math.isfinite`.
    if not (0 <= created <= MAX_EPOCH_MS and math.isfinite(created)):
        raise MalformedMessage(
            f"field 'createdAt' must be epoch milliseconds from 0 to {MAX_EPOCH_MS}"
        )
    _whole("dueAt", due, 0, MAX_EPOCH_MS)
    if run_id is not None and job_id != f"{run_id}-{seq}":
        raise MalformedMessage(f"field 'jobId' must be '<runId>-<seq>', got {job_id!r}")
    if depth(payload) > MAX_DEPTH:
        raise MalformedMessage(f"field 'payload' nests deeper than {MAX_DEPTH} levels")
    return Job(job_id, run_id, seq, kind, attempt, int(created), payload, due)
