"""The one event stream: a Redis Stream that the scheduler and workers append to (from their Lua
scripts) and that the API serves as SSE and WebSocket messages.

Because the stream is the log, a client that reconnects names the last id it saw (SSE
`Last-Event-ID`, or `?lastEventId=` on the WebSocket) and gets exactly what it missed, for as long
as the stream still holds it (`LAB_EVENT_STREAM_LEN` entries).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from fastapi.responses import StreamingResponse

from lab.config import Settings
from lab.keys import Keys
from lab.state import RunView

STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


class BadEventId(ValueError):
    """A resume id that is not a Redis stream id."""


def check_event_id(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not STREAM_ID.match(value):
        raise BadEventId(f"event id {value!r} is not of the form <ms>-<n>, e.g. 1732320000000-0")
    return value


JOB_NUMBERS = ("progress", "attempt", "at")


def decode(fields: dict[str, str]) -> dict[str, Any]:
    """A stream entry as the JSON an SSE or WebSocket client receives."""
    kind = fields.get("type", "run")
    if kind == "run":
        view = RunView.from_hash(fields, int(time.time() * 1000))
        return {"type": kind, **view.__dict__}
    out: dict[str, Any] = dict(fields)
    if kind == "job":
        for name in JOB_NUMBERS:
            if out.get(name):
                out[name] = int(out[name])
        for name in ("step", "error", "worker", "message"):
            if out.get(name) == "":
                out[name] = None
    return out


class EventLog:
    def __init__(self, settings: Settings):
        self.key = Keys(settings.prefix).events
        self.redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)

    async def last_id(self) -> str:
        newest = await self.redis.xrevrange(self.key, count=1)
        return newest[0][0] if newest else "0-0"

    async def follow(
        self, after: str, wait_s: float, key: str | None = None
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Entries after `after`, waiting up to `wait_s` for new ones; yields nothing on timeout.

        `key` names another stream of the same shape (a single job's own events).
        """
        stream = key or self.key
        answer = await self.redis.xread({stream: after}, count=500, block=int(wait_s * 1000))
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                yield entry_id, decode(fields)

    async def close(self) -> None:
        await self.redis.aclose()


def sse_response(stream: AsyncIterator[str]) -> StreamingResponse:
    """An SSE stream no proxy or browser cache holds back."""
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def sse(event_id: str, kind: str, data: Any) -> str:
    """One server-sent event; its `id` is the stream id a client resumes from."""
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
