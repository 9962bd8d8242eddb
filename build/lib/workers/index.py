"""The `index` kind: the reference job of a run. Its whole effect is its Elasticsearch document.

Payload (all optional):
  failAttempts: int   fail attempts 1..n on purpose, to show retries and dead-lettering
  data: object        stored as is in the document
"""

from __future__ import annotations

from typing import Any

from lab.messages import Job

BATCHABLE = True


class InjectedFailure(RuntimeError):
    """A failure the job's payload asked for."""


def handle(job: Job) -> dict[str, Any]:
    fail_attempts = job.payload.get("failAttempts", 0)
    if isinstance(fail_attempts, int) and job.attempt <= fail_attempts:
        raise InjectedFailure(f"injected failure on attempt {job.attempt} of {fail_attempts}")
    doc: dict[str, Any] = {}
    if "data" in job.payload:
        doc["data"] = job.payload["data"]
    return doc
