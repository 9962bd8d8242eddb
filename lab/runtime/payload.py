"""A job kind's payload, declared field by field (`lab.runtime.fields.Field`): name, type,
bounds, default and help.

One declaration serves everywhere a payload is met: `POST /jobs` and run requests check it at
the door (a 422 naming the field), the worker checks it before the handler runs (a payload
that cannot run is a permanent failure, never retried), and the CLI, the docs and the admin
page list it. Pure: no I/O.

    FIELDS = (
        Field("seconds", "number", "how long the job waits", default=1.0, low=0, high=60),
    )
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lab.runtime.fields import MISSING, Field, FieldError, shown

__all__ = ["Field", "PayloadError", "PermanentError", "check", "defaults", "shown"]


class PermanentError(Exception):
    """Raised by a handler for a failure no retry can mend: the job is dead-lettered at once,
    with reason `permanent`, whatever attempts it had left."""


class PayloadError(PermanentError, ValueError):
    """A payload field a kind cannot use; `field` names it ("" for the payload as a whole).
    Permanent: the same payload fails the same way on every attempt."""

    def __init__(self, field: str, message: str):
        super().__init__(f"payload.{field}: {message}" if field else f"payload: {message}")
        self.field = field


def check(payload: dict[str, Any], fields: Iterable[Field], kind: str) -> None:
    """Every field of `payload` is one of `fields`, and each is what it declares (an absent
    field takes its default)."""
    declared = {f.name: f for f in fields}
    unknown = sorted(set(payload) - set(declared))
    if unknown:
        raise PayloadError(unknown[0][:64], f"is not a setting of the {kind} kind")
    for field in declared.values():
        try:
            field.read(payload.get(field.name, MISSING), field.name)
        except FieldError as exc:
            raise PayloadError(exc.field, exc.message) from None


def defaults(fields: Iterable[Field]) -> dict[str, Any]:
    return {f.name: f.default for f in fields if f.default is not None}
