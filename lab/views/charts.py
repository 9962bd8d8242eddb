"""What the notebook panel draws, as numbers (pure, unit-tested; `panel.py` only renders them).

A run's progress is drawn from its start (0 jobs at 0 s) to where its counters are now, with the
shape's planned release beside what was released and processed; below it, jobs per second:
planned, released, processed. Short runs use the panel's own samples (several a second) when it
saw the run from its start; otherwise the run's timeline (one point a second, kept in Redis, so a
reopened notebook draws the whole run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lab.runtime import shapes

FINE_UP_TO_S = 300.0  # runs up to this long are drawn from the panel's samples when it can


@dataclass
class Progress:
    t: list[float] = field(default_factory=list)  # seconds since the run started
    released: list[int] = field(default_factory=list)
    processed: list[int] = field(default_factory=list)
    planned_t: list[float] = field(default_factory=list)
    planned: list[int] = field(default_factory=list)
    rate_t: list[float] = field(default_factory=list)  # per whole second of the run
    planned_rate: list[float] = field(default_factory=list)
    released_rate: list[float] = field(default_factory=list)
    processed_rate: list[float] = field(default_factory=list)
    latency_t: list[float] = field(default_factory=list)  # the end of each 10-second window
    p50_ms: list[float] = field(default_factory=list)  # end to end, per window
    p99_ms: list[float] = field(default_factory=list)

    @property
    def last(self) -> dict[str, Any]:
        """The last values drawn (the counters the chart ends at)."""
        if not self.t:
            return {}
        return {"t": self.t[-1], "released": self.released[-1], "processed": self.processed[-1]}


def epoch_s(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def progress(
    status: dict[str, Any],
    points: list[dict[str, Any]],
    samples: list[tuple[float, int, int]],
    now: float,
    latency: dict[str, Any] | None = None,
) -> Progress:
    """The run of `status` (its counters now), its timeline `points` (`GET /runs/{id}/timeline`),
    the panel's own `samples` (time, released, processed) and the run's `latency`
    (`GET /runs/{id}/latency`: end to end p50 and p99 per 10-second window)."""
    out = Progress()
    started = epoch_s(status.get("startedAt"))
    if started is None:
        return out
    ended = epoch_s(status.get("finishedAt")) or now
    span = max(0.0, min(now, ended) - started)
    fine = [s for s in samples if s[0] >= started]
    if fine and fine[0][0] <= started + 1.0 and span <= FINE_UP_TO_S:
        # A sample stamped after the run ended (a slow reply) belongs before the counters' end.
        rows = [(s[0] - started, s[1], s[2]) for s in fine if s[0] - started < span]
    else:
        rows, released, processed = [], 0, 0
        for point in points:
            released += point["released"]
            processed += point["processed"]
            end = point["t"] + 1 - started
            if 0 < end < span:
                rows.append((end, released, processed))
    rows = [
        (0.0, 0, 0),
        *rows,
        (span, int(status.get("enqueued") or 0), int(status.get("processed") or 0)),
    ]
    rows.sort(key=lambda r: r[0])
    out.t = [r[0] for r in rows]
    out.released = [r[1] for r in rows]
    out.processed = [r[2] for r in rows]
    previous = 0
    for point in points:
        end = point["t"] + 1 - started
        if end <= 0:
            continue
        if "planned" in point:
            out.planned_t.append(min(end, span))
            out.planned.append(point["planned"])
            out.planned_rate.append(point["planned"] - previous)
            previous = point["planned"]
        else:
            out.planned_rate.append(float("nan"))
        out.rate_t.append(end)
        out.released_rate.append(point["released"])
        out.processed_rate.append(point["processed"])
    if out.planned_t:
        out.planned_t.insert(0, 0.0)
        out.planned.insert(0, 0)
    for window in (latency or {}).get("endToEnd", {}).get("windows", []):
        if window.get("count"):
            end = window["t"] + (latency or {}).get("windowSeconds", 10) - started
            out.latency_t.append(min(end, span))  # the window still filling: drawn at now
            out.p50_ms.append(window["p50Ms"])
            out.p99_ms.append(window["p99Ms"])
    return out


def planned_rate(
    shape: dict[str, Any], x: int, seed: int = 0, steps: int = 200
) -> tuple[list[float], list[float]]:
    """Y(t) in jobs per minute over the time the shape takes to release `x` jobs (at most an
    hour drawn): what a run of it will ask for, before it starts."""
    parsed = shapes.parse(shape, seed)
    end = parsed.seconds_until(max(0, x - 1)) or 60.0
    end = min(max(end, 1.0), 3600.0)
    ts = [end * i / steps for i in range(steps + 1)]
    return ts, [parsed.rate(t) for t in ts]
