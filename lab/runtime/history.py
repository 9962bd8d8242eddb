"""Job history that outlives every process: what was released, processed and failed, when.

The same Lua scripts that count a job (`advance.lua`, `record.lua`) also count it here, in Redis,
so no process keeps history in memory and a restarted API, a reopened notebook or a report
written later all read the same figures:

- a run's **timeline**: jobs per second over the run's life (`GET /runs/{id}/timeline`, the
  notebook panel's chart, `lab.measure.drill` reports);
- the lab's **history**: jobs per 10-second bucket over the last `LAB_HISTORY_S` (default an
  hour), whatever the runs (`GET /history`, the admin page's chart).
"""

from __future__ import annotations

from typing import Any

from lab.runtime.state import State

FIELDS = ("released", "processed", "failed")
HISTORY_BUCKET_S = 10
TIMELINE_BUCKET_S = 1
MAX_FILLED = 20_000  # a longer span lists only the seconds that counted something


def _points(counts: dict[int, dict[str, int]], first: int, last: int, step: int) -> list[dict]:
    """One point per bucket from `first` to `last`, zeros where nothing was counted."""
    if counts:
        first, last = min(first, min(counts)), max(last, max(counts))
    buckets = (
        range(first, last + 1, step) if (last - first) // step <= MAX_FILLED else sorted(counts)
    )
    return [{"t": t, **{f: counts.get(t, {}).get(f, 0) for f in FIELDS}} for t in buckets]


def run_timeline(state: State, run_id: str) -> dict[str, Any] | None:
    """The run's jobs per second from its start to its end (or now); None for an unknown run."""
    run = state.run(run_id)
    if run is None:
        return None
    raw = state.redis.hgetall(state.keys.run_timeline(run_id))
    counts: dict[int, dict[str, int]] = {}
    for name, value in raw.items():
        second, _, field = name.partition(":")
        if second.isdigit() and field in FIELDS:
            counts.setdefault(int(second), {})[field] = int(value)
    times = state.redis.hmget(state.keys.run(run_id), "startedAt", "finishedAt", "stoppedAt")
    now_s = int(state.redis.time()[0])
    start_s = int(times[0]) // 1000 if times[0] else now_s
    end_ms = times[1] or times[2]
    end_s = int(end_ms) // 1000 if end_ms else now_s
    return {
        "runId": run_id,
        "bucketSeconds": TIMELINE_BUCKET_S,
        "points": _points(counts, start_s, end_s, TIMELINE_BUCKET_S),
    }


def recent(state: State, seconds: int) -> dict[str, Any]:
    """Jobs per 10-second bucket over the last `seconds` (at most what `LAB_HISTORY_S` keeps)."""
    seconds = max(HISTORY_BUCKET_S, min(seconds, state.settings.history_s))
    now_s = int(state.redis.time()[0])
    last = now_s - now_s % HISTORY_BUCKET_S
    first = last - (seconds // HISTORY_BUCKET_S - 1) * HISTORY_BUCKET_S
    buckets = list(range(first, last + 1, HISTORY_BUCKET_S))
    pipe = state.redis.pipeline(transaction=False)
    for bucket in buckets:
        pipe.hmget(state.keys.history(bucket), *FIELDS)
    counts = {
        bucket: {f: int(v or 0) for f, v in zip(FIELDS, values, strict=True)}
        for bucket, values in zip(buckets, pipe.execute(), strict=True)
        if any(values)
    }
    return {
        "bucketSeconds": HISTORY_BUCKET_S,
        "seconds": len(buckets) * HISTORY_BUCKET_S,
        "points": _points(counts, first, last, HISTORY_BUCKET_S),
    }


def cumulative(points: list[dict]) -> list[dict]:
    """Running totals of a timeline's points (what a chart of progress draws)."""
    totals = dict.fromkeys(FIELDS, 0)
    out = []
    for point in points:
        for f in FIELDS:
            totals[f] += point[f]
        out.append({"t": point["t"], **totals})
    return out
