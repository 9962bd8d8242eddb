"""Single jobs, whoever runs them: the API's create, retry, cancel and delete routed by the
record's `target` (`lab`: lab's workers over RabbitMQ, `lab.runtime.single_jobs`; `bullmq`:
BullMQ's queue, `lab.targets.bullmq_jobs`, whose events the relay started with the API records).
The routes and the bulk actions call these, so each action is one operation wherever the job
runs."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from lab.api.responses import error, invalid
from lab.api.services import Services
from lab.runtime import single_jobs
from lab.runtime.broker import PublishError
from lab.targets.bullmq_jobs import SingleJobs, SubmitError, refusal

# What a job's message failing to go out is, wherever it was going.
NotQueued = (PublishError, SubmitError)


def bullmq(lab: Services) -> SingleJobs:
    """This API process's client of BullMQ's queue, made when first needed."""
    if lab.bullmq is None:
        lab.bullmq = SingleJobs(lab.settings, lab.records)
    return lab.bullmq


def on_bullmq(lab: Services, job_id: str) -> bool:
    return lab.records.target(job_id) == "bullmq"


def create_on_bullmq(
    lab: Services, kind: str, payload: dict[str, Any], attempts: int, priority: str, delayed: bool
) -> Any:
    """`POST /jobs` with `target: bullmq`: the job's record, or a 422 naming the field, or a
    503 when BullMQ's Redis did not take it (then there is no job)."""
    refused = refusal(kind, delayed)
    if refused is not None:
        return invalid(*refused)
    try:
        job_id = bullmq(lab).submit(kind, payload, attempts, priority)
    except SubmitError as exc:
        return error(503, f"{exc}; the job was not created", service="redis")
    lab.wake_relay()
    return lab.records.get(job_id)


def requeue(lab: Services, job_id: str) -> None:
    """A failed or cancelled job queued again (attempt + 1) where it runs; `NotQueued` when
    its message could not go out (the job then stays failed, with the reason)."""
    if on_bullmq(lab, job_id):
        bullmq(lab).requeue(job_id)
        lab.wake_relay()
    else:
        single_jobs.requeue(lab.records, lab.publisher, job_id)


def cancel(lab: Services, job_id: str) -> str:
    """'cancelled' (it was queued) or 'requested' (it stops at its next step)."""
    answer = lab.records.cancel(job_id)
    if answer == "cancelled" and on_bullmq(lab, job_id):
        bullmq(lab).removed(job_id)  # else a worker holds it: it sees the record and stops
    return answer


def delete(lab: Services, job_id: str) -> None:
    elsewhere = on_bullmq(lab, job_id)
    lab.records.delete(job_id)
    if elsewhere:
        bullmq(lab).removed(job_id)


def not_queued(exc: Exception, job: dict[str, Any]) -> JSONResponse:
    service = "redis" if isinstance(exc, SubmitError) else "rabbitmq"
    return error(503, str(exc), service=service, job=job)
