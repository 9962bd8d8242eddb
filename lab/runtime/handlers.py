"""Find the handler for a job kind: module `workers.<kind>`.

A handler module defines `handle(job)` or `handle(job, ctx)` returning the fields to store in the
job's document; with `ctx` (a `lab.runtime.progress.JobContext`) it reports progress steps and stops
when its job is cancelled. What else it may declare (docs/guides/job-kind.md has a worked example):

    FIELDS            its payload, field by field (`lab.runtime.payload.Field`): checked at the
                      door (`POST /jobs`, run requests), before each run, and listed by the CLI
    validate(payload) checks beyond single fields (raise `PayloadError`), run after FIELDS
    BATCHABLE = False it must run on its own, under the worker's concurrency limit, rather than
                      in a batch (such kinds travel on their own queue)
    ATTEMPTS          how many attempts its jobs get (default `LAB_MAX_ATTEMPTS`)
    RETRY_DELAYS_MS   which steps of `LAB_RETRY_LADDER_MS` its retries wait, in order (default:
                      the whole ladder); a delay the ladder lacks is refused when the kind loads,
                      so no queue is ever declared with new arguments

and it decides what is permanent: raising `PermanentError` (or a `PayloadError`) dead-letters the
job at once with reason `permanent`, whatever attempts it had left. An `ArithmeticError`
(`OverflowError`, `ZeroDivisionError`, `FloatingPointError`) is permanent too, since the same
input fails the same way on every attempt (`lab.runtime.retry.PERMANENT`); a kind whose
arithmetic may pass on a later attempt raises another error for it. Adding a job kind means
adding one module to `workers/`.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from lab.runtime import payload as payload_module
from lab.runtime.messages import Job, is_kind
from lab.runtime.payload import Field, PayloadError, PermanentError
from lab.runtime.progress import NO_PROGRESS, JobContext

log = logging.getLogger("lab.runtime.handlers")

__all__ = ["Field", "PayloadError", "PermanentError", "Handler", "handler_for", "known_kinds"]


class UnknownKind(LookupError):
    """No module in `workers/` handles this kind."""


class HandlerBroken(RuntimeError):
    """The kind's module exists but cannot be loaded: a deployment problem, so its jobs fail
    and are retried (a fixed deployment runs them) rather than dead-lettered at once."""


@dataclass(frozen=True)
class Handler:
    kind: str
    handle: Callable[..., dict[str, Any]]
    batchable: bool = True
    takes_context: bool = False
    validate: Callable[[dict[str, Any]], None] | None = None
    fields: tuple[Field, ...] | None = None  # None: the kind declares no fields
    attempts: int | None = None  # None: LAB_MAX_ATTEMPTS
    retry_delays_ms: tuple[int, ...] | None = None  # None: the lab's whole ladder
    doc: str = field(default="", compare=False)

    def check(self, payload: dict[str, Any]) -> None:
        """The kind's payload checks, held to their contract: whatever goes wrong inside them
        is a `PayloadError`, so a kind's oversight answers 422, never 500."""
        try:
            # Every field is optional (it has a default or may be absent), so an empty payload
            # passes them all: the common case of a run's jobs costs nothing here.
            if self.fields is not None and payload:
                payload_module.check(payload, self.fields, self.kind)
            if self.validate is not None:
                self.validate(payload)
        except PayloadError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a huge number met by float()
            raise PayloadError("", f"cannot be checked by the {self.kind} kind: "
                               f"{type(exc).__name__}") from None  # fmt: skip

    def ladder(self, lab_ladder: tuple[int, ...]) -> tuple[int, ...]:
        """The delays this kind's retries wait: its own steps, else the lab's ladder."""
        return self.retry_delays_ms or lab_ladder

    def describe(self) -> dict[str, Any]:
        """The kind as JSON, for `GET /kinds`, the CLI and the docs."""
        return {
            "kind": self.kind,
            "summary": self.doc.strip().splitlines()[0] if self.doc.strip() else "",
            "batchable": self.batchable,
            "attempts": self.attempts,
            "retryDelaysMs": list(self.retry_delays_ms) if self.retry_delays_ms else None,
            "fields": [f.describe() for f in self.fields or ()],
        }

    def __call__(self, job: Job, ctx: JobContext = NO_PROGRESS) -> dict[str, Any]:
        return self.handle(job, ctx) if self.takes_context else self.handle(job)


