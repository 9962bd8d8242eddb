"""The HTTP API: run control, status, history and live events (SSE and WebSocket).

Routes stay thin: validate with a model, call `lab.runtime.state` or `lab.runtime.events`,
return the result. Single jobs are in `lab.api.jobs`, the admin page in `lab.api.admin`.

Every input gets an answer, never a 5xx while the services are up: middleware checks who may
call (`lab.api.access`) and what a body may be (`lab.api.limits`) before any route runs; a
service that is down is a 503 naming it; ids that are not ids are 404s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from lab import __version__, config
from lab.api import admin, bulk, deadletters, queues
from lab.api import jobs as jobs_api
from lab.api.access import AccessGuard, Policy
from lab.api.health import Health
from lab.api.limits import BodyLimits, StreamsFull, StreamSlots, client_of
from lab.api.metrics import CONTENT_TYPE, Exposition, PipelineCollector, RequestTimer
from lab.api.pages import PageHeaders, add_docs
from lab.api.responses import error, sse, sse_response
from lab.api.snapshot import StatusFastPath, StatusSnapshot
from lab.config import Settings
from lab.runtime import broker, single_jobs
from lab.runtime import state as state_module
from lab.runtime import store as store_module
from lab.runtime.deadletters import DeadLetters
from lab.runtime.delayed import DelayedReleaser
from lab.runtime.events import BadEventId, EventHub, EventLog, check_event_id
from lab.runtime.jobs import JobRecords
from lab.runtime.messages import is_id
from lab.runtime.search import RecordIndexer, RecordSearch
from lab.runtime.state import MAX_JOBS, NoActiveRun, RunConflict, State
from lab.runtime.store import Store

log = logging.getLogger("lab.api.app")

# One job per 10 minutes at the slowest (slower runs never look alive), a million a second at
# the fastest (far past what one queue takes).
PRUNE_EVERY_S = 60.0
MIN_RATE_PER_MINUTE = 0.1
MAX_RATE_PER_MINUTE = 60_000_000


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    x: int = Field(gt=0, le=MAX_JOBS, description="how many jobs the run releases")
    y: float = Field(
        ge=MIN_RATE_PER_MINUTE,
        le=MAX_RATE_PER_MINUTE,
        allow_inf_nan=False,
        description=f"jobs per minute, from {MIN_RATE_PER_MINUTE} to {MAX_RATE_PER_MINUTE}",
    )


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "header", "path")]
    return ".".join(parts) or "body"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or config.load()
    state = State(settings)
    records = JobRecords(state)
    publisher = broker.Publisher(
        settings.amqp_url, "lab-api", broker.Topology.of(settings), broker.Deadlines.of(settings)
    )
    store = Store(settings)

    slots = StreamSlots(settings.max_streams, settings.stream_share)

    async def prune_now_and_then() -> None:
        """Retention: jobs that ended long ago go, with their documents, once a minute."""
        while True:
            try:
                done = await run_in_threadpool(
                    single_jobs.prune, records, store, settings.job_retention_s
                )
                if done["pruned"]:
                    log.info("pruned %d jobs older than the retention", done["pruned"])
            except Exception as exc:  # noqa: BLE001 - a service may be down; next minute
                log.warning("pruning jobs failed: %r", exc)
            await asyncio.sleep(PRUNE_EVERY_S)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.events = events = EventLog(settings)
        app.state.hub = hub = EventHub(events, settings.sse_heartbeat_s)
        app.state.fresh_status = events.status_reader().read
        app.state.snapshot = StatusSnapshot(
            app.state.fresh_status, settings.status_max_age_ms / 1000
        )
        pruner = asyncio.create_task(prune_now_and_then())
        indexer = RecordIndexer(settings, f"api-{os.getpid()}").start()
        delayed = DelayedReleaser(
            records, lambda job_id: single_jobs.publish_current(records, publisher, job_id)
        ).start()
        yield
        delayed.stop()
        indexer.stop()
        pruner.cancel()
        await hub.close()
        health.close()
        await events.close()
        publisher.close()
        store.close()

    app = FastAPI(
        title="lab",
        summary="Run control, status and live progress of a queue pipeline.",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by lab.api.pages, under a CSP
        redoc_url=None,
    )
    add_docs(app)
    # The last added runs first: refuse strangers before reading what they send.
    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessGuard, policy=Policy.of(settings))
    app.add_middleware(PageHeaders)  # refusals are pages' answers too
    app.add_middleware(RequestTimer)  # outermost: refused requests are timed too

    topology = publisher.topology
    exposition = Exposition(
        PipelineCollector(
            state,
            publisher,
            lambda: [*topology.consumed, topology.dead, *topology.retries],
            lambda: app.state.hub.cursor if hasattr(app.state, "hub") else None,
        )
    )

    @app.get("/metrics", response_class=Response, tags=["metrics"])
    def metrics() -> Response:
        """The pipeline in Prometheus' text format: lifetime job counters, the active run,
        queues, workers, the scheduler, single jobs, the event stream and request latency
        (docs/METRICS.md lists every family)."""
        return Response(exposition.body(), media_type=CONTENT_TYPE)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # The offending input is not echoed: it may be huge, or NaN, which JSON cannot carry.
        errors = [
            {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        problems = [f"{_field(e['loc'])}: {e['msg']}" for e in errors]
        fields = [_field(e["loc"]) for e in errors]
        return JSONResponse(
            {"error": "; ".join(problems), "fields": fields, "detail": errors}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Unknown routes, wrong methods and unparseable bodies, in the API's one error shape."""
        return error(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unavailable(_request: Request, exc: Exception) -> JSONResponse:
        """A service that is down is a 503 naming it; anything else is a bug (500)."""
        if state_module.unavailable(exc):
            return error(503, f"Redis is unreachable: {exc}", service="redis")
        if store_module.unavailable(exc):
            return error(503, f"Elasticsearch is unreachable: {exc}", service="elasticsearch")
        if isinstance(exc, broker.PublishError):
            return error(503, str(exc), service="rabbitmq")
        log.exception("unexpected error", exc_info=exc)
        return error(500, f"internal error: {type(exc).__name__}")

    def started(answer: dict[str, Any]) -> dict[str, Any]:
        app.state.snapshot.invalidate()  # this process's next /status shows the change
        return answer

    @app.post(
        "/run",
        status_code=201,
        operation_id="startRun",
        responses={
            201: {
                "description": "the run, started",
                "links": {
                    "GetRun": {
                        "operationId": "getRun",
                        "parameters": {"run_id": "$response.body#/runId"},
                    }
                },
            }
        },
    )
    def start_run(body: RunRequest) -> Any:
        """Start a run of `x` jobs released at `y` per minute (409 while another is running)."""
        try:
            run_id = state.start_run(body.x, body.y)
        except RunConflict as exc:
            return error(409, str(exc), runId=exc.run_id)
        return started({"runId": run_id, **state.status()})

    @app.post("/stop")
    def stop_run() -> Any:
        """Stop releasing the active run; jobs already queued still finish and are counted."""
        try:
            run_id = state.stop_run()
        except NoActiveRun as exc:
            return error(409, str(exc))
        return started({"stopped": run_id, **state.status()})

    @app.get("/status", response_model=None)
    async def status(request: Request) -> Response:
        """The active (or latest) run's counters, rates per minute and live workers, from one
        atomic read shared by every caller of this API process; `ageMs` says how old it is
        (at most `LAB_STATUS_MAX_AGE_MS` plus the read)."""
        snapshot = await request.app.state.snapshot.get()
        return Response(snapshot.answer(), media_type="application/json")

    @app.get("/runs")
    def runs(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
        """Run history, newest first."""
        return [r.__dict__ for r in state.runs(limit)]

    @app.get("/runs/{run_id}", operation_id="getRun")
    def run(run_id: str) -> Any:
        found = state.run(run_id) if is_id(run_id) else None
        return found.__dict__ if found else error(404, f"no run {run_id[:200]!r}")

    @app.get("/runs/{run_id}/timeline")
    def timeline(run_id: str) -> Any:
        """The run's released, processed and failed jobs per second, from its start to its end
        (or now); kept in Redis, so it is the same after any process restarts."""
        found = state.timeline(run_id) if is_id(run_id) else None
        return found if found else error(404, f"no run {run_id[:200]!r}")

    @app.get("/history")
    def recent_history(
        seconds: Annotated[int, Query(ge=10, le=7 * 24 * 3600)] = 3600,
    ) -> dict[str, Any]:
        """Released, processed and failed jobs per 10-second bucket over the last `seconds`,
        whatever the runs (at most `LAB_HISTORY_S`, default an hour)."""
        return state.recent(seconds)

    def rabbitmq_answers() -> None:
        """A connection of its own, not the publisher's (whose lock a publish may hold)."""
        connection = broker.connect(settings.amqp_url, "lab-health", broker.Deadlines.of(settings))
        try:
            connection.channel()  # a channel opened is a broker answering
        finally:
            connection.close()

    health = Health(
        {"redis": state.ping, "rabbitmq": rabbitmq_answers, "elasticsearch": store.ping}
    )

    @app.get("/healthz")
    async def healthz() -> Any:
        """Redis, RabbitMQ and Elasticsearch as this API process reaches them, within a second
        whatever they do (503 if any is down or silent: the field names which)."""
        services = await health.report()
        down = [name for name, how in services.items() if how != "ok"]
        if down:
            return error(503, f"{', '.join(down)} unreachable", services=services)
        return {"status": "ok", "services": services}

    @app.get("/events")
    async def events(
        request: Request,
        last_event_id: Annotated[str | None, Header()] = None,
        last_event_id_query: Annotated[str | None, Query(alias="lastEventId")] = None,
    ) -> Any:
        """Server-sent events: a `status` snapshot, then every run event; resumable."""
        try:
            cursor = check_event_id(last_event_id or last_event_id_query)
        except BadEventId as exc:
            return error(422, f"Last-Event-ID: {exc}", fields=["Last-Event-ID"])
        snapshot = None
        if cursor is None:  # read before the 200, so Redis being down is a 503, not a cut stream
            cursor = await request.app.state.events.last_id()
            snapshot = await request.app.state.fresh_status()
        try:
            give_back = slots.take(client_of(request))
        except StreamsFull as exc:
            return error(503, str(exc))

        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            if snapshot is not None:
                yield sse(cursor, "status", snapshot)
            async for item in request.app.state.hub.follow(cursor):
                if item is None:
                    if await request.is_disconnected():
                        return
                    yield ": heartbeat\n\n"
                else:
                    yield sse(item[0], item[1]["type"], item[1])

        return sse_response(stream(), on_close=give_back)

    @app.websocket("/ws")
    async def websocket(ws: WebSocket, lastEventId: str | None = None) -> None:  # noqa: N803
        """The same events as /events, as JSON text messages with their `id`."""
        try:
            cursor = check_event_id(lastEventId)
        except BadEventId as exc:
            await ws.accept()
            await ws.send_json({"type": "error", "error": f"lastEventId: {exc}"})
            await ws.close(code=1008)
            return
        try:
            give_back = slots.take(client_of(ws))
        except StreamsFull as exc:
            await ws.accept()
            await ws.send_json({"type": "error", "error": str(exc)})
            await ws.close(code=1013)  # try again later
            return
        try:
            await ws.accept()
            if cursor is None:
                cursor = await ws.app.state.events.last_id()
                snapshot = await ws.app.state.fresh_status()
                await ws.send_json({"id": cursor, "type": "status", "data": snapshot})
            async for item in ws.app.state.hub.follow(cursor):
                if item is None:
                    await ws.send_json({"type": "heartbeat"})
                else:
                    await ws.send_json({"id": item[0], "type": item[1]["type"], "data": item[1]})
        except (WebSocketDisconnect, asyncio.CancelledError, RuntimeError):
            return
        except Exception as exc:  # Redis down at the start: say so and close (try again later)
            log.warning("websocket closed: %r", exc)
            with contextlib.suppress(Exception):
                await ws.close(code=1011)
        finally:
            give_back()

    search = RecordSearch(settings, store)
    app.include_router(bulk.create_router(records, publisher, store, search, settings.bulk_rate))
    app.include_router(jobs_api.create_router(settings, records, publisher, store, slots, search))
    app.include_router(admin.create_router(settings, state, records, publisher))
    app.include_router(
        deadletters.create_router(
            DeadLetters(settings.amqp_url, topology, broker.Deadlines.of(settings)),
            records,
            publisher,
        )
    )
    app.include_router(
        queues.create_router(state, publisher, lambda: app.state.snapshot.invalidate())
    )
    return app


def served(settings: Settings | None = None) -> StatusFastPath:
    """What uvicorn serves: the app behind the `/status` fast path (lab.api.snapshot)."""
    settings = settings or config.load()
    return StatusFastPath(create_app(settings), Policy.of(settings))
