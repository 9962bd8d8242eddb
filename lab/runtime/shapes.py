"""Load shapes: Y (jobs per minute) over a run's time, and how many jobs it has released by then.

The scheduler follows a shape by its integral, not by its rate: at shape time t it may have
released `count(t)` jobs (plus the first, which goes at once), so a ramp, a step or a replayed
trace is followed as closely as whole jobs allow, whatever the tick. Shape time is the run's
time minus its pauses (the clock lives in the run's Redis hash, so a restarted scheduler goes on
where the shape says). Pure: no I/O; every shape is tested on a fake clock.

    {"type": "constant", "y": 600}
    {"type": "ramp", "from": 600, "to": 12000, "seconds": 120}
    {"type": "steps", "steps": [{"seconds": 30, "y": 600}, {"seconds": 30, "y": 1200}]}
    {"type": "spike", "base": 600, "peak": 6000, "at": 30, "seconds": 10}
    {"type": "sine", "min": 600, "max": 1200, "period": 60}
    {"type": "poisson", "y": 600}                  # random arrivals at mean y, seeded
    {"type": "trace", "perSecond": [3, 5, 0, 8]}   # jobs in each second, replayed

Every shape holds its last rate when its time runs out (a sine never runs out).
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MIN_RATE = 0.1  # jobs per minute: one job per 10 minutes at the slowest
MAX_RATE = 60_000_000  # a million a second, far past what one queue takes
MAX_SECONDS = 7 * 24 * 3600  # the longest segment, step, period or spike
MAX_STEPS = 1000
MAX_TRACE = 86_400  # a day of seconds
MAX_PER_SECOND = MAX_RATE // 60
TYPES = ("constant", "ramp", "steps", "spike", "sine", "poisson", "trace")


class ShapeError(ValueError):
    """A shape lab cannot follow; `field` names the part (`shape.to`, `shape.steps[2].y`)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class Shape:
    """Y over shape time: `rate(t)` in jobs per minute, `count(t)` jobs released in [0, t]."""

    type: str = ""

    def rate(self, t: float) -> float:
        raise NotImplementedError

    def count(self, t: float) -> float:
        raise NotImplementedError

    def as_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def seconds_until(self, jobs: float, after: float = 0.0) -> float | None:
        """Shape time at which `count` reaches `jobs` (None if never): the ETA of a release."""
        if self.count(after) >= jobs:
            return after
        low, high = after, max(after, 1.0)
        while self.count(high) < jobs:
            low, high = high, high * 2
            if high > 1e10:
                return None
        for _ in range(60):
            mid = (low + high) / 2
            low, high = (mid, high) if self.count(mid) < jobs else (low, mid)
        return high


@dataclass(frozen=True)
class Constant(Shape):
    y: float
    type: str = field(default="constant", init=False)

    def rate(self, t: float) -> float:
        return self.y

    def count(self, t: float) -> float:
        return self.y / 60 * max(t, 0.0)

    def as_json(self) -> dict[str, Any]:
        return {"type": "constant", "y": self.y}


@dataclass(frozen=True)
class Ramp(Shape):
    start: float
    end: float
    seconds: float
    type: str = field(default="ramp", init=False)

    def rate(self, t: float) -> float:
        if t >= self.seconds:
            return self.end
        return self.start + (self.end - self.start) * max(t, 0.0) / self.seconds

    def count(self, t: float) -> float:
        t = max(t, 0.0)
        within = min(t, self.seconds)
        jobs = (self.start * within + (self.end - self.start) * within**2 / (2 * self.seconds)) / 60
        return jobs + self.end / 60 * max(t - self.seconds, 0.0)

    def as_json(self) -> dict[str, Any]:
        return {"type": "ramp", "from": self.start, "to": self.end, "seconds": self.seconds}


