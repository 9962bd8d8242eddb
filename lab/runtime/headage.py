"""Head-of-line age: how long the oldest job that is released but not started has waited.

AMQP cannot tell the age of a queue's head without taking the message (a peek redelivers it,
and a quorum queue counts that against its delivery limit), so `lab` works it out from what it
already knows, once a second, in the scheduler leader (`HeadAges.measure` (lab.runtime.stores)):

- **in hand**: each worker's heartbeat names when the oldest delivery of the run's queue that it
  holds and has not started was released (`waitingSinceMs`; a worker holds up to its prefetch);
- **in the broker**: the run's jobs released and not settled, less those workers hold
  (`inFlight`), wait in the broker; the queue is first in, first out, so they are the newest
  released, and the oldest of them was released where the run's timeline, counted back from
  now, reaches that many (`released_at_rank`, interpolated within its second).

The head is the older of the two. A retry waiting out its delay counts as waiting (its job has
not settled). A single-job queue's head is its oldest queued job whose time has come, read from
the jobs' records. Pure here; the reads are `HeadAges.measure` (lab.runtime.stores).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

STALE_MS = 5_000  # a measure older than this is not shown: no scheduler leader measures now
MAX_HOURS = 24 * 31  # the oldest hour of a backlog read; older jobs count as released then


@dataclass(frozen=True)
class Released:
    """Jobs of a run first released in one span of its timeline (epoch ms)."""

    start_ms: int
    span_ms: int
    count: int


@dataclass(frozen=True)
class HeadAge:
    """One measure of the run's queue: Redis' time, the head-of-line age, and the jobs released
    and not yet settled (`unsettled`, newest first) and of those, the ones not yet in a worker's
    hands (`waiting`): what a latency objective counts at their age so far."""

    now_ms: int
    age_ms: int = 0
    unsettled: Sequence[Released] = field(default_factory=tuple)
    waiting: Sequence[Released] = field(default_factory=tuple)

    def ages(self, groups: Sequence[Released]) -> list[tuple[float, int]]:
        """(age ms, jobs) of each span: the age of its newest job, a floor of every one's."""
        return [(max(0.0, self.now_ms - g.start_ms - g.span_ms), g.count) for g in groups]


def walk(now_s: int, started_s: int) -> list[tuple[int, list[int]]]:
    """What to read of a run's timeline to count back from now: the seconds of this minute and
    the last, then the minutes of this hour and the last, then whole hours back to the start (at
    most `MAX_HOURS`), each as (seconds a unit, units newest first). The spans follow each other
    with no gap and no overlap; reading them costs the same whatever the run's age."""
    out: list[tuple[int, list[int]]] = []
    s_low = max(started_s, (now_s // 60 - 1) * 60)
    out.append((1, list(range(now_s, s_low - 1, -1))))
    if s_low <= started_s:
        return out
    minute = s_low // 60 - 1
    m_low = max(started_s // 60, (minute // 60 - 1) * 60)
    out.append((60, list(range(minute, m_low - 1, -1))))
    if m_low <= started_s // 60:
        return out
    hour = m_low // 60 - 1
    h_low = max(started_s // 3600, hour - MAX_HOURS)
    out.append((3600, list(range(hour, h_low - 1, -1))))
    return out


def field_of(span_s: int, unit: int) -> str:
    """A unit's released count in the run's timeline hash (release.lua's `count_in_second`)."""
    return {1: "", 60: "m", 3600: "h"}[span_s] + f"{unit}:released"


def newest(groups: Sequence[Released], jobs: int) -> list[Released]:
    """The spans that hold the `jobs` newest released, the last one cut to what is left."""
    out, left = [], jobs
    for g in groups:
        if left <= 0:
            break
        if g.count > 0:
            out.append(Released(g.start_ms, g.span_ms, min(g.count, left)))
            left -= g.count
    return out


def rank_in(groups: Sequence[Released], rank: int) -> tuple[int, int] | None:
    """Which span (its index) holds the `rank`-th newest job, and its rank within it."""
    left = rank
    for i, g in enumerate(groups):
        if g.count <= 0:
            continue
        if left <= g.count:
            return i, left
        left -= g.count
    return None


def released_at_rank(newest_first: Iterable[tuple[int, int]], rank: int) -> float | None:
    """When the `rank`-th newest job (1: the newest) was released, in epoch ms, from the jobs
    released per second `(second, count)` counted back from now; None if fewer were released.
    Jobs of one second are taken as released evenly across it."""
    spans = [Released(second * 1000, 1000, count) for second, count in newest_first]
    return released_at(spans, rank)


def released_at(newest_first: Sequence[Released], rank: int) -> float | None:
    """The same from spans of any length, the jobs of a span taken as released evenly in it."""
    found = rank_in(newest_first, rank) if rank > 0 else None
    if found is None:
        return None
    g, left = newest_first[found[0]], found[1]
    return g.start_ms + (g.count - left) / g.count * g.span_ms


def head_age_ms(now_ms: int, in_hand_ms: Iterable[int], broker_ms: float | None) -> int:
    """The age of the oldest waiting job: in some worker's hand (release times, 0: none) or in
    the broker; 0 when nothing waits."""
    oldest = [t for t in in_hand_ms if t > 0]
    if broker_ms is not None:
        oldest.append(int(broker_ms))
    return max(0, now_ms - min(oldest)) if oldest else 0


def fresh(raw: dict[str, str], now_ms: int) -> dict[str, Any]:
    """The recorded ages (`HeadAges.measure`) as readers show them: queue → ms, `run` and
    `runAgeMs`; empty when the last measure is older than `STALE_MS` (or none was made)."""
    try:
        at = int(raw.get("atMs") or 0)
        if not at or now_ms - at > STALE_MS:
            return {}
        return {name: (value if name == "run" else int(value)) for name, value in raw.items()}
    except (TypeError, ValueError):
        return {}


def per_queue(ages: dict[str, Any]) -> dict[str, int]:
    """Queue → ms, from what `fresh` returns."""
    return {k: v for k, v in ages.items() if k not in ("atMs", "run", "runAgeMs")}
