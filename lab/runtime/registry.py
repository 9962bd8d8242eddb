"""Registries of self-describing kinds: a load shape, a toxic, an objective, an experiment factor
or a compared figure is one class that carries its name, its fields (`lab.runtime.fields`), its
short form and its help. Parsing, validation, the CLI's help, the docs' tables and the API's
schema are all built from the classes, so adding one is one class in one file (a worked example
per registry is in `docs/guides/extending.md`).

    SHAPES = Registry("shape", ShapeError)

    class Shape(Described):
        registry = SHAPES

    class Constant(Shape, type="constant", short="constant:{y}"):
        help = "the same rate all along"
        fields = (Field("y", "number", "jobs per minute", low=0.1, high=6e7, required=True),)

A class names itself in its class statement, and that registers it: a class with a name is
always found by it, and there is no list to keep beside the classes.

Pure: no I/O.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeVar, cast

from lab.runtime.fields import NUMBER, Field, FieldError, number_of, read_fields, shown


class Described:
    """What a registered class says about itself. `type` is its name in JSON (the registry's
    key); `short` is its command-line form, `{field}` standing for a number (`{field}s` for a
    number of seconds is written as is: `ramp:{from}..{to}:{seconds}s`). Both are given in the
    class statement (`class Ramp(Shape, type="ramp", short=...)`), which registers the class in
    the `registry` its base names (a class without a `type`, such as a base, is not registered)."""

    registry: ClassVar[Registry[Any] | None] = None
    type: ClassVar[str] = ""
    help: ClassVar[str] = ""
    fields: ClassVar[tuple[Field, ...]] = ()
    short: ClassVar[str] = ""

    def __init_subclass__(cls, type: str = "", short: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if short:
            cls.short = short
        if type:
            if cls.registry is None:
                raise TypeError(f"{cls.__name__} names its type {type!r}, but no base of it "
                                f"says which registry it joins (`registry = ...`)")  # fmt: skip
            cls.type = type
            cls.registry.add(cls)

    @classmethod
    def check(cls, values: dict[str, Any], path: str) -> None:
        """Rules between fields (a sine's max at least its min); raise `FieldError`."""

    @classmethod
    def from_short(cls, text: str) -> dict[str, Any] | None:
        """The JSON form of `text` in this kind's short form, or None when it is not one: built
        from `short`; a kind whose short form is not a fixed pattern overrides it."""
        if not cls.short:
            return None
        names: list[str] = []

        def slot(match: re.Match[str]) -> str:
            names.append(match[1])
            return NUMBER

        pattern = re.sub(r"\\\{(\w+)\\\}", slot, re.escape(cls.short))
        found = re.fullmatch(pattern, text, re.ASCII)
        if not found:
            return None
        return {"type": cls.type, **{n: number_of(v) for n, v in zip(names, found.groups(),
                                                                       strict=True)}}  # fmt: skip

    @classmethod
    def about(cls) -> str:
        """What the kind is, in the docs' table: its help (a compared figure adds which way is
        better)."""
        return cls.help


T = TypeVar("T", bound=Described)


class Registry(Generic[T]):
    """Every kind of one noun, by type name. `error(field, message)` makes the error its parser
    raises (each noun keeps its own: `ShapeError`, `SloError`, ...); `key` is the JSON field that
    names the kind, and `kind_of` maps its value to a type name when several values share a kind
    (every `<family>.<stat>` objective is a `latency`)."""

    def __init__(self, noun: str, error: Callable[[str, str], Exception], key: str = "type",
                 kind_of: Callable[[str], str | None] | None = None):  # fmt: skip
        self.noun = noun
        self.error = error
        self.key = key
        self.kind_of = kind_of
        self.kinds: dict[str, type[T]] = {}

    def add(self, cls: type[T]) -> type[T]:
        """Register `cls`: its class statement does, by naming its `type`."""
        if not cls.type:
            raise ValueError(f"{cls.__qualname__}: a {self.noun} needs a type name (`type=`)")
        taken = self.kinds.get(cls.type)
        if taken is not None:
            raise ValueError(f"{self.noun} {cls.type!r} of {cls.__module__}.{cls.__qualname__} "
                             f"is taken by {taken.__module__}.{taken.__qualname__}: "
                             "each needs a type name of its own")  # fmt: skip
        self.kinds[cls.type] = cls
        return cls

    @contextmanager
    def restored(self) -> Iterator[Registry[T]]:
        """The registry as it is now, again when the block ends: a test registers a kind of
        its own for the block only."""
        before = dict(self.kinds)
        try:
            yield self
        finally:
            self.kinds.clear()
            self.kinds.update(before)

    def __iter__(self) -> Iterator[type[T]]:
        return iter(self.kinds.values())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.kinds)

    def find(self, value: Any) -> type[T] | None:
        """The class the name `value` stands for (through `kind_of`), or None."""
        name = self.kind_of(value) if self.kind_of and isinstance(value, str) else value
        return self.kinds.get(name) if isinstance(name, str) else None

    def kind(self, spec: Any, path: str | None = None) -> type[T]:
        """The class `spec` names, or the noun's error naming its key."""
        path = self.noun if path is None else path
        if not isinstance(spec, dict):
            raise self.error(path, f"must be a JSON object with a {self.key!r}")
        found = self.find(spec.get(self.key))
        if found is None:
            raise self.error(f"{path}.{self.key}", f"{shown(spec.get(self.key))}: must be one of "
                             f"{', '.join(self.names)}")  # fmt: skip
        return found

    def values(self, spec: Any, path: str | None = None) -> tuple[type[T], dict[str, Any]]:
        """The class `spec` names and its fields, every one checked."""
        path = self.noun if path is None else path
        cls = self.kind(spec, path)
        try:
            values = read_fields(cls.fields, spec, path, ignore=(self.key,))
            cls.check(values, path)
        except FieldError as exc:
            raise self.error(exc.field, exc.message) from None
        return cls, values

    def from_text(self, text: str) -> dict[str, Any] | None:
        """The JSON form of a short form (`ramp:600..12000:120s`), or None."""
        for cls in self.kinds.values():
            found = cls.from_short(text)
            if found is not None:
                return found
        return None

    def table(self) -> str:
        """A Markdown table of every kind and its fields, for the docs (`lab.cli.reference`)."""
        shorts = any(cls.short for cls in self.kinds.values())  # else no such column
        head = [self.key, "fields", *(["short form"] if shorts else []), "what it is"]
        rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for cls in self.kinds.values():
            cells = [f"`{cls.type}`", "; ".join(_cell(f) for f in cls.fields)]
            cells += [f"`{cls.short}`" if cls.short else ""] if shorts else []
            rows.append("| " + " | ".join([*cells, cls.about()]) + " |")
        return "\n".join(rows)

    def schema(self) -> list[dict[str, Any]]:
        """Every kind with its fields as JSON (`GET /kinds`-style listings, the API's docs)."""
        return [
            {self.key: cls.type, "help": cls.help, "short": cls.short or None,
             "fields": [f.describe() for f in cls.fields]}
            for cls in self.kinds.values()
        ]  # fmt: skip


def declare(base: type[T], class_name: str, name: str, attributes: dict[str, Any]) -> type[T]:
    """A subclass of `base` made by code rather than written out (a figure's one-line
    declaration, a process setting's factor), registered as its class statement would be."""
    made = types.new_class(class_name, (base,), {"type": name},
                           lambda namespace: namespace.update(attributes))  # fmt: skip
    return cast("type[T]", made)


def _cell(field: Field) -> str:
    """A field in the docs' table: its name, what it takes (bounds, choices or type), its unit."""
    if field.choices:
        takes = "one of " + ", ".join(f"`{c}`" for c in field.choices)
    elif field.pattern:
        takes = f"text matching `{field.pattern}`".replace("|", "\\|")
    else:
        takes = field.bounds() if field.type in ("number", "integer") else field.type
    return f"`{field.name}` {takes}" + (f" {field.unit}" if field.unit else "")
