"""What the scheduler does every second costs what its window holds, never what the run's whole
life does: the work is counted, not timed. A Poisson shape's count and ETA walk its tree of time
(O(log t)); the head-of-line age reads a bounded set of spans however old the backlog; a latency
objective sees a stall through the jobs that have not finished."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from lab.runtime import headage, latency, shapes, slo
from lab.runtime.headage import HeadAge, Released
from lab.runtime.shapes import poisson


@contextmanager
def draws_counted() -> Iterator[list[int]]:
    """Every seeded generator a Poisson shape makes, counted (each is one node of its tree)."""
    made = [0]
    original = poisson.Arrivals._rng

    def counted(self: poisson.Arrivals, *node: int) -> object:
        made[0] += 1
        return original(self, *node)

    poisson.Arrivals._rng = counted  # type: ignore[method-assign]
    try:
        yield made
    finally:
        poisson.Arrivals._rng = original  # type: ignore[method-assign]


@pytest.mark.parametrize("t", [10.0, 86_400.0 * 7, 86_400.0 * 365 * 20])
def test_a_poisson_count_walks_its_tree_whatever_the_time(t: float) -> None:
    shape = shapes.parse({"type": "poisson", "y": 60}, seed=3)
    with draws_counted() as made:
        shape.count(t)
    blocks = int(t) // poisson.BLOCK_S + 1
    assert made[0] <= blocks + poisson.LEVELS + 1, made[0]


def test_a_million_job_poisson_run_gets_its_eta_from_a_minute_of_draws() -> None:
    # {"x": 1000000, "shape": {"type": "poisson", "y": 60}} drew a million seconds a tick.
    plan = shapes.Plan(shapes.parse({"type": "poisson", "y": 60}, 1), base=1, x=1_000_000,
                       version="1")  # fmt: skip
    with draws_counted() as made:
        eta = plan.eta_s(5.0, lag=0)
        plan.target(5.0)
    assert eta is not None and eta == pytest.approx(1_000_000, rel=0.01)
    assert made[0] <= 62 * (poisson.LEVELS + 2), made[0]
    slow = shapes.Plan(shapes.parse({"type": "poisson", "y": 0.1}, 1), base=1, x=10_000_000,
                       version="1")  # fmt: skip
    with draws_counted() as made:
        assert slow.eta_s(0.0, lag=0) == pytest.approx(10_000_000 * 600, rel=0.01)
    assert made[0] <= 62 * (poisson.LEVELS + 2), made[0]


def test_the_poisson_tree_keeps_the_mean_and_the_seconds_add_up() -> None:
    shape = shapes.parse({"type": "poisson", "y": 1200}, seed=9)  # 20 a second
    arrivals = shape.arrivals  # type: ignore[attr-defined]
    total = 0
    for k in range(600):
        before, n = arrivals.second(k)
        assert before == total
        total += n
    assert abs(total - 12_000) <= 4 * math.sqrt(12_000)
    assert shape.count(599.999) == total - arrivals.second(599)[1] + len(
        [o for o in arrivals.offsets(599) if o <= 0.999]
    )


@pytest.mark.parametrize("age_s", [30, 3_600, 86_400, 86_400 * 30, 86_400 * 365])
def test_the_head_age_reads_a_bounded_number_of_spans(age_s: int) -> None:
    now_s = 1_000_000_000
    plan = headage.walk(now_s, now_s - age_s)
    read = sum(len(units) for _, units in plan)
    assert read <= 120 + 120 + headage.MAX_HOURS + 1
    # The spans follow each other back from now with no gap and no overlap.
    covered = [(unit * size, unit * size + size) for size, units in plan for unit in units]
    for (start, _), (_, end) in zip(covered, covered[1:], strict=False):
        assert end == start


def test_the_nth_newest_job_is_placed_in_spans_of_any_length() -> None:
    spans = [Released(60_000, 1000, 3), Released(0, 60_000, 60)]
    assert headage.released_at(spans, 1) == pytest.approx(60_000 + 2 / 3 * 1000)
    assert headage.released_at(spans, 4) == pytest.approx(59_000)
    assert headage.released_at(spans, 63) == pytest.approx(0)
    assert headage.released_at(spans, 64) is None
    assert headage.newest(spans, 5) == [Released(60_000, 1000, 3), Released(0, 60_000, 2)]


def test_a_latency_objective_breaches_when_nothing_finishes() -> None:
    """With the only worker frozen nothing finishes, so the window holds no latency; the jobs
    released and not finished count at their age so far, and one that has waited 12 s makes
    the p99 at least 12 s."""
    objective = slo.parse([{"metric": "endToEnd.p99", "maxMs": 2000, "windowSeconds": 10}])
    head = HeadAge(100_000, 12_000, unsettled=[Released(88_000, 1000, 40)],
                   waiting=[Released(88_000, 1000, 40)])  # fmt: skip
    unfinished = {"endToEnd": head.ages(head.unsettled), "queueWait": head.ages(head.waiting)}
    stalled = slo.Window({}, 0, 0, 100, head.age_ms, unfinished)
    states = slo.judge(objective, [stalled], elapsed_s=60, grace_s=None, before=None, now_ms=1)
    assert states[0]["state"] == "breached" and states[0]["value"] >= 10_900  # 11 s, bucketed
    idle = slo.Window({}, 0, 0, 0)
    states = slo.judge(objective, [idle], elapsed_s=60, grace_s=None, before=None, now_ms=2)
    assert states[0]["state"] == "pending"  # nothing released, nothing finished: nothing to judge


def test_young_unfinished_jobs_never_hide_a_breach_of_the_finished_ones() -> None:
    objective = slo.parse([{"metric": "endToEnd.p99", "maxMs": 500}])
    slow = latency.Histogram()
    slow.add(latency.bucket_of(900.0), 100)  # every finished job took 900 ms
    young = {"endToEnd": [(1.0, 10_000)]}  # a backlog just released
    window = slo.Window({"endToEnd": slow}, 100, 0, 100, 0, young)
    states = slo.judge(objective, [window], elapsed_s=60, grace_s=None, before=None, now_ms=1)
    assert states[0]["state"] == "breached"