@dataclass(frozen=True)
class Piecewise(Shape):
    """Constant rates one after another (`steps`, `spike`), the last one held."""

    pieces: tuple[tuple[float, float], ...]  # (seconds, y)

    @property
    def _table(self) -> tuple[list[float], list[float]]:
        """When each piece starts, and the jobs released before it (computed once)."""
        cached = self.__dict__.get("_table_cache")
        if cached is None:
            starts, before, t, jobs = [], [], 0.0, 0.0
            for seconds, y in self.pieces:
                starts.append(t)
                before.append(jobs)
                t += seconds
                jobs += y / 60 * seconds
            cached = (starts, before)
            object.__setattr__(self, "_table_cache", cached)
        return cached

    def _piece(self, t: float) -> int:
        """The piece running at t ≥ 0 (pieces follow each other; the last never ends)."""
        return bisect.bisect_right(self._table[0], t) - 1

    def rate(self, t: float) -> float:
        return self.pieces[self._piece(max(t, 0.0))][1]

    def count(self, t: float) -> float:
        t = max(t, 0.0)
        starts, before = self._table
        i = self._piece(t)
        return before[i] + self.pieces[i][1] / 60 * (t - starts[i])


@dataclass(frozen=True)
class Steps(Piecewise):
    type: str = field(default="steps", init=False)

    def as_json(self) -> dict[str, Any]:
        return {"type": "steps", "steps": [{"seconds": s, "y": y} for s, y in self.pieces]}


@dataclass(frozen=True)
class Spike(Piecewise):
    base: float = 0.0
    peak: float = 0.0
    at: float = 0.0
    seconds: float = 0.0
    type: str = field(default="spike", init=False)

    @classmethod
    def of(cls, base: float, peak: float, at: float, seconds: float) -> Spike:
        pieces = ((seconds, peak), (1.0, base))
        return cls(((at, base), *pieces) if at > 0 else pieces, base, peak, at, seconds)

    def as_json(self) -> dict[str, Any]:
        return {"type": "spike", "base": self.base, "peak": self.peak, "at": self.at,
                "seconds": self.seconds}  # fmt: skip


@dataclass(frozen=True)
class Sine(Shape):
    low: float
    high: float
    period: float
    type: str = field(default="sine", init=False)

    def rate(self, t: float) -> float:
        mid, amp = (self.low + self.high) / 2, (self.high - self.low) / 2
        return mid + amp * math.sin(2 * math.pi * max(t, 0.0) / self.period)

    def count(self, t: float) -> float:
        t = max(t, 0.0)
        mid, amp = (self.low + self.high) / 2, (self.high - self.low) / 2
        w = 2 * math.pi / self.period
        return (mid * t + amp / w * (1 - math.cos(w * t))) / 60

    def as_json(self) -> dict[str, Any]:
        return {"type": "sine", "min": self.low, "max": self.high, "period": self.period}


@dataclass(frozen=True)
class Trace(Shape):
    per_second: tuple[int, ...]
    type: str = field(default="trace", init=False)

    @property
    def _prefix(self) -> list[int]:
        cached = self.__dict__.get("_prefix_cache")
        if cached is None:
            cached, total = [0], 0
            for n in self.per_second:
                total += n
                cached.append(total)
            object.__setattr__(self, "_prefix_cache", cached)
        return cached

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


def poisson_draw(rng: random.Random, lam: float) -> int:
    """One draw of a Poisson count of mean `lam`: Knuth's product of uniforms below 30, else
    Hörmann's transformed rejection (PTRS), exact and O(1) whatever the mean."""
    if lam < 30:
        limit, k, product = math.exp(-lam), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return k
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    while True:
        u, v = rng.random() - 0.5, rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if (math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b)
                <= -lam + k * loglam - math.lgamma(k + 1)):  # fmt: skip
            return k


class Poisson(Shape):
    """Arrivals at random (a Poisson process of mean rate y), seeded: second k holds a Poisson
    count of arrivals at uniform offsets, both drawn from a generator seeded by `(seed, k)`, so
    any second is known without drawing the ones before it again (a count is one draw), and the
    same seed gives the same schedule."""

    type = "poisson"

    def __init__(self, y: float, seed: int):
        self.y, self.seed = y, seed
        self._prefix: list[int] = [0]  # arrivals before second k
        self._second: tuple[int, list[float]] = (-1, [])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Poisson) and (self.y, self.seed) == (other.y, other.seed)

    def __hash__(self) -> int:
        return hash((self.y, self.seed))

    def _count(self, k: int) -> tuple[random.Random, int]:
        rng = random.Random(f"{self.seed}:poisson:{k}")
        return rng, poisson_draw(rng, self.y / 60)

    def arrivals(self, k: int) -> list[float]:
        """Offsets (0 ≤ offset < 1) of the arrivals in second k, in order."""
        if self._second[0] != k:
            rng, n = self._count(k)
            self._second = (k, sorted(rng.random() for _ in range(n)))
        return self._second[1]

    def _before(self, k: int) -> int:
        while len(self._prefix) <= k:
            self._prefix.append(self._prefix[-1] + self._count(len(self._prefix) - 1)[1])
        return self._prefix[k]

    def rate(self, t: float) -> float:
        return self.y

    def count(self, t: float) -> float:
        t = max(t, 0.0)
        k = int(t)
        return float(self._before(k) + bisect.bisect_right(self.arrivals(k), t - k))

    def as_json(self) -> dict[str, Any]:
        return {"type": "poisson", "y": self.y}


