"""The API's error answers: a JSON body whose `error` says what is wrong, and for bad input,
`fields` naming each offending field (the same shape FastAPI's own validation errors get)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


def error(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def invalid(field: str, message: str) -> JSONResponse:
    return error(422, f"{field}: {message}", fields=[field])
