"""Find the handler for a job kind: module `workers.<kind>`.

A handler module defines `handle(job) -> dict` (the fields to store in the job's document) and may
set `BATCHABLE = False` when it must run on its own rather than in a worker's batch. Adding a job
kind means adding one module to `workers/`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.messages import Job

KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class UnknownKind(LookupError):
    """No module in `workers/` handles this kind."""


@dataclass(frozen=True)
class Handler:
    kind: str
    handle: Callable[[Job], dict[str, Any]]
    batchable: bool


_cache: dict[str, Handler] = {}


def handler_for(kind: str) -> Handler:
    if kind in _cache:
        return _cache[kind]
    if not KIND.match(kind):
        raise UnknownKind(f"job kind {kind!r} is not a valid name (lowercase letters, digits, _)")
    try:
        module = importlib.import_module(f"workers.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name != f"workers.{kind}":
            raise
        raise UnknownKind(f"no handler for job kind {kind!r} (add workers/{kind}.py)") from None
    if not callable(getattr(module, "handle", None)):
        raise UnknownKind(f"workers/{kind}.py has no handle(job) function")
    handler = Handler(kind, module.handle, bool(getattr(module, "BATCHABLE", True)))
    _cache[kind] = handler
    return handler