# --- parsing ------------------------------------------------------------------------------------
def _number(shape: dict[str, Any], name: str, low: float, high: float, where: str = "") -> float:
    value = shape.get(name)
    label = f"shape.{where}{name}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ShapeError(label, f"must be a number from {low:g} to {high:g}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ShapeError(label, f"must be a number from {low:g} to {high:g}")
    return float(value)


def _rate(shape: dict[str, Any], name: str, where: str = "") -> float:
    return _number(shape, name, MIN_RATE, MAX_RATE, where)


def _seconds(shape: dict[str, Any], name: str, where: str = "", low: float = 0.001) -> float:
    return _number(shape, name, low, MAX_SECONDS, where)


def _only(shape: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(shape) - allowed - {"type"})
    if extra:
        raise ShapeError(f"shape.{extra[0]}", f"is not a field of a {shape['type']} shape")


def parse(shape: Any, seed: int = 0) -> Shape:
    """A shape from its JSON form, every parameter checked; `ShapeError` names what is wrong."""
    if not isinstance(shape, dict):
        raise ShapeError("shape", 'must be an object such as {"type": "constant", "y": 600}')
    kind = shape.get("type")
    if kind not in TYPES:
        raise ShapeError("shape.type", f"must be one of {', '.join(TYPES)}")
    if kind == "constant":
        _only(shape, {"y"})
        return Constant(_rate(shape, "y"))
    if kind == "ramp":
        _only(shape, {"from", "to", "seconds"})
        return Ramp(_rate(shape, "from"), _rate(shape, "to"), _seconds(shape, "seconds"))
    if kind == "steps":
        _only(shape, {"steps"})
        steps = shape.get("steps")
        if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
            raise ShapeError("shape.steps", f"must be a list of 1 to {MAX_STEPS} steps")
        pieces = []
        for i, step in enumerate(steps):
            if not isinstance(step, dict) or set(step) - {"seconds", "y"}:
                raise ShapeError(f"shape.steps[{i}]", 'must be {"seconds": S, "y": Y}')
            pieces.append(
                (_seconds(step, "seconds", f"steps[{i}]."), _rate(step, "y", f"steps[{i}]."))
            )
        return Steps(tuple(pieces))
    if kind == "spike":
        _only(shape, {"base", "peak", "at", "seconds"})
        return Spike.of(
            _rate(shape, "base"),
            _rate(shape, "peak"),
            _number(shape, "at", 0, MAX_SECONDS),
            _seconds(shape, "seconds"),
        )
    if kind == "sine":
        _only(shape, {"min", "max", "period"})
        low, high = _rate(shape, "min"), _rate(shape, "max")
        if high < low:
            raise ShapeError("shape.max", "must be at least shape.min")
        return Sine(low, high, _seconds(shape, "period", low=1.0))
    if kind == "poisson":
        _only(shape, {"y"})
        return Poisson(_rate(shape, "y"), seed)
    _only(shape, {"perSecond"})
    counts = shape.get("perSecond")
    if not isinstance(counts, list) or not 1 <= len(counts) <= MAX_TRACE:
        raise ShapeError("shape.perSecond", f"must be a list of 1 to {MAX_TRACE:,} counts")
    for i, n in enumerate(counts):
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_PER_SECOND:
            raise ShapeError(
                f"shape.perSecond[{i}]", f"must be a whole number from 0 to {MAX_PER_SECOND:,}"
            )
    if not any(counts):
        raise ShapeError("shape.perSecond", "releases nothing: every count is 0")
    return Trace(tuple(counts))


