"""A job kind's payload, declared field by field: name, type, bounds, default and help.

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
from dataclasses import dataclass
from typing import Any, Literal

FieldType = Literal["number", "integer", "string", "boolean", "object", "any"]
PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "number": (int, float),
    "integer": (int,),
    "string": (str,),
    "boolean": (bool,),
    "object": (dict,),
    "any": (object,),
}


class PermanentError(Exception):
    """Raised by a handler for a failure no retry can mend: the job is dead-lettered at once,
    with reason `permanent`, whatever attempts it had left."""


class PayloadError(PermanentError, ValueError):
    """A payload field a kind cannot use; `field` names it ("" for the payload as a whole).
    Permanent: the same payload fails the same way on every attempt."""

    def __init__(self, field: str, message: str):
        super().__init__(f"payload.{field}: {message}" if field else f"payload: {message}")
        self.field = field


def shown(value: Any) -> str:
    """A value in an error message: short, whatever its size (a huge int has no `:g`, and past
    4,300 digits not even a `str`)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    help: str
    default: Any = None
    low: float | None = None  # numbers: the least allowed
    high: float | None = None  # numbers: the most allowed
    max_length: int | None = None  # strings: characters

    def describe(self) -> dict[str, Any]:
        """The field as JSON (the API's `GET /kinds`, the CLI, the docs)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "help": self.help}
        for key, value in (("default", self.default), ("min", self.low), ("max", self.high),
                           ("maxLength", self.max_length)):  # fmt: skip
            if value is not None:
                out[key] = value
        return out

    def within(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def bounds(self) -> str:
        if self.low is not None and self.high is not None:
            return f"from {self.low:g} to {self.high:g}"
        return f"at least {self.low:g}" if self.low is not None else f"at most {self.high:g}"

    def check(self, payload: dict[str, Any]) -> None:
        """Raises `PayloadError` naming this field; an absent field takes its default."""
        if payload.get(self.name) is None:
            return
        value = payload[self.name]
        wanted = PYTHON_TYPES[self.type]
        # bool is an int in Python; a number field never takes one.
        is_bool = isinstance(value, bool) and self.type != "boolean"
        if is_bool or not isinstance(value, wanted) or (self.type == "number" and value != value):
            raise PayloadError(self.name, f"must be {_a(self.type)}, got {shown(value)}")
        # Compared before any conversion: a 400-digit integer overflows a float.
        numeric = self.type in ("number", "integer")
        if numeric and isinstance(value, int | float) and not self.within(value):
            raise PayloadError(self.name, f"must be {self.bounds()}, got {shown(value)}")
        too_long = isinstance(value, str) and len(value) > (self.max_length or len(value))
        if too_long:
            raise PayloadError(self.name, f"must be at most {self.max_length} characters")


def _a(kind: str) -> str:
    return {"integer": "a whole number", "any": "a JSON value", "object": "a JSON object"}.get(
        kind, f"a {kind}"
    )


def check(payload: dict[str, Any], fields: Iterable[Field], kind: str) -> None:
    """Every field of `payload` is one of `fields`, and each is what it declares."""
    declared = {f.name: f for f in fields}
    unknown = sorted(set(payload) - set(declared))
    if unknown:
        raise PayloadError(unknown[0][:64], f"is not a setting of the {kind} kind")
    for field in declared.values():
        field.check(payload)


def defaults(fields: Iterable[Field]) -> dict[str, Any]:
    return {f.name: f.default for f in fields if f.default is not None}
