"""Where the run's shape is now, and when the scheduler's next tick is due.

The run's clock lives in Redis (its shape time, answered by `release.lua`); between answers the
scheduler goes on with its own monotonic clock from the last one (`sync`). From that it asks
for the shape's target and budget (`ask`), and ticks when the next job is due, never more often
than Redis round trips are worth, and just before each of Redis' whole seconds, so what is due
in a second is released in it (the run's timeline counts whole seconds). Pure but for the clock
it is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from lab.runtime.shapes import Plan
from lab.runtime.stores.release import Ask

# At high rates each tick publishes what accumulated since the last (the shape's integral keeps
# the rate exact); ticking more often than this only spends CPU on Redis round trips.
MIN_TICK_S = 0.02
MAX_TICK_S = 0.2
ADVANCE_EVERY_S = 0.05
ETA_EVERY_S = 1.0
# A tick this long before each of Redis' whole seconds releases what is due by the second's end:
# a tick due at the very edge that fires a few ms late on a busy machine would count the
# second's last jobs in the next one.
SECOND_EDGE_S = 0.010


def next_tick(due_s: float | None, confirms_outstanding: bool) -> float:
    """Seconds until the next tick: when the shape's next job is due (None: not known), but soon
    while confirms are still to be recorded, and never so often that ticks only spend Redis
    round trips."""
    cap = ADVANCE_EVERY_S if confirms_outstanding else MAX_TICK_S
    return min(max(due_s if due_s is not None else 0.0, MIN_TICK_S), cap)


class Pace:
    """The followed run's shape time, as of Redis' last answer and this process's clock since."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.synced: tuple[float, float, int] | None = None  # (shape s, our clock, Redis ms)
        self._eta: tuple[float, float | None] = (-ETA_EVERY_S, None)

    def sync(self, elapsed_ms: int, redis_ms: int) -> None:
        self.synced = (elapsed_ms / 1000, self.clock(), redis_ms)

    def forget(self) -> None:
        """The clock is read again before the next target (another run, or no answer)."""
        self.synced = None

    def elapsed(self) -> float | None:
        """The run's shape time now."""
        if self.synced is None:
            return None
        shape_s, at, _redis_ms = self.synced
        return shape_s + (self.clock() - at)

    def to_second_edge(self) -> float | None:
        """Seconds until Redis' next whole second."""
        if self.synced is None:
            return None
        _shape_s, synced_at, redis_ms = self.synced
        redis_now_s = redis_ms / 1000 + (self.clock() - synced_at)
        return math.ceil(redis_now_s) - redis_now_s

    def ask(self, plan: Plan | None, lag: int, burst_s: float) -> Ask | None:
        """The shape's target and budget now; None (only read the clock) until it is known."""
        t = self.elapsed()
        if t is None or plan is None:
            return None
        to_edge = self.to_second_edge()
        if to_edge is not None and to_edge <= SECOND_EDGE_S:
            t += to_edge  # what is due by the end of this second, released in it
        now = self.clock()
        if now - self._eta[0] >= ETA_EVERY_S:  # a search over the shape: once a second is enough
            self._eta = (now, plan.eta_s(t, lag))
        return Ask(target=plan.target(t), budget=plan.budget(t, burst_s), version=plan.version,
                   y=plan.shape.rate(t), eta_s=self._eta[1])  # fmt: skip

    def next_tick(self, plan: Plan | None, next_seq: int, lag: int, outstanding: bool) -> float:
        """When the shape's next job is due, within `next_tick`'s bounds, and a tick just before
        each whole second of Redis' clock."""
        t = self.elapsed()
        if t is None or plan is None:
            return 0.0
        due = None
        if next_seq < plan.x:
            at = plan.shape.seconds_until(next_seq + 1 - plan.base + lag, t)
            due = None if at is None else at - t
        delay = next_tick(due, outstanding)
        to_edge = self.to_second_edge()
        if to_edge is not None and 0 < to_edge - SECOND_EDGE_S < delay:
            delay = max(to_edge - SECOND_EDGE_S, 0.0005)
        return delay
