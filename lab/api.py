"""The HTTP API: run control, status, history and live events (SSE and WebSocket).

Routes stay thin: validate with a model, call `lab.state` or `lab.events`, return the result.
Single jobs are in `lab.jobs_api`, the admin page in `lab.admin`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from lab import admin, broker, config, jobs_api
from lab.config import Settings
from lab.events import BadEventId, EventLog, check_event_id, sse, sse_response
from lab.jobs import JobRecords
from lab.responses import error
from lab.state import MAX_JOBS, NoActiveRun, RunConflict, State
from lab.store import Store

log = logging.getLogger("lab.api")

MAX_RATE_PER_MINUTE = 60_000_000


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    x: int = Field(gt=0, le=MAX_JOBS, description="how many jobs the run releases")
    y: float = Field(
        gt=0, le=MAX_RATE_PER_MINUTE, allow_inf_nan=False, description="jobs released per minute"
    )


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "header", "path")]
    return ".".join(parts) or "body"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or config.load()
    state = State(settings)
    records = JobRecords(state)
    publisher = broker.Publisher(settings.amqp_url, "lab-api", broker.Topology(settings.queue))
    store = Store(settings, timeout_s=10.0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.events = EventLog(settings)
        yield
        await app.state.events.close()
        publisher.close()
        store.close()

    app = FastAPI(
        title="lab",
        summary="Run control, status and live progress of a queue pipeline.",
        version="0.1.0",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{_field(e['loc'])}: {e['msg']}" for e in exc.errors()]
        fields = [_field(e["loc"]) for e in exc.errors()]
        return JSONResponse(
            {"error": "; ".join(problems), "fields": fields, "detail": jsonable(exc.errors())},
            status_code=422,
        )

    @app.post("/run", status_code=201)
    def start_run(body: RunRequest) -> Any:
        """Start a run of `x` jobs released at `y` per minute (409 while another is running)."""
        try:
            run_id = state.start_run(body.x, body.y)
        except RunConflict as exc:
            return error(409, str(exc), runId=exc.run_id)
        return {"runId": run_id, **state.status()}

    @app.post("/stop")
    def stop_run() -> Any:
        """Stop releasing the active run; jobs already queued still finish and are counted."""
        try:
            run_id = state.stop_run()
        except NoActiveRun as exc:
            return error(409, str(exc))
        return {"stopped": run_id, **state.status()}

    @app.get("/status")
    def status() -> dict[str, Any]:
        """The active (or latest) run's counters, rates per minute and live workers."""
        return state.status()

    @app.get("/runs")
    def runs(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
        """Run history, newest first."""
        return [r.__dict__ for r in state.runs(limit)]

    @app.get("/runs/{run_id}")
    def run(run_id: str) -> Any:
        found = state.run(run_id)
        return found.__dict__ if found else error(404, f"no run {run_id!r}")

    @app.get("/healthz")
    def healthz() -> Any:
        try:
            state.redis.ping()
        except Exception as exc:
            return error(503, f"Redis unreachable: {exc}")
        return {"status": "ok"}

    @app.get("/events")
    async def events(
        request: Request,
        last_event_id: Annotated[str | None, Header()] = None,
        last_event_id_query: Annotated[str | None, Query(alias="lastEventId")] = None,
    ) -> Any:
        """Server-sent events: a `status` snapshot, then every run event; resumable."""
        try:
            resume = check_event_id(last_event_id or last_event_id_query)
        except BadEventId as exc:
            return error(422, f"Last-Event-ID: {exc}", fields=["Last-Event-ID"])
        log_ = request.app.state.events

        async def stream() -> AsyncIterator[str]:
            cursor = resume
            yield "retry: 1000\n\n"
            if cursor is None:
                cursor = await log_.last_id()
                snapshot = await run_in_threadpool(state.status)
                yield sse(cursor, "status", snapshot)
            while not await request.is_disconnected():
                sent = False
                async for entry_id, event in log_.follow(cursor, settings.sse_heartbeat_s):
                    cursor = entry_id
                    sent = True
                    yield sse(entry_id, event["type"], event)
                if not sent:
                    yield ": heartbeat\n\n"

        return sse_response(stream())

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
        await ws.accept()
        log_ = ws.app.state.events
        try:
            if cursor is None:
                cursor = await log_.last_id()
                snapshot = await run_in_threadpool(state.status)
                await ws.send_json({"id": cursor, "type": "status", "data": snapshot})
            while True:
                sent = False
                async for entry_id, event in log_.follow(cursor, settings.sse_heartbeat_s):
                    cursor = entry_id
                    sent = True
                    await ws.send_json({"id": entry_id, "type": event["type"], "data": event})
                if not sent:
                    await ws.send_json({"type": "heartbeat"})
        except (WebSocketDisconnect, asyncio.CancelledError, RuntimeError):
            return

    app.include_router(jobs_api.create_router(settings, records, publisher, store))
    app.include_router(admin.create_router(settings, state, records, publisher))
    return app


def jsonable(errors: list[Any]) -> list[Any]:
    """Validation errors may carry exception objects in `ctx`; keep them printable."""
    return json.loads(json.dumps(errors, default=str))
