"""A job as the API shows it: a single job's record, or a run's job from its document (pure,
unit-tested)."""

from __future__ import annotations

import json
from typing import Any

from lab.runtime.status import iso


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
