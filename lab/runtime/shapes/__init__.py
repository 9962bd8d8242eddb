"""Load shapes: Y (jobs per minute) over a run's time, and how many jobs it has released by then.

The scheduler follows a shape by its integral, not by its rate: at shape time t it may have
released `count(t)` jobs (plus the first, which goes at once), so a ramp, a step or a replayed
trace is followed as closely as whole jobs allow, whatever the tick. Shape time is the run's
time minus its pauses (the clock lives in the run's Redis hash, so a restarted scheduler goes on
where the shape says). Every shape's `count(t)` and ETA cost O(log t) at most, so a tick never
costs more the older the run. Pure: no I/O; every shape is tested on a simulated clock.

    {"type": "constant", "y": 600}
    {"type": "ramp", "from": 600, "to": 12000, "seconds": 120}
    {"type": "steps", "steps": [{"seconds": 30, "y": 600}, {"seconds": 30, "y": 1200}]}
    {"type": "spike", "base": 600, "peak": 6000, "at": 30, "seconds": 10}
    {"type": "sine", "min": 600, "max": 1200, "period": 60}
    {"type": "poisson", "y": 600}                  # random arrivals at mean y, seeded
    {"type": "trace", "perSecond": [3, 5, 0, 8]}   # jobs in each second, replayed

The shapes are the classes of `kinds.py`, registered in `SHAPES` (a new one is one class there).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lab.runtime.shapes import kinds
from lab.runtime.shapes.base import (
    MAX_PER_SECOND,
    MAX_RATE,
    MAX_SECONDS,
    MAX_STEPS,
    MAX_TRACE,
    MIN_RATE,
    SHAPES,
    Shape,
    ShapeError,
)
from lab.runtime.shapes.poisson import poisson_draw

__all__ = [
    "MAX_PER_SECOND",
    "MAX_RATE",
    "MAX_SECONDS",
    "MAX_STEPS",
    "MAX_TRACE",
    "MIN_RATE",
    "SHAPES",
    "SHORT_HELP",
    "Plan",
    "Shape",
    "ShapeError",
    "describe",
    "elapsed_s",
    "from_text",
    "kinds",
    "parse",
    "planner",
    "poisson_draw",
    "trace_counts",
]
MAX_TEXT = 64 * 1024  # a short form or JSON typed on a command line


def parse(shape: Any, seed: int = 0) -> Shape:
    """A shape from its JSON form, every field checked; `ShapeError` names what is wrong."""
    if not isinstance(shape, dict):
        raise ShapeError("shape", 'must be an object such as {"type": "constant", "y": 600}')
    cls, values = SHAPES.values(shape, "shape")
    return cls.of(values, seed)


@lru_cache(maxsize=64)
def _parsed(text: str, seed: int) -> Shape:
    return parse(json.loads(text), seed)


def parse_stored(text: str, seed: int) -> Shape:
    """A shape from the JSON text a run's record keeps, parsed once per text (the scheduler and
    the objectives read the same record every second; a trace's parse is O(its length))."""
    return _parsed(text, seed)


SHORT_HELP = (
    "constant:600 | ramp:600..12000:120s | steps:30s@600,30s@1200 | spike:600..6000@30s+10s | "
    "sine:600..1200/60s | poisson:600 | @trace.csv (jobs per second, one a line) | JSON"
)


def from_text(text: str, read: Callable[[str], str] | None = None) -> dict[str, Any]:
    """A shape's JSON form from the command line's short form (`SHORT_HELP`), a JSON object, or
    `@FILE` (a CSV of jobs per second: one count a line, or the last column of each row; a
    header row is skipped). `read` reads a file (the CLI's; tests give their own)."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise ShapeError("shape", f"must be text of at most {MAX_TEXT:,} characters")
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            raise ShapeError("shape", f"is not JSON: {str(exc)[:80]}") from None
        if not isinstance(value, dict):
            raise ShapeError("shape", "must be a JSON object")
        return value
    if text.startswith("@"):
        if read is None:
            raise ShapeError("shape", "cannot read files here")
        return {"type": "trace", "perSecond": trace_counts(read(text[1:]))}
    found = SHAPES.from_text(text)
    if found is None:
        raise ShapeError("shape", f"{text[:60]!r} is not a shape; give one of: {SHORT_HELP}")
    return found


def trace_counts(text: str) -> list[int]:
    """Jobs per second from a CSV: the last column of each row; a first row that is not a number
    is a header."""
    counts = []
    for i, row in enumerate(csv.reader(io.StringIO(text))):
        if not row or not row[-1].strip():
            continue
        cell = row[-1].strip()
        if not (cell.isascii() and cell.replace(".", "", 1).isdigit() and len(cell) <= 15):
            if i == 0:
                continue  # a header
            raise ShapeError("shape.perSecond", f"row {i + 1}: {cell[:30]!r} is not a number")
        value = float(cell)
        if not value.is_integer():
            raise ShapeError("shape.perSecond", f"row {i + 1}: {cell!r} is not a whole number")
        counts.append(int(value))
        if len(counts) > MAX_TRACE:
            raise ShapeError("shape.perSecond", f"more than {MAX_TRACE:,} seconds")
    return counts


def describe(shape: dict[str, Any]) -> str:
    """One line for people: `ramp 600→12,000/min over 120 s` (for a shape already checked)."""
    kind = SHAPES.kinds.get(shape.get("type"))  # type: ignore[arg-type]
    return kind.text(shape) if kind is not None else str(shape.get("type"))


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
        raw = run.get("shape") or json.dumps({"type": "constant", "y": float(run["yMinutes"])})
        return cls(parse_stored(raw, seed), int(run.get("shapeBase") or 1), int(run["xTotal"]),
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
    segments = [
        (int(c["atMs"]), parse_stored(json.dumps(c["shape"], sort_keys=True), seed),
         int(c.get("base", 1)))
        for c in changes
    ]  # fmt: skip

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
