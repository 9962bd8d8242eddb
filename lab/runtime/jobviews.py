"""A job as the API shows it: a single job's record, or a run's job from its document (pure,
unit-tested)."""

from __future__ import annotations

import json
from typing import Any

from lab.runtime.status import iso

# What each field of a job's view says, for docs/reference/json.md (`python -m
# lab.cli.reference` refuses a field of `view` described nowhere here).
FIELDS = {
    "id": "the job's id: `job-<UTC time>-<6 hex digits>` (a run's job: `<runId>-<seq>`)",
    "runId": "null for a single job; a run's job names its run",
    "kind": "its job kind (`workers/<kind>.py`)",
    "state": "`queued`, `active`, `completed`, `failed` or `cancelled`",
    "progress": "0 to 100, as its handler reports it",
    "step": "the step its handler reported last; null before one",
    "attempt": "the attempt it is on, 1 first",
    "attempts": "its budget of automatic attempts",
    "maxAttempt": "the last attempt allowed before it fails for good",
    "cancelRequested": "true once a cancel was asked for while it ran",
    "payload": "its payload, as the kind's fields checked it",
    "createdAt": "when it was created (ISO 8601, UTC)",
    "queuedAt": "when it was last queued",
    "startedAt": "when its current attempt started; null before",
    "finishedAt": "when it ended; null before",
    "runAt": "a delayed job: when it is due; null otherwise",
    "priority": "`low`, `normal` or `high`",
    "target": "who runs it: `lab` (its own workers) or `bullmq` (BullMQ's)",
    "worker": "the worker that runs (or ran) it",
    "error": "why its last attempt failed; null when none did",
    "result": "what its handler returned (also in its document)",
    "version": "bumped by every change: of two views of one job, the higher is the newer",
    "log": "its log lines `{at, attempt, step, progress, message}` (`GET /jobs/{id}` only)",
}


def _json_or_none(text: str | None) -> Any:
    return json.loads(text) if text else None


def view(h: dict[str, str], log: list[str] | None = None) -> dict[str, Any]:
    """A job record as the API shows it (pure, unit-tested)."""
    out: dict[str, Any] = {
        "id": h["id"],
        "runId": None,
        "kind": h["kind"],
        "state": h["state"],
        "progress": int(h.get("progress") or 0),
        "step": h.get("step") or None,
        "attempt": int(h["attempt"]),
        "attempts": int(h["attempts"]),
        "maxAttempt": int(h.get("lastAttempt") or h["attempts"]),
        "cancelRequested": h.get("cancelRequested") == "1",
        "payload": _json_or_none(h.get("payload")) or {},
        "createdAt": iso(h.get("createdAt")),
        "queuedAt": iso(h.get("queuedAt")),
        "startedAt": iso(h.get("startedAt")),
        "finishedAt": iso(h.get("finishedAt")),
        "runAt": iso(h.get("runAt")),
        "priority": h.get("priority") or "normal",
        "target": h.get("target") or "lab",
        "worker": h.get("worker") or None,
        "error": h.get("error") or None,
        "result": _json_or_none(h.get("result")),
        # Bumped by every change: of two views of one job, the higher version is the newer.
        "version": int(h.get("version") or 0),
    }
    if log is not None:
        out["log"] = [json.loads(line) for line in log]
    return out


def run_job_view(doc: dict[str, Any]) -> dict[str, Any]:
    """A run's job as the API shows it: its record is its Elasticsearch document."""
    return {
        "id": doc["jobId"],
        "runId": doc.get("runId"),
        "seq": doc.get("seq"),
        "kind": doc.get("kind"),
        "state": "completed",
        "progress": 100,
        "attempt": doc.get("attempt"),
        "createdAt": iso(doc.get("createdAt")),
        "finishedAt": iso(doc.get("processedAt")),
        "worker": doc.get("worker"),
        "result": doc.get("result"),
    }
