"""The API's error answers: a JSON body whose `error` says what is wrong, and for bad input,
`fields` naming each offending field (the same shape FastAPI's own validation errors get)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse


def error(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def invalid(field: str, message: str) -> JSONResponse:
    return error(422, f"{field}: {message}", fields=[field])


class _Stream(StreamingResponse):
    """A streaming response that runs `on_close` however it ends (done, cut, or never sent)."""

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None], **kw: Any):
        super().__init__(content, **kw)
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


def sse_response(
    stream: AsyncIterator[str], on_close: Callable[[], None] = lambda: None
) -> StreamingResponse:
    """An SSE stream no proxy or browser cache holds back."""
    return _Stream(
        stream,
        on_close,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def sse(event_id: str, kind: str, data: Any) -> str:
    """One server-sent event; its `id` is the stream id a client resumes from."""
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
