"""A field, declared once: its name, type, bounds, default and help.

One declaration serves everywhere the field is met: a kind's payload, a load shape, a toxic, an
objective, an experiment factor. `Field.read` checks a value the way an attacker's value must be
checked (a bool is not a number, a number is bounded before any conversion, only finite floats,
lists and strings of bounded length, objects with only the fields they declare) and raises
`FieldError` naming the path of what is wrong (`shape.steps[2].y`); `describe` is the field as
JSON for the CLI, the docs and the API's schema. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

FieldType = Literal["number", "integer", "string", "boolean", "object", "list", "any"]
PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "number": (int, float),
    "integer": (int,),
    "string": (str,),
    "boolean": (bool,),
    "object": (dict,),
    "list": (list,),
    "any": (object,),
}
MISSING: Any = object()  # a field's value when it is absent (`Field.read` takes the default)


class FieldError(ValueError):
    """A value a field does not take; `field` is its path (`shape.steps[2].y`)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def shown(value: Any) -> str:
    """A value in an error message: short, whatever its size (a huge int has no `:g`, and past
    4,300 digits not even a `str`)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _a(kind: str) -> str:
    return {"integer": "a whole number", "any": "a JSON value", "object": "a JSON object",
            "list": "a list"}.get(kind, f"a {kind}")  # fmt: skip


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    help: str
    default: Any = None  # taken when the field is absent; None: the field is optional
    low: float | None = None  # numbers: the least allowed
    high: float | None = None  # numbers: the most allowed
    max_length: int | None = None  # strings: characters; lists: items
    min_length: int = 0  # lists: items; strings: characters
    required: bool = False
    choices: tuple[str, ...] = ()  # strings: the only values taken
    pattern: str = ""  # strings: a regular expression the whole text must match (ASCII)
    each: Field | None = None  # lists: what every item is
    fields: tuple[Field, ...] = ()  # objects: the only fields they may have (none: any)
    unit: str = ""  # for people: "ms", "jobs/min", "KB/s"

    def describe(self) -> dict[str, Any]:
        """The field as JSON (`GET /kinds`, the CLI, the docs)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "help": self.help}
        for key, value in (("default", self.default), ("min", self.low), ("max", self.high),
                           ("maxLength", self.max_length), ("unit", self.unit or None),
                           ("choices", list(self.choices) or None),
                           ("required", self.required or None)):  # fmt: skip
            if value is not None:
                out[key] = value
        if self.each is not None:
            out["items"] = self.each.describe()
        if self.fields:
            out["fields"] = [f.describe() for f in self.fields]
        return out

    def within(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def bounds(self) -> str:
        # `,.15g`: 10,000,000 reads as itself, where `g` would write 1e+07.
        if self.low is not None and self.high is not None:
            return f"from {self.low:,.15g} to {self.high:,.15g}"
        if self.low is None and self.high is None:
            return "any"
        return (
            f"at least {self.low:,.15g}" if self.low is not None else f"at most {self.high:,.15g}"
        )

    def read(self, value: Any, path: str) -> Any:
        """`value` as this field takes it (the default when it is MISSING or None), or
        `FieldError` naming `path`."""
        if value is MISSING or value is None:
            if self.required:
                raise FieldError(path, "is required")
            return self.default
        return self._typed(value, path)

    def _typed(self, value: Any, path: str) -> Any:
        wanted = PYTHON_TYPES[self.type]
        # bool is an int in Python; a number field never takes one.
        is_bool = isinstance(value, bool) and self.type != "boolean"
        if is_bool or not isinstance(value, wanted):
            raise FieldError(path, f"must be {_a(self.type)}, got {shown(value)}")
        return self._within(value, path)

    def _within(self, value: Any, path: str) -> Any:
        if self.type in ("number", "integer"):
            # Compared before any conversion: a 400-digit integer overflows a float.
            if isinstance(value, float) and not math.isfinite(value):
                raise FieldError(path, f"must be a finite number {self.bounds()}")
            if not self.within(value):
                raise FieldError(path, f"must be {self.bounds()}, got {shown(value)}")
            return float(value) if self.type == "number" else value
        if self.type == "string":
            return self._string(value, path)
        if self.type == "list":
            return self._list(value, path)
        if self.type == "object" and self.fields:
            return read_fields(self.fields, value, path)
        return value

    def _string(self, value: str, path: str) -> str:
        if self.max_length is not None and len(value) > self.max_length:
            raise FieldError(path, f"must be at most {self.max_length} characters")
        if len(value) < self.min_length:
            raise FieldError(path, f"must be at least {self.min_length} characters")
        if self.choices and value not in self.choices:
            raise FieldError(path, f"must be one of {', '.join(self.choices)}")
        if self.pattern and not re.fullmatch(self.pattern, value, re.ASCII):
            raise FieldError(path, f"{shown(value)} does not match {self.pattern}")
        return value

    def _list(self, value: list[Any], path: str) -> list[Any]:
        most = self.max_length if self.max_length is not None else len(value)
        if not self.min_length <= len(value) <= most:
            raise FieldError(path, f"must be a list of {self.min_length} to {most:,} items")
        if self.each is None:
            return list(value)
        return [self.each.read(item, f"{path}[{i}]") for i, item in enumerate(value)]


def read_fields(fields: tuple[Field, ...], given: Any, path: str, *,
                ignore: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    """Every declared field of the object `given`, read (`Field.read`); a field it does not
    declare (other than `ignore`) is refused by name."""
    if not isinstance(given, Mapping):
        raise FieldError(path, f"must be a JSON object, got {shown(given)}")
    declared = {f.name: f for f in fields}
    for name in given:
        if name not in declared and name not in ignore:
            plain = isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name)
            label = name if plain else shown(name)[:64]
            where = f"{path}.{label}" if path else str(label)
            raise FieldError(where, "is not one of its fields: " + ", ".join(declared))
    return {
        f.name: f.read(given.get(f.name, MISSING), f"{path}.{f.name}" if path else f.name)
        for f in fields
    }


# Numbers in text (short forms, command lines): ASCII digits only ('²'.isdigit() is true in
# Python and `\d` matches '٣'), and few of them, so a number is bounded before it is converted.
NUMBER = r"([0-9]{1,15}(?:\.[0-9]{1,15})?)"


def number_of(text: str) -> float | int:
    """A number matched by `NUMBER`: an int when it is whole."""
    value = float(text)
    return int(value) if value.is_integer() else value
