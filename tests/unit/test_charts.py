"""The panel's chart numbers (pure): a run drawn from 0 to its counters, never going back."""

from __future__ import annotations

from datetime import UTC, datetime

from lab.views.charts import progress

T0 = 1_800_000_000.0


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def test_a_sample_stamped_after_the_run_ended_is_not_drawn_after_its_end() -> None:
    status = {"startedAt": iso(T0), "finishedAt": iso(T0 + 2.0), "enqueued": 400, "processed": 400}
    # The last poll was read before the run ended but its reply came after it.
    samples = [(T0 + 0.2, 100, 50), (T0 + 1.0, 300, 200), (T0 + 2.5, 400, 390)]
    data = progress(status, [], samples, now=T0 + 3.0)
    assert [round(t, 3) for t in data.t] == [0.0, 0.2, 1.0, 2.0]
    assert data.processed == [0, 50, 200, 400]
    assert all(b >= a for a, b in zip(data.processed, data.processed[1:], strict=False))


def test_a_run_seen_late_is_drawn_from_its_timeline() -> None:
    status = {"startedAt": iso(T0), "enqueued": 30, "processed": 25}
    points = [
        {"t": T0, "released": 10, "processed": 8, "planned": 10},
        {"t": T0 + 1, "released": 10, "processed": 10, "planned": 20},
    ]
    data = progress(status, points, [], now=T0 + 2.5)
    assert data.t == [0.0, 1.0, 2.0, 2.5]
    assert data.released == [0, 10, 20, 30] and data.processed == [0, 8, 18, 25]
    assert data.planned == [0, 10, 20] and data.planned_rate == [10, 10]