_cache: dict[str, Handler] = {}
_ladder: tuple[int, ...] | None = None  # the lab's ladder, once a process has said it


def use_ladder(ladder: tuple[int, ...]) -> None:
    """Kinds loaded from now on are held to this ladder (a worker says its own at start)."""
    global _ladder
    _ladder = tuple(ladder)
    for kind, handler in list(_cache.items()):
        missing = sorted(set(handler.retry_delays_ms or ()) - set(_ladder))
        if missing:
            _cache[kind] = broken(
                kind, ValueError(_steps_missing(handler.retry_delays_ms, missing))
            )


def _steps_missing(delays: Any, missing: list[int]) -> str:
    return (f"RETRY_DELAYS_MS {list(delays)} names delays LAB_RETRY_LADDER_MS "
            f"{list(_ladder or ())} does not have: {missing}")  # fmt: skip


def forget(kind: str) -> None:
    """Drop what this process knows of `kind` (a test's own kind), so it is looked up again."""
    _cache.pop(kind, None)


def register(handler: Handler) -> Handler:
    """Make `handler` the one for its kind in this process: for tests and for kinds that live
    outside `workers/`."""
    _cache[handler.kind] = handler
    return handler


def handler_for(kind: str) -> Handler:
    if kind in _cache:
        return _cache[kind]
    if not is_kind(kind):
        raise UnknownKind(f"job kind {kind!r} is not a valid name (lowercase letters, digits, _)")
    try:
        module = importlib.import_module(f"workers.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name != f"workers.{kind}":
            return broken(kind, exc)
        raise UnknownKind(f"no handler for job kind {kind!r} (add workers/{kind}.py)") from None
    except Exception as exc:  # a syntax or import error in the module must not stop a worker
        return broken(kind, exc)
    try:
        return register(from_module(kind, module))
    except (TypeError, ValueError) as exc:
        return broken(kind, exc)


def from_module(kind: str, module: ModuleType) -> Handler:
    """The handler a kind's module declares; `TypeError` or `ValueError` naming what it
    declares wrong (its jobs then fail as a broken deployment's do)."""
    handle = getattr(module, "handle", None)
    if not callable(handle):
        raise UnknownKind(f"workers/{kind}.py has no handle(job) function")
    fields = getattr(module, "FIELDS", None)
    attempts = getattr(module, "ATTEMPTS", None)
    delays = getattr(module, "RETRY_DELAYS_MS", None)
    if fields is not None and not all(isinstance(f, Field) for f in fields):
        raise TypeError("FIELDS must be a tuple of lab.runtime.payload.Field")
    if attempts is not None and not (isinstance(attempts, int) and 1 <= attempts <= 20):
        raise ValueError(f"ATTEMPTS must be a whole number from 1 to 20, not {attempts!r}")
    if delays is not None:
        delays = tuple(delays)
        missing = sorted(set(delays) - set(_ladder or delays))
        if not delays or missing:
            raise ValueError(_steps_missing(delays, missing))
    return Handler(
        kind,
        handle,
        bool(getattr(module, "BATCHABLE", True)),
        len(inspect.signature(handle).parameters) >= 2,
        getattr(module, "validate", None),
        tuple(fields) if fields is not None else None,
        attempts,
        delays,
        module.__doc__ or "",
    )


def broken(kind: str, exc: Exception) -> Handler:
    """A handler that fails every job of `kind` with the load error (not cached)."""
    log.error("workers/%s.py cannot be loaded: %s", kind, exc)

    def fail(_job: Job) -> dict[str, Any]:
        raise HandlerBroken(f"workers/{kind}.py cannot be loaded: {exc}")

    return Handler(kind, fail)


def known_kinds() -> list[str]:
    """The kinds `workers/` offers, for error messages and the admin page."""
    import workers

    return sorted(m.name for m in pkgutil.iter_modules(workers.__path__) if is_kind(m.name))
