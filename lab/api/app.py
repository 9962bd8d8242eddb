"""The HTTP API: run control, status, history and live events (SSE and WebSocket).

This module makes the app: the services every route depends on (`lab.api.services`), the
middleware, the error answers, `/metrics` and `/healthz`. The routes are modules, each a
router whose functions take what they need as a dependency: runs and `/status` in
`lab.api.runs`, live events in `lab.api.live`, single jobs in `lab.api.jobs` and `lab.api.bulk`,
dead letters, queues and the admin page in theirs. Routes stay thin: validate with a model,
call one runtime operation, shape the answer.

Every input gets an answer, never a 5xx while the services are up: middleware checks who may
call (`lab.api.access`) and what a body may be (`lab.api.limits`) before any route runs; a
service that is down is a 503 naming it; ids that are not ids are 404s.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lab import config
from lab.api import admin, bulk, deadletters, jobs, kinds, live, queues, runs
from lab.api.access import AccessGuard, Policy
from lab.api.health import Health
from lab.api.limits import BodyLimits, StreamSlots
from lab.api.metrics import CONTENT_TYPE, Exposition, PipelineCollector, RequestTimer
from lab.api.pages import PageHeaders, add_docs
from lab.api.responses import error
from lab.api.runs import RunRequest  # noqa: F401 - the run request's model, read from here too
from lab.api.services import Services
from lab.api.snapshot import StatusFastPath, StatusSnapshot
from lab.config import Settings
from lab.runtime import broker, retention, single_jobs
from lab.runtime import connections as redis_connections
from lab.runtime import store as store_module
from lab.runtime.deadletters import DeadLetters
from lab.runtime.delayed import DelayedReleaser
from lab.runtime.events import EventHub, EventLog
from lab.runtime.jobs import JobRecords
from lab.runtime.search import RecordIndexer, RecordSearch
from lab.runtime.store import Store
from lab.runtime.stores import Stores
from lab.targets.bullmq_relay import Relay
from lab.version import __version__

log = logging.getLogger("lab.api.app")

PRUNE_EVERY_S = 60.0
ROUTERS = (runs.router, live.router, jobs.router, kinds.router, bulk.router, admin.router,
           deadletters.router, queues.router)  # fmt: skip


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "header", "path")]
    return ".".join(parts) or "body"


def make_services(settings: Settings) -> Services:
    """The clients of this API process, one of each, shared by every route."""
    stores = Stores.of(settings)
    publisher = broker.Publisher(
        settings.amqp_url, "lab-api", broker.Topology.of(settings), broker.Deadlines.of(settings)
    )
    store = Store(settings)

    def rabbitmq_answers() -> None:
        """A connection of its own, not the publisher's (whose lock a publish may hold)."""
        connection = broker.connect(settings.amqp_url, "lab-health", broker.Deadlines.of(settings))
        try:
            connection.channel()  # a channel opened is a broker answering
        finally:
            connection.close()

    return Services(
        settings=settings,
        stores=stores,
        records=JobRecords(settings, stores.redis),
        publisher=publisher,
        store=store,
        search=RecordSearch(settings, store),
        dead=DeadLetters(settings.amqp_url, publisher.topology, broker.Deadlines.of(settings)),
        slots=StreamSlots(settings.max_streams, settings.stream_share),
        health=Health(
            {
                "redis": stores.overview.ping,
                "rabbitmq": rabbitmq_answers,
                "elasticsearch": store.ping,
            }
        ),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or config.load()
    lab = make_services(settings)

    async def prune_now_and_then() -> None:
        """Retention: jobs and runs that ended long ago go, with their documents, once a
        minute."""
        while True:
            try:
                done = await run_in_threadpool(
                    single_jobs.prune, lab.records, lab.store, settings.job_retention_s
                )
                if done["pruned"]:
                    log.info("pruned %d jobs older than the retention", done["pruned"])
                runs = await run_in_threadpool(
                    retention.prune_runs, lab.stores.retention, lab.store, settings.run_retention_s
                )
                if runs["pruned"]:
                    log.info("pruned runs older than the retention: %s", ", ".join(runs["pruned"]))
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
            lab.records,
            lambda job_id: single_jobs.publish_current(lab.records, lab.publisher, job_id),
        ).start()
        relay = Relay(settings, lab.records)
        lab.wake_relay = relay.wake
        relay.start()  # idle until a job goes to BullMQ
        yield
        relay.stop()
        if lab.bullmq is not None:
            lab.bullmq.close()
        delayed.stop()
        indexer.stop()
        pruner.cancel()
        await hub.close()
        lab.health.close()
        await events.close()
        lab.publisher.close()
        lab.store.close()

    app = FastAPI(
        title="lab",
        summary="Run control, status and live progress of a queue pipeline.",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by lab.api.pages, under a CSP
        redoc_url=None,
    )
    app.state.services = lab
    lab.changed = lambda: (
        app.state.snapshot.invalidate() if hasattr(app.state, "snapshot") else None
    )
    add_docs(app)
    # The last added runs first: refuse strangers before reading what they send.
    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessGuard, policy=Policy.of(settings))
    app.add_middleware(PageHeaders)  # refusals are pages' answers too
    app.add_middleware(RequestTimer)  # outermost: refused requests are timed too
    add_errors(app)
    add_system_routes(app, lab)
    for router in ROUTERS:
        app.include_router(router)
    return app


def add_errors(app: FastAPI) -> None:
    """Every error in the API's one shape: JSON whose `error` says what is wrong."""

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

    async def unavailable(_request: Request, exc: Exception) -> JSONResponse:
        """A service that is down is a 503 naming it; anything else is a bug (500)."""
        if redis_connections.unavailable(exc):
            return error(503, f"Redis is unreachable: {exc}", service="redis")
        if store_module.unavailable(exc):
            return error(503, f"Elasticsearch is unreachable: {exc}", service="elasticsearch")
        if isinstance(exc, broker.PublishError):
            return error(503, str(exc), service="rabbitmq")
        log.exception("unexpected error", exc_info=exc)
        return error(500, f"internal error: {type(exc).__name__}")

    # The services' errors are answered by class. What the handler of `Exception` answers,
    # Starlette raises again for the server to log, and uvicorn then closes the connection: a
    # dashboard polling `/status` through an outage had its keep-alive connection cut after
    # every 503, and a request sent as it closed was reset unanswered.
    services: tuple[type[Exception], ...] = (redis.RedisError, broker.PublishError)
    for service_error in (*services, *store_module.client_errors()):
        app.add_exception_handler(service_error, unavailable)
    app.add_exception_handler(Exception, unavailable)  # a bug: its 500, logged, then raised


def add_system_routes(app: FastAPI, lab: Services) -> None:
    """`/metrics` and `/healthz`: the process and its services, for scrapers and probes."""
    topology = lab.publisher.topology
    exposition = Exposition(
        PipelineCollector(
            lab.stores,
            lab.publisher,
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

    @app.get("/healthz")
    async def healthz() -> Any:
        """Redis, RabbitMQ and Elasticsearch as this API process reaches them, within a second
        whatever they do (503 if any is down or silent: the field names which)."""
        services = await lab.health.report()
        down = [name for name, how in services.items() if how != "ok"]
        if down:
            return error(503, f"{', '.join(down)} unreachable", services=services)
        return {"status": "ok", "services": services}


def served(settings: Settings | None = None) -> StatusFastPath:
    """What uvicorn serves: the app behind the `/status` fast path (lab.api.snapshot)."""
    settings = settings or config.load()
    return StatusFastPath(create_app(settings), Policy.of(settings))
