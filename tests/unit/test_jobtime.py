"""Little's law's L from a run's timeline: jobs placed within their second to the millisecond
where the timeline says where they were counted, spread evenly where it does not (older runs)."""

from __future__ import annotations

import pytest

from lab.config import Settings
from lab.measure.drill import Verdicts
from lab.measure.jobtime import Observed, job_time, time_in_system
from lab.runtime import history, latency


def point(t: int, released: int = 0, processed: int = 0, failed: int = 0, **ms: int) -> dict:
    return {"t": t, "released": released, "processed": processed, "failed": failed, **ms}


def test_a_job_across_a_second_s_edge_counts_its_own_time_not_a_second() -> None:
    # Released 990 ms into second 100, settled 26 ms into 101: 36 ms in the system.
    points = [point(100, released=1, releasedMs=990), point(101, processed=1, processedMs=26)]
    assert time_in_system(points) == pytest.approx(0.036)


def test_jobs_within_one_second_count_their_time() -> None:
    # Ten jobs released at 100 ms and settled at 350 ms, five failed at 400 ms: 2.5 + 1.5 s.
    points = [point(7, released=15, releasedMs=15 * 100, processed=10, processedMs=10 * 350,
                    failed=5, failedMs=5 * 400)]  # fmt: skip
    assert time_in_system(points) == pytest.approx(4.0)


def test_a_timeline_without_in_second_times_spreads_each_second_evenly() -> None:
    points = [point(100, released=2), point(101, processed=2)]
    assert time_in_system(points) == pytest.approx(2.0)  # half a second each side of the edge


def test_the_timeline_reads_in_second_times_from_the_run_s_hash() -> None:
    raw = {"100:released": "3", "100:releasedMs": "1500", "101:processed": "3",
           "101:processedMs": "60", "101:bogusMs": "9"}  # fmt: skip
    points = history.timeline("r", raw, "100000", "101999", 102)["points"]
    assert points == [
        {"t": 100, "released": 3, "processed": 0, "failed": 0, "releasedMs": 1500},
        {"t": 101, "released": 0, "processed": 3, "failed": 0, "processedMs": 60},
    ]
    assert time_in_system(points) == pytest.approx(3 * (1.02 - 0.5))


@pytest.mark.parametrize(
    ("ratio", "outages", "passed"),
    [(1.1, False, True), (1.9, False, False), (1.9, True, True), (0.8, True, False)],
)
def test_a_drill_with_outages_is_held_to_little_s_lower_bound_only(
    ratio: float, outages: bool, passed: bool
) -> None:
    """An outage holds publishes up for as long as it lasts, time W does not see; a ratio below
    the bound is a job lost or counted twice by the measuring, outages or not."""
    law = {"judged": True, "ratio": ratio, "inSystem": ratio, "throughputPerSecond": 1.0,
           "meanEndToEndMs": 1000.0}  # fmt: skip
    found = {metric: latency.Histogram({100: 1}) for metric in latency.METRICS}
    verdicts = Verdicts()
    job_time(Settings(), {"run": Observed("r", found, law)}, verdicts, outages=outages)
    assert [row["passed"] for row in verdicts.rows] == [passed]
