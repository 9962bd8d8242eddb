"""Head-of-line age: how long the oldest job that is released but not started has waited.

AMQP cannot tell the age of a queue's head without taking the message (a peek redelivers it,
and a quorum queue counts that against its delivery limit), so `lab` works it out from what it
already knows, once a second, in the scheduler leader (`State.measure_head_ages`):

- **in hand**: each worker's heartbeat names when the oldest delivery of the run's queue that it
  holds and has not started was released (`waitingSinceMs`; a worker holds up to its prefetch);
- **in the broker**: the run's jobs released and not settled, less those workers hold
  (`inFlight`), wait in the broker; the queue is first in, first out, so they are the newest
  released, and the oldest of them was released where the run's timeline, counted back from
  now, reaches that many (`released_at_rank`, interpolated within its second).

The head is the older of the two. A retry waiting out its delay counts as waiting (its job has
not settled). A single-job queue's head is its oldest queued job whose time has come, read from
the jobs' records. Pure here; the reads are `State.measure_head_ages`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

STALE_MS = 5_000  # a measure older than this is not shown: no scheduler leader measures now


def released_at_rank(newest_first: Iterable[tuple[int, int]], rank: int) -> float | None:
    """When the `rank`-th newest job (1: the newest) was released, in epoch ms, from the jobs
    released per second `(second, count)` counted back from now; None if fewer were released.
    Jobs of one second are taken as released evenly across it."""
    if rank <= 0:
        return None
    left = rank
    for second, count in newest_first:
        if count <= 0:
            continue
        if left <= count:
            return second * 1000 + (count - left) / count * 1000
        left -= count
    return None


def head_age_ms(now_ms: int, in_hand_ms: Iterable[int], broker_ms: float | None) -> int:
    """The age of the oldest waiting job: in some worker's hand (release times, 0: none) or in
    the broker; 0 when nothing waits."""
    oldest = [t for t in in_hand_ms if t > 0]
    if broker_ms is not None:
        oldest.append(int(broker_ms))
    return max(0, now_ms - min(oldest)) if oldest else 0


def fresh(raw: dict[str, str], now_ms: int) -> dict[str, Any]:
    """The recorded ages (`State.measure_head_ages`) as readers show them: queue → ms, `run`
    and `runAgeMs`; empty when the last measure is older than `STALE_MS` (or none was made)."""
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
