"""Find the handler for a job kind: module `workers.<kind>`.

A handler module defines `handle(job)` or `handle(job, ctx)` returning the fields to store in the
job's document; with `ctx` (a `lab.runtime.progress.JobContext`) it reports progress steps and stops
when its job is cancelled. It may set `BATCHABLE = False` when it must run on its own, under the
worker's concurrency limit, rather than in a batch (such kinds travel on their own queue), and may
define `validate(payload)` raising `PayloadError` so `POST /jobs` refuses a bad payload at the door.
Adding a job kind means adding one module to `workers/`.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.runtime.messages import Job, is_kind
from lab.runtime.progress import NO_PROGRESS, JobContext

log = logging.getLogger("lab.runtime.handlers")


class UnknownKind(LookupError):
    """No module in `workers/` handles this kind."""


class HandlerBroken(RuntimeError):
    """The kind's module exists but cannot be loaded: a deployment problem, so its jobs fail
    and are retried (a fixed deployment runs them) rather than dead-lettered at once."""


class PayloadError(ValueError):
    """A payload field a kind cannot use; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"payload.{field}: {message}" if field else f"payload: {message}")
        self.field = field


@dataclass(frozen=True)
class Handler:
    kind: str
    handle: Callable[..., dict[str, Any]]
    batchable: bool
    takes_context: bool
    validate: Callable[[dict[str, Any]], None]

    def check(self, payload: dict[str, Any]) -> None:
        """The kind's `validate`, held to its contract: whatever goes wrong inside it is a
        `PayloadError`, so a kind's oversight answers 422, never 500."""
        try:
            self.validate(payload)
        except PayloadError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a huge number met by float()
            raise PayloadError("", f"cannot be checked by the {self.kind} kind: "
                               f"{type(exc).__name__}") from None  # fmt: skip

    def __call__(self, job: Job, ctx: JobContext = NO_PROGRESS) -> dict[str, Any]:
        return self.handle(job, ctx) if self.takes_context else self.handle(job)


_cache: dict[str, Handler] = {}


def _no_validation(_payload: dict[str, Any]) -> None:
    return None


# --- checks a kind's `validate(payload)` is made of ----------------------------------------------
def only(payload: dict[str, Any], allowed: set[str] | frozenset[str], kind: str) -> None:
    unknown = sorted(set(payload) - set(allowed))
    if unknown:
        raise PayloadError(unknown[0][:64], f"is not a setting of the {kind} kind")


def number(payload: dict[str, Any], name: str, low: float, high: float) -> float | None:
    """A finite number from `low` to `high`, or None when absent."""
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise PayloadError(name, f"must be a number, got {shown(value)}")
    # Compared before any conversion or `:g` formatting: a 400-digit integer overflows a float.
    if not low <= value <= high:
        raise PayloadError(name, f"must be from {low:g} to {high:g}, got {shown(value)}")
    return float(value)


def shown(value: Any) -> str:
    """A value in an error message: short, whatever its size (a huge int has no `:g`, and past
    4,300 digits not even a `str`)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def whole(payload: dict[str, Any], name: str, low: int, high: int) -> int | None:
    """A whole number from `low` to `high`, or None when absent."""
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PayloadError(name, f"must be a whole number from {low} to {high}")
    return value


def text(payload: dict[str, Any], name: str, max_length: int) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise PayloadError(name, f"must be a string of at most {max_length} characters")
    return value


def handler_for(kind: str) -> Handler:
    if kind in _cache:
        return _cache[kind]
    if not is_kind(kind):
        raise UnknownKind(f"job kind {kind!r} is not a valid name (lowercase letters, digits, _)")
    try:
        module = importlib.import_module(f"workers.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name != f"workers.{kind}":
            return _broken(kind, exc)
        raise UnknownKind(f"no handler for job kind {kind!r} (add workers/{kind}.py)") from None
    except Exception as exc:  # a syntax or import error in the module must not stop a worker
        return _broken(kind, exc)
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


def _broken(kind: str, exc: Exception) -> Handler:
    """A handler that fails every job of `kind` with the import error (not cached)."""
    log.error("workers/%s.py cannot be loaded: %r", kind, exc)

    def fail(_job: Job) -> dict[str, Any]:
        raise HandlerBroken(f"workers/{kind}.py cannot be loaded: {exc!r}")

    return Handler(kind, fail, True, False, _no_validation)


def known_kinds() -> list[str]:
    """The kinds `workers/` offers, for error messages and the admin page."""
    import workers

    return sorted(m.name for m in pkgutil.iter_modules(workers.__path__) if is_kind(m.name))
