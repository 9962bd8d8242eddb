"""The jobs API: create, list, show, cancel, retry and delete single jobs, and follow one live.

Records live in Redis (`lab.jobs`); a job's message is published only after its record exists,
so a worker always finds the record it asks about. A run's jobs have no record of their own:
their Elasticsearch document is their record, shown read-only by `GET /jobs/{id}` and by
`GET /jobs?runId=`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from lab.broker import Publisher, PublishError
from lab.config import Settings
from lab.events import BadEventId, check_event_id, sse, sse_response
from lab.handlers import KIND, PayloadError, UnknownKind, handler_for, known_kinds
from lab.jobs import MAX_ATTEMPTS, TERMINAL, JobConflict, JobNotFound, JobRecords, run_job_view
from lab.responses import error, invalid
from lab.store import Store
from lab.store import Unavailable as ES_UNAVAILABLE

MAX_PAYLOAD_BYTES = 64 * 1024
RUN_CURSOR = re.compile(r"^(\d{1,15}):(\d{1,8})$")
State = Literal["queued", "active", "completed", "failed", "cancelled"]


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    kind: str = Field(min_length=1, max_length=64, description="a module of workers/, e.g. agent")
    payload: dict[str, Any] = Field(default_factory=dict, description="the kind's settings")
    attempts: int | None = Field(
        default=None, ge=1, le=MAX_ATTEMPTS, description="tries before the job fails for good"
    )


def create_router(
    settings: Settings, records: JobRecords, publisher: Publisher, store: Store
) -> APIRouter:
    router = APIRouter(tags=["jobs"])
    topology = publisher.topology

    def publish(job_id: str) -> None:
        """Publish the record's current attempt; a failure leaves the job failed, not queued."""
        message = records.message(job_id)
        try:
            publisher.publish(topology.route(message.kind), message.to_json())
        except PublishError as exc:
            records.unqueue(job_id, message.attempt, f"could not be queued: {exc}")
            raise

    def run_job(job_id: str) -> dict[str, Any] | None:
        """A run's job: its document (a deleted single job's document is gone with it)."""
        doc = store.get(job_id)
        return doc if doc is not None and doc.get("runId") else None

    def run_job_or_404(job_id: str, action: str) -> JSONResponse:
        if run_job(job_id) is not None:
            return error(409, f"job {job_id} belongs to a run; a run's jobs cannot be {action}")
        return error(404, f"no job {job_id!r}")

    @router.post("/jobs", status_code=201)
    def create_job(body: JobRequest) -> Any:
        """Queue one job of `kind` with its `payload`; it is retried up to `attempts` times."""
        if not KIND.match(body.kind):
            return invalid("kind", f"{body.kind!r} is not a valid kind name")
        try:
            handler = handler_for(body.kind)
            handler.validate(body.payload)
        except UnknownKind:
            return invalid("kind", f"unknown kind {body.kind!r}; choose from {known_kinds()}")
        except PayloadError as exc:
            return invalid(f"payload.{exc.field}", str(exc).split(": ", 1)[1])
        if len(json.dumps(body.payload)) > MAX_PAYLOAD_BYTES:
            return invalid("payload", f"is larger than {MAX_PAYLOAD_BYTES} bytes")
        job_id = records.create(body.kind, body.payload, body.attempts or settings.max_attempts)
        try:
            publish(job_id)
        except PublishError as exc:
            return error(503, str(exc), job=records.get(job_id))
        return records.get(job_id)

    @router.get("/jobs")
    def list_jobs(
        state: State | None = None,
        kind: Annotated[str | None, Query(pattern=KIND.pattern)] = None,
        run_id: Annotated[str | None, Query(alias="runId", max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Any:
        """Jobs newest first, filtered; pass `nextCursor` back as `cursor` for the next page."""
        if run_id is None:
            jobs, next_cursor = records.list(state, kind, limit, cursor)
            return {"jobs": jobs, "nextCursor": next_cursor}
        if state not in (None, "completed"):
            return {"jobs": [], "nextCursor": None}  # a run's other jobs have no record
        after = None
        if cursor:
            found = RUN_CURSOR.match(cursor)
            if not found:
                return invalid("cursor", "is not a cursor this listing handed out")
            after = [int(found[1]), int(found[2])]
        docs, last = store.run_jobs(run_id, limit, after, kind)
        return {
            "jobs": [run_job_view(d) for d in docs],
            "nextCursor": f"{last[0]}:{last[1]}" if last else None,
        }

    @router.get("/jobs/{job_id}")
    def get_job(job_id: str) -> Any:
        """A job with its steps and log lines (a run's job: its document)."""
        try:
            return records.get(job_id)
        except JobNotFound:
            doc = run_job(job_id)
            return run_job_view(doc) if doc else error(404, f"no job {job_id!r}")

    @router.post("/jobs/{job_id}/cancel")
    def cancel_job(job_id: str) -> Any:
        """A queued job never runs; a running one stops at its next progress step (202)."""
        try:
            outcome = records.cancel(job_id)
        except JobNotFound:
            return run_job_or_404(job_id, "cancelled")
        except JobConflict as exc:
            return error(409, str(exc), state=exc.state)
        return JSONResponse(records.get(job_id), status_code=200 if outcome == "cancelled" else 202)

    @router.post("/jobs/{job_id}/retry")
    def retry_job(job_id: str) -> Any:
        """A failed or cancelled job goes back to the queue with attempt + 1."""
        try:
            records.retry(job_id)
        except JobNotFound:
            return run_job_or_404(job_id, "retried")
        except JobConflict as exc:
            return error(409, str(exc), state=exc.state)
        try:
            publish(job_id)
        except PublishError as exc:
            return error(503, str(exc), job=records.get(job_id))
        return records.get(job_id)

    @router.delete("/jobs/{job_id}")
    def delete_job(job_id: str) -> Any:
        """Remove the job's record and its result document; a queued job is skipped when
        delivered. Deletion is the only retention: nothing expires by itself."""
        try:
            records.delete(job_id)
        except JobNotFound:
            return run_job_or_404(job_id, "deleted")
        except JobConflict as exc:
            return error(409, str(exc), state=exc.state)
        try:
            document = store.delete(job_id)
        except ES_UNAVAILABLE as exc:
            return {"deleted": job_id, "document": f"not deleted, Elasticsearch: {exc}"}
        return {"deleted": job_id, "document": "deleted" if document else "none"}

    @router.get("/jobs/{job_id}/stream")
    async def stream_job(
        request: Request,
        job_id: str,
        last_event_id: Annotated[str | None, Header()] = None,
        last_event_id_query: Annotated[str | None, Query(alias="lastEventId")] = None,
    ) -> Any:
        """SSE: the job's events from the start (or after `Last-Event-ID`); ends when it ends."""
        try:
            resume = check_event_id(last_event_id or last_event_id_query)
        except BadEventId as exc:
            return error(422, f"Last-Event-ID: {exc}", fields=["Last-Event-ID"])
        events = request.app.state.events
        job_key = records.keys.job(job_id)
        if not await events.redis.exists(job_key):
            return error(404, f"no job {job_id!r}")
        stream_key = records.keys.job_events(job_id)

        async def finished(cursor: str) -> bool:
            """The job is over (or gone) and nothing newer than `cursor` is left to send."""
            state = await events.redis.hget(job_key, "state")
            if state is not None and state not in TERMINAL:
                return False
            return not await events.redis.xrange(stream_key, min=f"({cursor}", count=1)

        async def stream() -> AsyncIterator[str]:
            cursor = resume or "0-0"
            yield "retry: 1000\n\n"
            if resume and await finished(cursor):
                return
            while not await request.is_disconnected():
                last: dict[str, Any] | None = None
                async for entry_id, event in events.follow(
                    cursor, settings.sse_heartbeat_s, key=stream_key
                ):
                    cursor, last = entry_id, event
                    yield sse(entry_id, "job", event)
                if last is not None and last.get("state") in TERMINAL and await finished(cursor):
                    return
                if last is None:
                    if await finished(cursor):
                        return
                    yield ": heartbeat\n\n"

        return sse_response(stream())

    return router
