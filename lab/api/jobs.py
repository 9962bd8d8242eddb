"""The jobs API: create, list, show, cancel, retry and delete single jobs, and follow one live.

Records live in Redis (`lab.runtime.jobs`); a job's message is published only after its record
exists, so a worker always finds the record it asks about. A run's jobs have no record of their own:
their Elasticsearch document is their record, shown read-only by `GET /jobs/{id}` and by `GET
/jobs?runId=`.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from lab.api import targeted
from lab.api.kinds import checked
from lab.api.limits import StreamsFull, client_of
from lab.api.responses import error, invalid, sse, sse_response
from lab.api.services import Lab, Services
from lab.runtime import single_jobs
from lab.runtime.broker import PublishError
from lab.runtime.events import BadEventId, check_event_id
from lab.runtime.handlers import known_kinds
from lab.runtime.jobs import (
    MAX_ATTEMPTS,
    TERMINAL,
    JobConflict,
    JobNotFound,
    JobState,
)
from lab.runtime.jobviews import run_job_view
from lab.runtime.messages import ID_PATTERN, KIND_PATTERN, is_id
from lab.runtime.search import BadQuery, epoch_ms
from lab.runtime.store import unavailable

MAX_DELAY_S = 30 * 86400
RUN_CURSOR = re.compile(r"(\d{1,15}):(\d{1,8})", re.ASCII)
SEARCH_CURSOR = re.compile(r"(\d{1,16}):([A-Za-z0-9][A-Za-z0-9_.-]{0,127})", re.ASCII)


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # Kinds are modules of workers/, found when the API starts; the schema lists them so clients
    # (and generated tests) know the choice, while an unknown name still gets a 422 naming it.
    kind: str = Field(
        min_length=1,
        max_length=64,
        description="a module of workers/, e.g. agent",
        json_schema_extra={"enum": list[Any](known_kinds())},
    )
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="the kind's settings (see the kind's module); {} takes its defaults",
        json_schema_extra={"examples": [{}]},
    )
    attempts: int | None = Field(
        default=None, ge=1, le=MAX_ATTEMPTS, description="tries before the job fails for good"
    )
    delaySeconds: float | None = Field(  # noqa: N815 - the API's JSON names
        default=None, ge=0, le=MAX_DELAY_S, allow_inf_nan=False,
        description="run it this many seconds from now (the job is queued, its message waits)",
    )  # fmt: skip
    runAt: str | None = Field(  # noqa: N815
        default=None, max_length=40, description="run it at this time (epoch ms or ISO 8601)"
    )
    priority: Literal["low", "normal", "high"] = Field(
        default="normal",
        description="waiting single jobs start highest first (see docs/OPERATIONS.md)",
    )
    target: Literal["lab", "bullmq"] = Field(
        default="lab",
        description="who runs it: lab's workers, or BullMQ's (lab up --target bullmq; "
        "docs/guides/your-pipeline.md)",
    )


def linked(description: str, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """An answer that is a job, with the links a client may follow from it (OpenAPI)."""
    return {status: {"description": description, "links": JOB_LINKS}}


def _link(operation: str) -> dict[str, Any]:
    return {"operationId": operation, "parameters": {"job_id": "$response.body#/id"}}


# OpenAPI links: what a created job's id can be used for (clients and schemathesis follow them).
JOB_LINKS = {
    "GetJob": _link("getJob"),
    "CancelJob": _link("cancelJob"),
    "RetryJob": _link("retryJob"),
    "DeleteJob": _link("deleteJob"),
}


class PruneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    olderThanSeconds: float | None = Field(  # noqa: N815 - the API's JSON names
        default=None,
        ge=0,
        le=10 * 365 * 86400,
        allow_inf_nan=False,
        description="prune jobs that ended longer ago than this (default LAB_JOB_RETENTION_S)",
    )


def not_found(job_id: str) -> JSONResponse:
    return error(404, f"no job {job_id[:200]!r}")


# Routes that take a job id answer 404 for anything that is not an id: it never reaches a Redis
# key or an Elasticsearch request.
router = APIRouter(tags=["jobs"])


def run_job(lab: Services, job_id: str) -> dict[str, Any] | None:
    """A run's job: its document (a deleted single job's document is gone with it)."""
    store = lab.store
    doc = store.get(job_id)
    return doc if doc is not None and doc.get("runId") else None


def run_job_or_404(lab: Services, job_id: str, action: str) -> JSONResponse:
    if run_job(lab, job_id) is not None:
        return error(409, f"job {job_id} belongs to a run; a run's jobs cannot be {action}")
    return not_found(job_id)


@router.post(
    "/jobs",
    status_code=201,
    operation_id="createJob",
    responses=linked("the job, queued", 201),
)
def create_job(lab: Lab, body: JobRequest) -> Any:
    """Queue one job of `kind` with its `payload`; it is retried up to `attempts` times."""
    settings, records, publisher = lab.settings, lab.records, lab.publisher
    handler = checked(body.kind, body.payload)
    if isinstance(handler, JSONResponse):
        return handler
    run_at = 0
    if body.delaySeconds is not None and body.runAt is not None:
        return invalid("runAt", "give delaySeconds or runAt, not both")
    if body.delaySeconds is not None:
        run_at = int((time.time() + body.delaySeconds) * 1000)
    elif body.runAt is not None:
        try:
            run_at = epoch_ms(body.runAt, "runAt")
        except BadQuery as exc:
            return invalid(exc.field, exc.reason)
        if run_at > (time.time() + MAX_DELAY_S) * 1000:
            return invalid("runAt", "is more than 30 days away")
    attempts = body.attempts or handler.attempts or settings.max_attempts
    if body.target == "bullmq":
        return targeted.create_on_bullmq(
            lab, body.kind, body.payload, attempts, body.priority, bool(run_at)
        )
    try:
        job_id = single_jobs.submit(
            records, publisher, body.kind, body.payload, attempts, run_at, body.priority
        )
    except PublishError as exc:
        return error(503, f"{exc}; the job was not created", service="rabbitmq")
    return records.get(job_id)


@router.get("/jobs", operation_id="listJobs")
def list_jobs(
    lab: Lab,
    state: JobState | None = None,
    kind: Annotated[str | None, Query(pattern=KIND_PATTERN)] = None,
    run_id: Annotated[str | None, Query(alias="runId", pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
    since: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    until: Annotated[str | None, Query(alias="to", max_length=40)] = None,
) -> Any:
    """Jobs newest first, filtered; pass `nextCursor` back as `cursor` for the next page.

    `q` finds jobs by id, kind, payload text, error or log text, and `from`/`to` (epoch ms
    or ISO 8601) bound their creation time: both are answered from the records index
    (`lab.runtime.search`), the records themselves from Redis."""
    records, store = lab.records, lab.store
    if q is not None or since is not None or until is not None:
        if run_id is not None:
            return invalid("q", "a run's jobs are listed by runId alone, not searched")
        return found_jobs(lab, q, state, kind, since, until, limit, cursor)
    if run_id is None:
        jobs, next_cursor = records.list(state, kind, limit, cursor)
        return {"jobs": jobs, "nextCursor": next_cursor}
    if state not in (None, "completed"):
        return {"jobs": [], "nextCursor": None}  # a run's other jobs have no record
    after = None
    if cursor:
        found = RUN_CURSOR.fullmatch(cursor)
        if not found:
            return invalid("cursor", "is not a cursor this listing handed out")
        after = [int(found[1]), int(found[2])]
    docs, last = store.run_jobs(run_id, limit, after, kind)
    return {
        "jobs": [run_job_view(d) for d in docs],
        "nextCursor": f"{last[0]}:{last[1]}" if last else None,
    }


def found_jobs(
    lab: Services,
    q: str | None, state: str | None, kind: str | None, since: str | None,
    until: str | None, limit: int, cursor: str | None,
) -> Any:  # fmt: skip
    records, search = lab.records, lab.search
    try:
        bounds = [epoch_ms(v, n) if v else None for v, n in ((since, "from"), (until, "to"))]
    except BadQuery as exc:
        return invalid(exc.field, exc.reason)
    after = None
    if cursor:
        found = SEARCH_CURSOR.fullmatch(cursor)
        if not found:
            return invalid("cursor", "is not a cursor this listing handed out")
        after = [int(found[1]), found[2]]
    ids, last = search.find(q, state, kind, bounds[0], bounds[1], limit, after)
    # One round trip for the page; a job deleted a moment ago (its document on its way out)
    # is left out.
    jobs = records.views(ids)
    return {"jobs": jobs, "nextCursor": f"{last[0]}:{last[1]}" if last else None}


@router.post(
    "/jobs/{job_id}/run-now", operation_id="runJobNow", responses=linked("the job, due now")
)
def run_now(lab: Lab, job_id: str) -> Any:
    """A delayed job runs now instead of at its `runAt` (409 when it is not waiting)."""
    records = lab.records
    if not is_id(job_id):
        return not_found(job_id)
    try:
        job = records.get(job_id, with_log=False)
    except JobNotFound:
        return not_found(job_id)
    if job["state"] != "queued" or not records.run_now(job_id):
        return error(409, f"job {job_id} is not waiting for its time", state=job["state"])
    return records.get(job_id, with_log=False)


@router.post("/jobs/prune", operation_id="pruneJobs")
def prune_jobs(lab: Lab, body: PruneRequest | None = None) -> dict[str, Any]:
    """Delete jobs that ended longer ago than `olderThanSeconds` (default: the retention),
    with their documents. The API also does this by itself every minute."""
    settings, records, store = lab.settings, lab.records, lab.store
    older = body.olderThanSeconds if body and body.olderThanSeconds is not None else None
    return single_jobs.prune(records, store, settings.job_retention_s if older is None else older)


@router.get("/jobs/{job_id}", operation_id="getJob")
def get_job(lab: Lab, job_id: str) -> Any:
    """A job with its steps and log lines (a run's job: its document)."""
    records = lab.records
    if not is_id(job_id):
        return not_found(job_id)
    try:
        return records.get(job_id)
    except JobNotFound:
        doc = run_job(lab, job_id)
        return run_job_view(doc) if doc else not_found(job_id)


def change(
    lab: Services, job_id: str, act: Callable[[str], Any], done: str
) -> tuple[Any, JSONResponse | None]:
    """Apply `act` to a single job: (its answer, None), or (None, the error answer) when there
    is no such job (a run's job: 409, naming what cannot be `done` to it) or its state forbids."""
    if not is_id(job_id):
        return None, not_found(job_id)
    try:
        return act(job_id), None
    except JobNotFound:
        return None, run_job_or_404(lab, job_id, done)
    except JobConflict as exc:
        return None, error(409, str(exc), state=exc.state)


@router.post("/jobs/{job_id}/cancel", operation_id="cancelJob", responses=linked("the job"))
def cancel_job(lab: Lab, job_id: str) -> Any:
    """A queued job never runs; a running one stops at its next progress step (202)."""
    outcome, refused = change(lab, job_id, lambda i: targeted.cancel(lab, i), "cancelled")
    if refused is not None:
        return refused
    code = 200 if outcome == "cancelled" else 202
    return JSONResponse(lab.records.get(job_id), status_code=code)


@router.post(
    "/jobs/{job_id}/retry", operation_id="retryJob", responses=linked("the job, queued again")
)
def retry_job(lab: Lab, job_id: str) -> Any:
    """A failed or cancelled job goes back to the queue with attempt + 1 and a fresh budget
    of automatic retries, starting again at the bottom of the retry ladder."""
    records = lab.records
    try:
        _, refused = change(lab, job_id, lambda i: targeted.requeue(lab, i), "retried")
    except targeted.NotQueued as exc:
        # The job stays, failed with the reason: retry it again later.
        return targeted.not_queued(exc, records.get(job_id))
    if refused is not None:
        return refused
    return records.get(job_id)


@router.delete("/jobs/{job_id}", operation_id="deleteJob")
def delete_job(lab: Lab, job_id: str) -> Any:
    """Remove the job's record and its result document; a queued job is skipped when
    delivered. Jobs that ended are also pruned after `LAB_JOB_RETENTION_S`."""
    _, refused = change(lab, job_id, lambda i: targeted.delete(lab, i), "deleted")
    if refused is not None:
        return refused
    try:
        document = lab.store.delete(job_id)
    except Exception as exc:
        if not unavailable(exc):
            raise
        return {"deleted": job_id, "document": f"not deleted, Elasticsearch: {exc}"}
    return {"deleted": job_id, "document": "deleted" if document else "none"}


@router.get("/jobs/{job_id}/stream", operation_id="streamJob")
async def stream_job(
    lab: Lab,
    request: Request,
    job_id: str,
    last_event_id: Annotated[str | None, Header()] = None,
    last_event_id_query: Annotated[str | None, Query(alias="lastEventId")] = None,
) -> Any:
    """SSE: the job's events from the start (or after `Last-Event-ID`); ends when it ends."""
    settings, slots = lab.settings, lab.slots
    if not is_id(job_id):
        return not_found(job_id)
    try:
        resume = check_event_id(last_event_id or last_event_id_query)
    except BadEventId as exc:
        return error(422, f"Last-Event-ID: {exc}", fields=["Last-Event-ID"])
    events = request.app.state.events
    if await events.job_state(job_id) is None:
        return not_found(job_id)
    try:
        give_back = slots.take(client_of(request))
    except StreamsFull as exc:
        return error(503, str(exc))
    stream_key = events.job_stream(job_id)

    async def finished(cursor: str) -> bool:
        """The job is over (or gone) and nothing newer than `cursor` is left to send."""
        try:
            state = await events.job_state(job_id)
            newer = await events.any_after(cursor, stream_key)
        except Exception as exc:
            if unavailable(exc):
                return False  # not known while Redis is away: keep the stream open
            raise
        if state is not None and state not in TERMINAL:
            return False
        return not newer

    async def stream() -> AsyncIterator[str]:
        cursor = resume or "0-0"
        yield "retry: 1000\n\n"
        if resume and await finished(cursor):
            return
        async for item in events.tail(cursor, settings.sse_heartbeat_s, key=stream_key):
            if item is None:
                if await request.is_disconnected() or await finished(cursor):
                    return
                yield ": heartbeat\n\n"
                continue
            cursor, event = item
            yield sse(cursor, "job", event)
            if event.get("state") in TERMINAL and await finished(cursor):
                return

    return sse_response(stream(), on_close=give_back)
