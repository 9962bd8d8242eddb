"""What every load shape is: Y (jobs per minute) over shape time, its integral, and the one
registry of shapes (`SHAPES`) that parsing, the CLI's help, the docs and the API are built from.
Pure: no I/O."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, cast

from lab.runtime.fields import Field
from lab.runtime.registry import Described, Registry

MIN_RATE = 0.1  # jobs per minute: one job per 10 minutes at the slowest
MAX_RATE = 60_000_000  # a million a second, far past what one queue takes
MAX_SECONDS = 7 * 24 * 3600  # the longest segment, step, period or spike
MAX_STEPS = 1000
MAX_TRACE = 86_400  # a day of seconds
MAX_PER_SECOND = MAX_RATE // 60
# The longest an ETA search looks ahead, in shape time: past it, a release "never" ends (a rate
# of 0.1 a minute and 10 M jobs is 190 years).
MAX_ETA_S = 100 * 365 * 86_400


class ShapeError(ValueError):
    """A shape lab cannot follow; `field` names the part (`shape.to`, `shape.steps[2].y`)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


SHAPES: Registry[Any] = Registry("shape", ShapeError)


def rate_field(name: str, help: str) -> Field:
    return Field(name, "number", help, low=MIN_RATE, high=MAX_RATE, required=True, unit="jobs/min")


def seconds_field(name: str, help: str, low: float = 0.001) -> Field:
    return Field(name, "number", help, low=low, high=MAX_SECONDS, required=True, unit="s")


JSON = "lab.shape.json"  # a dataclass field's metadata: the JSON field it is


def json_field(spec: Field, **options: Any) -> Any:
    """A shape's attribute that is also its JSON field `spec` (`start: float =
    json_field(rate_field("from", ...))`): the class's `fields`, `of` and `as_json` are built
    from these, so each field is declared once. `options` go to `dataclasses.field`."""
    return dataclasses.field(metadata={JSON: spec}, **options)


class Shape(Described):
    """Y over shape time: `rate(t)` in jobs per minute, `count(t)` jobs released in [0, t].
    A registered shape also says how it is built from its checked fields (`of`) and how it reads
    in one line (`text`)."""

    registry = SHAPES
    # (attribute, its JSON field) of each attribute declared with `json_field`, in order
    declared: ClassVar[tuple[tuple[str, Field], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = tuple((name, value.metadata[JSON]) for name, value in vars(cls).items()
                    if isinstance(value, dataclasses.Field) and JSON in value.metadata)  # fmt: skip
        if own:
            cls.declared = own
            cls.fields = tuple(spec for _, spec in own)

    @classmethod
    def of(cls, values: dict[str, Any], seed: int) -> Shape:
        """The shape from its checked fields: by default, each declared attribute its field's."""
        if not cls.declared:
            raise NotImplementedError
        return cast(Any, cls)(**{name: values[spec.name] for name, spec in cls.declared})

    @classmethod
    def text(cls, spec: dict[str, Any]) -> str:
        """The shape in one line for people (`ramp 600→12,000/min over 120 s`)."""
        return cls.type

    def rate(self, t: float) -> float:
        raise NotImplementedError

    def count(self, t: float) -> float:
        raise NotImplementedError

    def as_json(self) -> dict[str, Any]:
        """The shape's JSON form: by default, its type and each declared attribute's field."""
        if not self.declared:
            raise NotImplementedError
        return {"type": self.type, **{spec.name: getattr(self, name) for name, spec in
                                      self.declared}}  # fmt: skip

    def seconds_until(self, jobs: float, after: float = 0.0) -> float | None:
        """Shape time at which `count` reaches `jobs` (None if not within `MAX_ETA_S`): the ETA
        of a release. A doubling search, then bisection: O(log t) calls of `count`."""
        if self.count(after) >= jobs:
            return after
        low, high = after, max(after, 1.0)
        while self.count(high) < jobs:
            low, high = high, high * 2
            if high > MAX_ETA_S:
                return None
        for _ in range(60):
            mid = (low + high) / 2
            low, high = (mid, high) if self.count(mid) < jobs else (low, mid)
        return high