# --- the short forms of the command line ---------------------------------------------------------
_NUM = r"(\d+(?:\.\d+)?)"
_SECS = r"(\d+(?:\.\d+)?)s"
SHORT_FORMS: dict[str, tuple[str, Callable[..., dict[str, Any]]]] = {
    "constant": (rf"constant:{_NUM}", lambda y: {"type": "constant", "y": y}),
    "ramp": (rf"ramp:{_NUM}\.\.{_NUM}:{_SECS}",
             lambda a, b, s: {"type": "ramp", "from": a, "to": b, "seconds": s}),
    "spike": (rf"spike:{_NUM}\.\.{_NUM}@{_SECS}\+{_SECS}",
              lambda b, p, at, s: {"type": "spike", "base": b, "peak": p, "at": at, "seconds": s}),
    "sine": (rf"sine:{_NUM}\.\.{_NUM}/{_SECS}",
             lambda lo, hi, p: {"type": "sine", "min": lo, "max": hi, "period": p}),
    "poisson": (rf"poisson:{_NUM}", lambda y: {"type": "poisson", "y": y}),
}  # fmt: skip
SHORT_HELP = (
    "constant:600 | ramp:600..12000:120s | steps:30s@600,30s@1200 | spike:600..6000@30s+10s | "
    "sine:600..1200/60s | poisson:600 | @trace.csv (jobs per second, one a line) | JSON"
)


def _num(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() else value


def from_text(text: str, read: Callable[[str], str] | None = None) -> dict[str, Any]:
    """A shape's JSON form from the command line's short form (`SHORT_HELP`), a JSON object, or
    `@FILE` (a CSV of jobs per second: one count a line, or the last column of each row; a
    header row is skipped). `read` reads a file (the CLI's; tests give their own)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ShapeError("shape", f"is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ShapeError("shape", "must be a JSON object")
        return value
    if text.startswith("@"):
        if read is None:
            raise ShapeError("shape", "cannot read files here")
        return {"type": "trace", "perSecond": trace_counts(read(text[1:]))}
    if text.startswith("steps:"):
        steps = []
        for part in text[len("steps:") :].split(","):
            found = re.fullmatch(rf"{_SECS}@{_NUM}", part.strip())
            if not found:
                raise ShapeError("shape", f"step {part!r} is not SECONDSs@Y, e.g. 30s@600")
            steps.append({"seconds": _num(found[1]), "y": _num(found[2])})
        return {"type": "steps", "steps": steps}
    for pattern, build in SHORT_FORMS.values():
        found = re.fullmatch(pattern, text)
        if found:
            return build(*(_num(g) for g in found.groups()))
    raise ShapeError("shape", f"{text[:60]!r} is not a shape; give one of: {SHORT_HELP}")


def trace_counts(text: str) -> list[int]:
    """Jobs per second from a CSV: the last column of each row; a first row that is not a number
    is a header."""
    counts = []
    for i, row in enumerate(csv.reader(io.StringIO(text))):
        if not row or not row[-1].strip():
            continue
        cell = row[-1].strip()
        try:
            value = float(cell)
        except ValueError:
            if i == 0:
                continue  # a header
            raise ShapeError(
                "shape.perSecond", f"row {i + 1}: {cell[:30]!r} is not a number"
            ) from None
        if not value.is_integer():
            raise ShapeError("shape.perSecond", f"row {i + 1}: {cell!r} is not a whole number")
        counts.append(int(value))
    return counts


def describe(shape: dict[str, Any]) -> str:
    """One line for people: `ramp 600→12,000/min over 120 s`."""
    kind = shape.get("type")
    if kind == "constant":
        return f"{shape['y']:,g}/min"
    if kind == "ramp":
        return f"ramp {shape['from']:,g}→{shape['to']:,g}/min over {shape['seconds']:g} s"
    if kind == "steps":
        steps = ", ".join(f"{s['y']:,g}/min×{s['seconds']:g} s" for s in shape["steps"][:4])
        return "steps " + steps + (" …" if len(shape["steps"]) > 4 else "")
    if kind == "spike":
        return (f"spike {shape['base']:,g}→{shape['peak']:,g}/min at {shape['at']:g} s "
                f"for {shape['seconds']:g} s")  # fmt: skip
    if kind == "sine":
        return f"sine {shape['min']:,g}..{shape['max']:,g}/min every {shape['period']:g} s"
    if kind == "poisson":
        return f"poisson {shape['y']:,g}/min"
    if kind == "trace":
        return f"trace of {len(shape['perSecond']):,} s"
    return str(kind)


# --- the run's release clock ---------------------------------------------------------------------
def elapsed_s(run: dict[str, str], now_ms: int) -> float:
    """A run's shape time at `now_ms` (Redis' clock) from its hash: its time since the shape
    started, less its pauses (and the pause it is in)."""
    if not run.get("shapeStartMs"):
        return 0.0  # not released yet: the shape's clock starts with the first release
    start = int(run["shapeStartMs"])
    paused = int(run.get("pausedMs") or 0)
    if run.get("paused") == "1" and run.get("pausedAt"):
        paused += now_ms - max(int(run["pausedAt"]), start)
    return max(0.0, (now_ms - start - paused) / 1000)


@dataclass
class Plan:
    """What a run may have released at shape time t: `base` (the first job, or what an earlier
    shape had released when this one took over) plus the shape's integral, never more than x.
    The scheduler computes `target` and `budget` from it; release.lua applies the run's lag."""

    shape: Shape
    base: int
    x: int
    version: str
    seed: int = 0

    @classmethod
    def of_run(cls, run: dict[str, str]) -> Plan:
        seed = int(run.get("seed") or 0)
        raw = run.get("shape")
        spec = json.loads(raw) if raw else {"type": "constant", "y": float(run["yMinutes"])}
        return cls(parse(spec, seed), int(run.get("shapeBase") or 1), int(run["xTotal"]),
                   run.get("shapeVersion") or "1", seed)  # fmt: skip

    def target(self, t: float) -> int:
        """Jobs the shape allows by t, not capped at x: release.lua takes the run's lag off
        first, then caps (a cap first would hold a forgiven run short of x for good)."""
        # A hair of tolerance: 600/min × 0.1 s is 0.9999999 in floating point, and is 1 job.
        return self.base + math.floor(self.shape.count(t) + 1e-9)

    def budget(self, t: float, window_s: float) -> int:
        """The most a scheduler that fell behind releases at once: what the shape itself
        releases over `window_s` up to t, and two jobs."""
        before = math.floor(self.shape.count(max(0.0, t - window_s)) + 1e-9)
        return math.floor(self.shape.count(t) + 1e-9) - before + 2

    def eta_s(self, t: float, lag: int) -> float | None:
        """Seconds of shape time until the last job is released (None: never)."""
        done_at = self.shape.seconds_until(self.x - self.base + lag, t)
        return None if done_at is None else max(0.0, done_at - t)


