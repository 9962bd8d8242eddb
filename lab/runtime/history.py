"""Job history that outlives every process: what was released, processed and failed, when.

The same Lua scripts that count a job (`advance.lua`, `record.lua`) also count it here, in Redis,
so no process keeps history in memory and a restarted API, a reopened notebook or a report
written later all read the same figures:

- a run's **timeline**: jobs per second over the run's life (`GET /runs/{id}/timeline`, the
  notebook panel's chart, `lab.measure.drill` reports);
- the lab's **history**: jobs per 10-second bucket over the last `LAB_HISTORY_S` (default an
  hour), whatever the runs (`GET /history`, the admin page's chart).

Everything here is pure: the stores' `Runs.timeline` and `Overview.recent` read Redis and call
these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FIELDS = ("released", "processed", "failed")
MARKS = ("forgiven", "backpressure", "paused")
"""A run's seconds the release did not follow its shape, and why: jobs forgiven to a scheduler
that fell behind (a restart, a new leader), the backlog at its bound, the run paused."""
IN_SECOND = tuple(f + "Ms" for f in FIELDS)
"""Per second of a run's timeline: how far into the second its jobs were counted, summed over
them (ms), so a job's time in the system can be read from the timeline to the millisecond."""
HISTORY_BUCKET_S = 10
TIMELINE_BUCKET_S = 1
MAX_FILLED = 20_000  # a longer span lists only the seconds that counted something


KNOWN = frozenset((*FIELDS, *MARKS, *IN_SECOND))


def _points(counts: dict[int, dict[str, int]], first: int, last: int, step: int) -> list[dict]:
    """One point per bucket from `first` to `last`, zeros where nothing was counted."""
    if counts:
        first, last = min(first, min(counts)), max(last, max(counts))
    buckets = (
        range(first, last + 1, step) if (last - first) // step <= MAX_FILLED else sorted(counts)
    )
    return [{"t": t, **{f: counts.get(t, {}).get(f, 0) for f in FIELDS}} for t in buckets]


def timeline(
    run_id: str,
    raw: dict[str, str],
    started_ms: str | None,
    ended_ms: str | None,
    now_s: int,
    planned: Callable[[float], int] | None = None,
) -> dict[str, Any]:
    """A run's jobs per second from its start to its end (or now), from its timeline hash
    (`<second>:<field>` → count) and its times: `released` counts a job in the second it was
    first published, `processed` and `failed` in the second they were counted; a second where
    the release did not follow the shape carries its marks (`MARKS`) and a second with jobs
    how far into it they were counted (`IN_SECOND`); with `planned` (epoch
    seconds → jobs the shape had asked for by then), each point has the run's `planned` total
    by the end of its second."""
    counts: dict[int, dict[str, int]] = {}
    for name, value in raw.items():
        second, _, field = name.partition(":")
        if second.isascii() and second.isdigit() and field in KNOWN:
            counts.setdefault(int(second), {})[field] = int(value)
    start_s = int(started_ms) // 1000 if started_ms else now_s
    end_s = int(ended_ms) // 1000 if ended_ms else now_s
    points = _points(counts, start_s, end_s, TIMELINE_BUCKET_S)
    for point in points:
        for extra in (*MARKS, *IN_SECOND):
            if counts.get(point["t"], {}).get(extra):
                point[extra] = counts[point["t"]][extra]
        if planned is not None:
            point["planned"] = planned(point["t"] + TIMELINE_BUCKET_S)
    return {"runId": run_id, "bucketSeconds": TIMELINE_BUCKET_S, "points": points}


def recent_buckets(seconds: int, kept_s: int, now_s: int) -> list[int]:
    """The 10-second buckets of the last `seconds` (at most the `kept_s` Redis keeps)."""
    seconds = max(HISTORY_BUCKET_S, min(seconds, kept_s))
    last = now_s - now_s % HISTORY_BUCKET_S
    first = last - (seconds // HISTORY_BUCKET_S - 1) * HISTORY_BUCKET_S
    return list(range(first, last + 1, HISTORY_BUCKET_S))


def recent(buckets: list[int], values: list[list[str | None]]) -> dict[str, Any]:
    """Jobs per bucket from each bucket's (released, processed, failed) counts."""
    counts = {
        bucket: {f: int(v or 0) for f, v in zip(FIELDS, row, strict=True)}
        for bucket, row in zip(buckets, values, strict=True)
        if any(row)
    }
    return {
        "bucketSeconds": HISTORY_BUCKET_S,
        "seconds": len(buckets) * HISTORY_BUCKET_S,
        "points": _points(counts, buckets[0], buckets[-1], HISTORY_BUCKET_S),
    }
