"""lab's job kinds as any framework's task: what one attempt of a lab job does on a Celery,
Dramatiq, RQ or arq worker, the same work a lab worker does.

`run_attempt` runs the kind's handler (`workers/<kind>.py`) on the job's payload, with the
framework's attempt number (so the synthetic kind draws by `(seed, seq, attempt)` as on lab's
worker), and writes the job's document by its id (an upsert, `index`: a second write of one job
shows as the document's `_version` 2, the delivery verdict's "duplicated"). A failure the kind
says is permanent (`PermanentError`, a bad payload, an arithmetic error) raises `Permanent`: the
framework's own way to fail for good; any other raises `Retryable`: its own retry. Reporting
the attempt is the shim's, which the framework's hooks call for every task, lab's and the
user's alike (`lab.targets.shim`).
"""

from __future__ import annotations

import functools
import json
import socket
import time
from typing import Any

from lab import config
from lab.runtime import handlers
from lab.runtime.batch import document
from lab.runtime.messages import Job, MalformedMessage, parse
from lab.runtime.progress import NO_PROGRESS
from lab.runtime.retry import PERMANENT
from lab.runtime.store import Store, import_client

# A framework's worker times each job from the moment it hands it over: the client's import
# (seconds on a busy machine, with every job thread waiting on its lock) belongs before that.
import_client()


class Permanent(Exception):
    """This attempt failed, and so will every other: fail the job for good."""


class Retryable(Exception):
    """This attempt failed; another may not."""


@functools.cache
def _store() -> Store:
    store = Store(config.load())
    store.ensure_index()
    return store


def job_of(message: Any, attempt: int) -> Job:
    """The lab job a task was given (its message, as JSON or a dict), as attempt `attempt`."""
    body = message if isinstance(message, (bytes, str)) else json.dumps(message)
    try:
        job = parse(body.encode() if isinstance(body, str) else body)
    except MalformedMessage as exc:
        raise Permanent(f"not a lab job: {exc}") from None
    return Job(job.jobId, job.runId, job.seq, job.kind, max(1, attempt), job.createdAt,
               job.payload, job.dueAt)  # fmt: skip


def run_attempt(message: Any, attempt: int, worker: str = "") -> dict[str, Any]:
    """Run one attempt of lab job `message`; returns the kind's result."""
    job = job_of(message, attempt)
    started_ms = time.time() * 1000
    try:
        handler = handlers.handler_for(job.kind)
        handler.check(job.payload)
        result = handler(job, NO_PROGRESS)
        doc = document(job, result, worker or socket.gethostname(), started_ms)
        _store().upsert(doc)
    except PERMANENT as exc:
        raise Permanent(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the job's failure, handed to the framework
        raise Retryable(f"{type(exc).__name__}: {exc}") from None
    return result if isinstance(result, dict) else {"result": result}