def planner(run: dict[str, str]) -> Callable[[float], int]:
    """From a run's hash: epoch seconds → the jobs its shapes had asked for by then (the first
    job, each shape's integral from when it took over, its pauses left out; never more than
    x, and no forgiveness: what was planned, not what was released)."""
    x = int(run.get("xTotal") or 0)
    seed = int(run.get("seed") or 0)
    changes = json.loads(run["shapes"]) if run.get("shapes") else []
    if not changes:
        spec = json.loads(run["shape"]) if run.get("shape") else {
            "type": "constant", "y": float(run.get("yMinutes") or 0)}  # fmt: skip
        changes = [{"atMs": int(run.get("startedAt") or 0), "shape": spec}]
    pauses = [tuple(p) for p in (json.loads(run["pauses"]) if run.get("pauses") else [])]
    if run.get("paused") == "1" and run.get("pausedAt"):
        pauses.append((int(run["pausedAt"]), 1 << 62))
    stop = int(run.get("stoppedAt") or 0) or None
    segments = [(int(c["atMs"]), parse(c["shape"], seed), int(c.get("base", 1))) for c in changes]

    def planned(epoch_s: float) -> int:
        at = epoch_s * 1000
        if stop is not None:
            at = min(at, stop)
        current = [seg for seg in segments if seg[0] <= at]
        if not current:
            return 0
        start, shape, base = current[-1]
        paused = sum(max(0, min(to, at) - max(since, start)) for since, to in pauses)
        return min(x, base + math.floor(shape.count((at - start - paused) / 1000) + 1e-9))

    return planned
