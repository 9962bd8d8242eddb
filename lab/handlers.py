"""Find the handler for a job kind: module `workers.<kind>`.

A handler module defines `handle(job)` or `handle(job, ctx)` returning the fields to store in the
job's document; with `ctx` (a `lab.jobs.JobContext`) it reports progress steps and stops when its
job is cancelled. It may set `BATCHABLE = False` when it must run on its own, under the worker's
concurrency limit, rather than in a batch (such kinds travel on their own queue), and may define
`validate(payload)` raising `PayloadError` so `POST /jobs` refuses a bad payload at the door.
Adding a job kind means adding one module to `workers/`.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.jobs import NO_PROGRESS, JobContext
from lab.messages import Job

KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class UnknownKind(LookupError):
    """No module in `workers/` handles this kind."""


class PayloadError(ValueError):
    """A payload field a kind cannot use; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"payload.{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Handler:
    kind: str
    handle: Callable[..., dict[str, Any]]
    batchable: bool
    takes_context: bool
    validate: Callable[[dict[str, Any]], None]

    def __call__(self, job: Job, ctx: JobContext = NO_PROGRESS) -> dict[str, Any]:
        return self.handle(job, ctx) if self.takes_context else self.handle(job)


_cache: dict[str, Handler] = {}


def _no_validation(_payload: dict[str, Any]) -> None:
    return None


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
    handle = getattr(module, "handle", None)
    if not callable(handle):
        raise UnknownKind(f"workers/{kind}.py has no handle(job) function")
    handler = Handler(
        kind,
        handle,
        bool(getattr(module, "BATCHABLE", True)),
        len(inspect.signature(handle).parameters) >= 2,
        getattr(module, "validate", _no_validation),
    )
    _cache[kind] = handler
    return handler


def known_kinds() -> list[str]:
    """The kinds `workers/` offers, for error messages and the admin page."""
    import workers

    return sorted(m.name for m in pkgutil.iter_modules(workers.__path__) if KIND.match(m.name))
