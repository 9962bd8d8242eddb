"""The capacity search's decisions: which rate to probe next, and when the answer is known.
Pure: the probes so far in, the next step out; the I/O that runs a probe is `lab.capacity.probe`.

A probe is one rate and whether the pipeline's objectives held over its step. The search

1. **brackets**: the start rate, then twice the highest rate that held, until a probe breaks (or
   the most it may probe holds); if the start rate breaks, half the lowest that broke, until one
   holds (or the least it may probe breaks);
2. **bisects** between the highest rate that held and the lowest that broke, at their geometric
   middle (the precision is relative, so halving the ratio is what narrows it fastest), until
   the lowest that broke is within the precision of the highest that held;
3. **repeats** the highest rate that held until it has held `repetitions` times: a probe near
   the boundary may hold by luck once. One break in any repetition is a break.

The answer is an interval: `low`, the highest rate that held in every repetition, and `high`,
the lowest rate that broke in one. Nothing above a rate that broke is ever probed again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SIGNIFICANT = 5  # a rate's digits: a repeated probe is the same rate, read back from a CSV
DOWN_TO = 1024  # the least rate probed: the start rate over this


@dataclass(frozen=True)
class Probe:
    rate: float  # jobs per second, offered at a constant rate
    held: bool  # every objective held over the step


@dataclass(frozen=True)
class Bounds:
    """What the search may do: where it starts, how narrow it ends, how often a rate that held
    is repeated, the rates it may probe, and how many probes it may spend."""

    start: float
    precision: float = 0.05  # high ≤ low × (1 + precision)
    repetitions: int = 1
    max_rate: float = 1_000_000.0
    min_rate: float = 0.0  # 0: the start rate over DOWN_TO
    max_probes: int = 40

    @property
    def least(self) -> float:
        return self.min_rate or rounded(self.start / DOWN_TO)


@dataclass(frozen=True)
class Step:
    """The search now: the next rate to probe (None when done), why, and the interval so far."""

    rate: float | None
    phase: str  # bracket, down, bisect, repeat, done
    low: float | None  # the highest rate that held in every repetition (None: none yet)
    high: float | None  # the lowest rate that broke (None: none yet)
    why: str = ""  # when done: what ended the search

    @property
    def done(self) -> bool:
        return self.rate is None


def rounded(rate: float) -> float:
    """`rate` to `SIGNIFICANT` digits: the same rate whether computed or read back."""
    if rate <= 0 or not math.isfinite(rate):
        return rate
    digits = SIGNIFICANT - 1 - math.floor(math.log10(rate))
    return round(rate, digits)


def tally(probes: Sequence[Probe]) -> dict[float, tuple[int, int]]:
    """Each rate probed: (times it held, times it broke)."""
    out: dict[float, tuple[int, int]] = {}
    for probe in probes:
        held, broke = out.get(rounded(probe.rate), (0, 0))
        out[rounded(probe.rate)] = (held + probe.held, broke + (not probe.held))
    return out


def interval(probes: Sequence[Probe], repetitions: int) -> tuple[float | None, float | None]:
    """(the highest rate below every break that held in all `repetitions`, the lowest rate that
    broke): the answer, whenever it is asked."""
    counts = tally(probes)
    high = min((r for r, (_, broke) in counts.items() if broke), default=None)
    held = [r for r, (h, broke) in counts.items()
            if not broke and h >= repetitions and (high is None or r < high)]  # fmt: skip
    return max(held, default=None), high


def decide(probes: Sequence[Probe], bounds: Bounds) -> Step:
    """The next step of the search after `probes` (in the order they ran)."""
    counts = tally(probes)
    high = min((r for r, (_, broke) in counts.items() if broke), default=None)
    held_below = [r for r, (h, broke) in counts.items()
                  if h and not broke and (high is None or r < high)]  # fmt: skip
    candidate = max(held_below, default=None)
    low, _ = interval(probes, bounds.repetitions)

    def step(rate: float | None, phase: str, why: str = "") -> Step:
        return Step(rate, phase, low, high, why)

    if len(probes) >= bounds.max_probes:
        return step(None, "done", f"spent its {bounds.max_probes} probes")
    if high is None:
        if candidate is None:
            return step(rounded(min(bounds.start, bounds.max_rate)), "bracket")
        if candidate < bounds.max_rate:
            return step(rounded(min(candidate * 2, bounds.max_rate)), "bracket")
        if counts[candidate][0] < bounds.repetitions:
            return step(candidate, "repeat")
        return step(None, "done", f"held at {bounds.max_rate:g} jobs/s, the most it may probe")
    if candidate is None:
        if high <= bounds.least:
            return step(None, "done", f"broke at {bounds.least:g} jobs/s, the least it may probe")
        return step(rounded(max(high / 2, bounds.least)), "down")
    middle = rounded(math.sqrt(candidate * high))
    # Narrow enough, or narrower than a rate's digits can split.
    if high <= candidate * (1 + bounds.precision) or not candidate < middle < high:
        if counts[candidate][0] < bounds.repetitions:
            return step(candidate, "repeat")
        return step(None, "done", f"within {bounds.precision:.1%}")
    return step(middle, "bisect")


def worst_case(bounds: Bounds) -> int:
    """The most probes a search of a noiseless pipeline takes (noise can add repetitions that
    break, each followed by more bisection; `max_probes` bounds every search)."""
    up = math.ceil(math.log2(max(bounds.max_rate / bounds.start, 1))) + 1
    down = math.ceil(math.log2(max(bounds.start / bounds.least, 1))) + 1
    bisect = math.ceil(math.log2(max(math.log(2) / math.log1p(bounds.precision), 1)))
    return min(bounds.max_probes, max(up, down) + bisect + bounds.repetitions - 1)
