"""Job kinds over HTTP: `GET /kinds` lists them with their payload fields, and `checked` is the one
door every payload passes (single jobs and runs alike): a 422 naming the field, or the kind's
handler."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from lab.api.responses import invalid
from lab.runtime.handlers import Handler, UnknownKind, handler_for, known_kinds
from lab.runtime.messages import MAX_DEPTH, depth, is_kind
from lab.runtime.payload import PayloadError
from lab.targets import usertask

MAX_PAYLOAD_BYTES = 64 * 1024

router = APIRouter(tags=["kinds"])


@router.get("/kinds")
def kinds() -> list[dict[str, Any]]:
    """The job kinds of this lab's `workers/`: whether they are batched, their attempts and
    retry steps, and their payload fields (name, type, default, bounds, help)."""
    return [handler_for(k).describe() for k in known_kinds()]


def checked(kind: str, payload: dict[str, Any]) -> Handler | JSONResponse:
    """The kind's handler when `payload` is one it can run; else the 422 naming what is wrong."""
    if not is_kind(kind):
        return invalid("kind", f"{kind!r} is not a valid kind name")
    too_big = bounded(payload)
    if too_big is not None:
        return too_big
    try:
        handler = handler_for(kind)
        handler.check(payload)
    except UnknownKind:
        hint = " (your own task needs a target other than lab)" if kind == usertask.KIND else ""
        return invalid("kind", f"unknown kind {kind!r}; choose from {known_kinds()}{hint}")
    except PayloadError as exc:
        where = f"payload.{exc.field}" if exc.field else "payload"
        return invalid(where, str(exc).split(": ", 1)[1])
    return handler


def checked_task(payload: dict[str, Any]) -> dict[str, Any] | JSONResponse:
    """A `task` run's payload (`lab.targets.usertask`: the user's task, its args and kwargs)
    with its defaults; else the 422 naming the field."""
    too_big = bounded(payload)
    if too_big is not None:
        return too_big
    try:
        return usertask.check(payload)
    except usertask.TaskPayloadError as exc:
        return invalid(f"payload.{exc.field}" if exc.field else "payload", exc.message)


def bounded(payload: dict[str, Any]) -> JSONResponse | None:
    """The 422 for a payload too deep or too large for any job's message; None when it fits."""
    if depth(payload) > MAX_DEPTH:
        return invalid("payload", f"nests deeper than {MAX_DEPTH} levels")
    if len(json.dumps(payload)) > MAX_PAYLOAD_BYTES:
        return invalid("payload", f"is larger than {MAX_PAYLOAD_BYTES} bytes")
    return None
