"""The load shapes lab knows, one class each, registered in `SHAPES`: a new shape is one more
class here (`docs/guides/extending.md` walks through one). Each declares its JSON fields with
their bounds (as its attributes, `json_field`, where it can), its short form, how it reads in
words, its rate and its integral. Every shape holds its last rate when its time runs out (a sine
never runs out). Pure: no I/O."""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lab.runtime.fields import NUMBER, Field, FieldError, number_of
from lab.runtime.shapes.base import (
    MAX_PER_SECOND,
    MAX_SECONDS,
    MAX_STEPS,
    MAX_TRACE,
    Shape,
    json_field,
    rate_field,
    seconds_field,
)
from lab.runtime.shapes.poisson import Arrivals


@dataclass(frozen=True)
class Constant(Shape, type="constant", short="constant:{y}"):
    help = "the same rate all along"
    y: float = json_field(rate_field("y", "jobs per minute"))

    @classmethod
    def text(cls, spec: dict[str, Any]) -> str:
        return f"{spec['y']:,g}/min"

    def rate(self, t: float) -> float:
        return self.y

    def count(self, t: float) -> float:
        return self.y / 60 * max(t, 0.0)


@dataclass(frozen=True)
class Ramp(Shape, type="ramp", short="ramp:{from}..{to}:{seconds}s"):
    help = "from one rate to another in a straight line, then the last"
    start: float = json_field(rate_field("from", "jobs per minute at the start"))
    end: float = json_field(rate_field("to", "jobs per minute at the end"))
    seconds: float = json_field(seconds_field("seconds", "how long the ramp lasts"))

    @classmethod
    def text(cls, spec: dict[str, Any]) -> str:
        return f"ramp {spec['from']:,g}→{spec['to']:,g}/min over {spec['seconds']:g} s"

    def rate(self, t: float) -> float:
        if t >= self.seconds:
            return self.end
        return self.start + (self.end - self.start) * max(t, 0.0) / self.seconds

    def count(self, t: float) -> float:
        t = max(t, 0.0)
        within = min(t, self.seconds)
        jobs = (self.start * within + (self.end - self.start) * within**2 / (2 * self.seconds)) / 60
        return jobs + self.end / 60 * max(t - self.seconds, 0.0)


