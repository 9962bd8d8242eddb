"""Live events: `GET /events` (SSE) and `/ws` (WebSocket), the lab's one event stream.

Each starts with a `status` snapshot (unless it resumes from an event id), then every run event,
through the process's one reader (`EventHub`). Each holds a stream slot (`LAB_MAX_STREAMS`, a
share per client), given back however the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect

from lab.api.limits import StreamsFull, client_of
from lab.api.responses import error, sse, sse_response
from lab.api.services import Lab
from lab.runtime.events import BadEventId, check_event_id

log = logging.getLogger("lab.api.app")

router = APIRouter(tags=["events"])


@router.get("/events")
async def events(
    request: Request,
    lab: Lab,
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
        give_back = lab.slots.take(client_of(request))
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


@router.websocket("/ws")
async def websocket(ws: WebSocket, lab: Lab, lastEventId: str | None = None) -> None:  # noqa: N803
    """The same events as /events, as JSON text messages with their `id`."""
    try:
        cursor = check_event_id(lastEventId)
    except BadEventId as exc:
        await ws.accept()
        await ws.send_json({"type": "error", "error": f"lastEventId: {exc}"})
        await ws.close(code=1008)
        return
    try:
        give_back = lab.slots.take(client_of(ws))
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
