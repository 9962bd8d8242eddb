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
from lab.runtime.status import is_settled

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


def count(value: Any) -> int:
    """A count the API sent: a JSON number from 0 to 2^63, whole; anything else (text, whatever
    digits it holds, a bool, NaN) is 0, so a counter the panel cannot read draws as none."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2**63:
        return 0
    return int(value)


def number(value: Any) -> float:
    """A figure the API sent (a rate, an age, seconds): a finite JSON number, else 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    # Compared before the conversion (a 400-digit integer overflows a float); NaN compares false.
    return float(value) if -1e300 <= value <= 1e300 else 0.0


def merge_status(current: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """What the panel shows once `data` (a `/status` answer or a run event) arrives: a run
    event carries the counters, not the rates or the workers, so those are kept; and since
    events and polls race, no counter goes backwards within a run."""
    merged = {**current, **{k: v for k, v in data.items() if k != "type"}}
    if current.get("runId") == merged.get("runId"):
        for key in ("enqueued", "processed", "failed"):
            merged[key] = max(count(current.get(key)), count(merged.get(key)))
    return merged


def settled(s: dict[str, Any]) -> bool:
    """The shown run is settled: completed, or ended early with nothing it released still in
    flight (`lab.runtime.status.is_settled`, read from what the API sent)."""
    return is_settled(
        str(s.get("state")), count(s.get("processed")), count(s.get("failed")),
        count(s.get("enqueued")),
    )  # fmt: skip


def epoch_s(iso: Any) -> float | None:
    """An ISO 8601 time the API sent, as epoch seconds (None: absent or unreadable)."""
    try:
        return datetime.fromisoformat(iso).timestamp() if isinstance(iso, str) and iso else None
    except ValueError:
        return None


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
        (span, count(status.get("enqueued")), count(status.get("processed"))),
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