@dataclass(frozen=True)
class Piecewise(Shape):
    """Constant rates one after another (`steps`, `spike`), the last one held."""

    pieces: tuple[tuple[float, float], ...]  # (seconds, y)
    _starts: list[float] = field(default_factory=list, init=False, compare=False, repr=False)
    _before: list[float] = field(default_factory=list, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        t = jobs = 0.0
        for secs, y in self.pieces:  # when each piece starts, and the jobs before it
            self._starts.append(t)
            self._before.append(jobs)
            t += secs
            jobs += y / 60 * secs

    def _piece(self, t: float) -> int:
        return bisect.bisect_right(self._starts, t) - 1

    def rate(self, t: float) -> float:
        return self.pieces[self._piece(max(t, 0.0))][1]

    def count(self, t: float) -> float:
        t = max(t, 0.0)
        i = self._piece(t)
        return self._before[i] + self.pieces[i][1] / 60 * (t - self._starts[i])


STEP = Field("", "object", "one step", fields=(seconds_field("seconds", "how long it lasts"),
                                               rate_field("y", "jobs per minute")))  # fmt: skip


@dataclass(frozen=True)
class Steps(Piecewise, type="steps", short="steps:{seconds}s@{y},..."):
    help = "constant rates one after another, the last one held"
    fields: ClassVar[tuple[Field, ...]] = (
        Field("steps", "list", "the steps, in order", required=True, min_length=1,
              max_length=MAX_STEPS, each=STEP),
    )  # fmt: skip

    @classmethod
    def of(cls, values: dict[str, Any], seed: int) -> Shape:
        return cls(tuple((s["seconds"], s["y"]) for s in values["steps"]))

    @classmethod
    def from_short(cls, text: str) -> dict[str, Any] | None:
        if not text.startswith("steps:"):
            return None
        steps = []
        for part in text[len("steps:") :].split(",")[: MAX_STEPS + 1]:
            found = re.fullmatch(rf"{NUMBER}s@{NUMBER}", part.strip(), re.ASCII)
            if not found:
                return None
            steps.append({"seconds": number_of(found[1]), "y": number_of(found[2])})
        return {"type": "steps", "steps": steps}

    @classmethod
    def text(cls, spec: dict[str, Any]) -> str:
        shown = ", ".join(f"{s['y']:,g}/min×{s['seconds']:g} s" for s in spec["steps"][:4])
        return "steps " + shown + (" …" if len(spec["steps"]) > 4 else "")

    def as_json(self) -> dict[str, Any]:
        return {"type": "steps", "steps": [{"seconds": s, "y": y} for s, y in self.pieces]}


@dataclass(frozen=True)
class Spike(Piecewise, type="spike", short="spike:{base}..{peak}@{at}s+{seconds}s"):
    help = "a base rate, a peak for a while, then the base again"
    # Defaults only because `pieces` (made from them by `of`) comes first.
    base: float = json_field(rate_field("base", "jobs per minute before and after"), default=0.0)
    peak: float = json_field(rate_field("peak", "jobs per minute during the spike"), default=0.0)
    at: float = json_field(Field("at", "number", "when the spike starts", low=0, high=MAX_SECONDS,
                                 required=True, unit="s"), default=0.0)  # fmt: skip
    seconds: float = json_field(seconds_field("seconds", "how long the spike lasts"), default=0.0)

    @classmethod
    def of(cls, values: dict[str, Any], seed: int) -> Shape:
        base, peak, at, secs = values["base"], values["peak"], values["at"], values["seconds"]
        pieces = ((secs, peak), (1.0, base))
        return cls(((at, base), *pieces) if at > 0 else pieces, base, peak, at, secs)

    @classmethod
    def text(cls, spec: dict[str, Any]) -> str:
        return (f"spike {spec['base']:,g}→{spec['peak']:,g}/min at {spec['at']:g} s "
                f"for {spec['seconds']:g} s")  # fmt: skip


@dataclass(frozen=True)
class Sine(Shape, type="sine", short="sine:{min}..{max}/{period}s"):
    help = "a rate that swings between a low and a high"
    low: float = json_field(rate_field("min", "jobs per minute at the bottom"))
    high: float = json_field(rate_field("max", "jobs per minute at the top"))
    period: float = json_field(seconds_field("period", "seconds from one top to the next", low=1.0))

    @classmethod
    def check(cls, values: dict[str, Any], path: str) -> None:
        if values["max"] < values["min"]:
            raise FieldError(f"{path}.max", f"must be at least {path}.min")

    @classmethod
    def text(cls, spec: dict[str, Any]) -> str:
        return f"sine {spec['min']:,g}..{spec['max']:,g}/min every {spec['period']:g} s"

    def rate(self, t: float) -> float:
        mid, amp = (self.low + self.high) / 2, (self.high - self.low) / 2
        return mid + amp * math.sin(2 * math.pi * max(t, 0.0) / self.period)

    def count(self, t: float) -> float:
        t = max(t, 0.0)
        mid, amp = (self.low + self.high) / 2, (self.high - self.low) / 2
        w = 2 * math.pi / self.period
        return (mid * t + amp / w * (1 - math.cos(w * t))) / 60


@dataclass(frozen=True)
class Trace(Shape, type="trace"):
    help = "jobs in each second, replayed (`@FILE`: a CSV, one count a line)"
    per_second: tuple[int, ...]
    _prefix: list[int] = field(default_factory=list, init=False, compare=False, repr=False)
    fields: ClassVar[tuple[Field, ...]] = (
        Field("perSecond", "list", "jobs in each second", required=True, min_length=1,
              max_length=MAX_TRACE,
              each=Field("", "integer", "jobs in the second", low=0, high=MAX_PER_SECOND)),
    )  # fmt: skip

    def __post_init__(self) -> None:
        total = 0
        self._prefix.append(0)
        for n in self.per_second:
            total += n
            self._prefix.append(total)

    @classmethod
    def check(cls, values: dict[str, Any], path: str) -> None:
        if not any(values["perSecond"]):
            raise FieldError(f"{path}.perSecond", "releases nothing: every count is 0")

    @classmethod
    def of(cls, values: dict[str, Any], seed: int) -> Shape:
        return cls(tuple(values["perSecond"]))

    @classmethod
    def text(cls, spec: dict[str, Any]) -> str:
        return f"trace of {len(spec['perSecond']):,} s"

    def rate(self, t: float) -> float:
        k = min(int(max(t, 0.0)), len(self.per_second) - 1)
        return self.per_second[k] * 60.0

    def count(self, t: float) -> float:
        t = max(t, 0.0)
        k = int(t)
        if k >= len(self.per_second):
            return self._prefix[-1] + self.per_second[-1] * (t - len(self.per_second))
        return self._prefix[k] + self.per_second[k] * (t - k)

    def as_json(self) -> dict[str, Any]:
        return {"type": "trace", "perSecond": list(self.per_second)}


class Poisson(Shape, type="poisson", short="poisson:{y}"):
    """Arrivals at random (a Poisson process of mean rate y), seeded by the run's seed: any
    second's count and arrivals are known at once (`poisson.Arrivals`), and the same seed gives
    the same schedule."""

    help = "random arrivals at a mean rate, seeded"
    fields: ClassVar[tuple[Field, ...]] = (rate_field("y", "mean jobs per minute"),)

    def __init__(self, y: float, seed: int):
        self.y, self.seed = y, seed
        self.arrivals = Arrivals(y / 60, seed)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Poisson) and (self.y, self.seed) == (other.y, other.seed)

    def __hash__(self) -> int:
        return hash((self.y, self.seed))

    @classmethod
    def of(cls, values: dict[str, Any], seed: int) -> Shape:
        return cls(values["y"], seed)

    @classmethod
    def text(cls, spec: dict[str, Any]) -> str:
        return f"poisson {spec['y']:,g}/min"

    def rate(self, t: float) -> float:
        return self.y

    def count(self, t: float) -> float:
        return self.arrivals.count(t)

    def seconds_until(self, jobs: float, after: float = 0.0) -> float | None:
        return self.arrivals.seconds_until(jobs, after)

    def as_json(self) -> dict[str, Any]:
        return {"type": "poisson", "y": self.y}
