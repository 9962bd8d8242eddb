"""Load shapes on a fake clock: the real scheduler follows each shape through a stand-in of
`release.lua` (`lab.testing.FakeLimiter`), and what it releases by every whole second is the
shape's integral within one job (or 0.5 %); a scheduler killed mid-shape goes on where the shape
says without a burst beyond its budget; a pause stops shape time; a new shape applies at once.
And the shapes themselves: integrals, bounds, short forms, seeded Poisson arrivals."""

from __future__ import annotations

import json
import math

import pytest

from lab.config import Settings
from lab.runtime import shapes
from lab.runtime.scheduler import Scheduler
from lab.testing import FakeClock, FakeLimiter, StubChannel, ack_frame

SETTINGS = Settings(queue="unit.jobs", publish_window=2000)
START = 1000.0  # the fake clock's start: the run's shape time is clock − START

SHAPES = {
    "constant": {"type": "constant", "y": 600},
    "ramp": {"type": "ramp", "from": 600, "to": 12000, "seconds": 120},
    "steps": {"type": "steps", "steps": [{"seconds": 20, "y": 600}, {"seconds": 20, "y": 3000},
                                         {"seconds": 20, "y": 120}]},
    "spike": {"type": "spike", "base": 600, "peak": 6000, "at": 30, "seconds": 10},
    "sine": {"type": "sine", "min": 300, "max": 3000, "period": 40},
    "poisson": {"type": "poisson", "y": 1200},
    "trace": {"type": "trace", "perSecond": [3, 0, 7, 12, 1, 0, 0, 25, 4] * 10},
}  # fmt: skip


def scheduler(limiter: FakeLimiter, clock: FakeClock, sid: str = "s1") -> Scheduler:
    s = Scheduler(SETTINGS, scheduler_id=sid, state=limiter, clock=clock)
    s.channel = StubChannel()
    return s


def run_for(
    s: Scheduler, clock: FakeClock, limiter: FakeLimiter, seconds: float, late: float = 0.0
) -> None:
    """Tick as the event loop would (each `step` says when the next is due, and on a busy
    machine it fires `late` after that); the broker confirms at once and the workers settle
    every job."""
    end = clock() + seconds
    while clock() < end:
        delay = s.step()
        if s.tracker.outstanding:
            s.on_confirm(ack_frame(len(s.channel.published)))
        limiter.settled = s.next_seq
        clock.advance(max(delay, 0.001) + late)


def cumulative(limiter: FakeLimiter) -> dict[int, int]:
    """Jobs released by the end of each whole second of the run."""
    out, total = {}, 0
    for second in range(int(START), max(limiter.released) + 1):
        total += limiter.released.get(second, 0)
        out[second] = total
    return out


def assert_follows(limiter: FakeLimiter, shape: shapes.Shape, lag: int = 0, shift: float = 0.0,
                   seconds: list[int] | None = None) -> None:  # fmt: skip
    """By the end of each second, what was released is 1 + the shape's integral (less what was
    forgiven), within one job or 0.5 %."""
    done = cumulative(limiter)
    for second in seconds or list(done)[:-1]:
        expected = min(limiter.x, 1 + math.floor(shape.count(second + 1 - START - shift) + 1e-9))
        expected -= lag
        tolerance = max(1, 0.005 * expected)
        assert abs(done[second] - expected) <= tolerance, (second, done[second], expected)


@pytest.mark.parametrize("name", list(SHAPES))
def test_the_release_follows_every_shape_second_by_second(name: str) -> None:
    clock = FakeClock(START)
    limiter = FakeLimiter(clock, x=1_000_000, shape=SHAPES[name], seed=7)
    s = scheduler(limiter, clock)
    run_for(s, clock, limiter, 90)
    assert not limiter.marks, limiter.marks  # nothing held back, nothing forgiven
    assert_follows(limiter, shapes.parse(SHAPES[name], 7))
    published = [json.loads(p.body)["seq"] for p in s.channel.published]
    assert published == list(range(len(published)))  # every seq once, in order


@pytest.mark.parametrize("late", [0.0, 0.004, 0.008])
def test_ticks_that_fire_late_still_release_each_second_s_jobs_in_it(late: float) -> None:
    # The tick before each whole second releases what is due by the second's end, so a tick a
    # few ms late does not carry the second's last jobs into the next one (at 100 jobs a second
    # the tolerance is one job for the first seconds).
    clock = FakeClock(START)
    fast = {"type": "constant", "y": 6000}
    limiter = FakeLimiter(clock, x=1_000_000, shape=fast)
    s = scheduler(limiter, clock)
    run_for(s, clock, limiter, 6, late)
    assert not limiter.marks, limiter.marks
    assert_follows(limiter, shapes.parse(fast))


def test_a_scheduler_killed_mid_ramp_goes_on_where_the_shape_says_without_a_burst() -> None:
    clock = FakeClock(START)
    ramp = SHAPES["ramp"]
    limiter = FakeLimiter(clock, x=1_000_000, shape=ramp)
    first = scheduler(limiter, clock, "s1")
    run_for(first, clock, limiter, 30)
    # kill -9: its lease lapses, nothing of what it had in hand is confirmed any more.
    limiter.lease_holder = None
    down = 5.0
    clock.advance(down)
    second = scheduler(limiter, clock, "s2")
    before = sum(limiter.released.values())
    run_for(second, clock, limiter, 0.5)
    shape = shapes.parse(ramp)
    # The first half second after the restart: the budget (the shape's own jobs over
    # LAB_BURST_S, and two) plus the jobs the shape asks for in that half second, no catch-up
    # of the 5 s it was away.
    t = clock() - START
    budget = shape.count(t) - shape.count(t - SETTINGS.burst_s) + 2
    assert sum(limiter.released.values()) - before <= budget + shape.count(t) - shape.count(t - 0.5)
    assert any("forgiven" in m for m in limiter.marks.values())
    run_for(second, clock, limiter, 40)
    # From then on it follows the ramp again, by the jobs forgiven fewer.
    after = [sec for sec in cumulative(limiter) if sec > START + 37][:-1]
    assert_follows(limiter, shape, lag=limiter.lag, seconds=after)
    assert 0 < limiter.lag <= shape.count(35) - shape.count(30) + 2


def test_a_pause_stops_shape_time_and_the_ramp_resumes_where_it_stood() -> None:
    clock = FakeClock(START)
    limiter = FakeLimiter(clock, x=1_000_000, shape=SHAPES["ramp"])
    s = scheduler(limiter, clock)
    run_for(s, clock, limiter, 20)
    at_pause = sum(limiter.released.values())
    limiter.paused = True
    run_for(s, clock, limiter, 10)
    assert sum(limiter.released.values()) == at_pause
    assert any("paused" in m for m in limiter.marks.values())
    limiter.paused = False
    run_for(s, clock, limiter, 30)
    # Seconds after the pause follow the ramp shifted by the 10 s it stood still.
    later = [sec for sec in cumulative(limiter) if sec > START + 31][:-1]
    assert_follows(limiter, shapes.parse(SHAPES["ramp"]), shift=10.0, seconds=later)
    assert not any("forgiven" in m for m in limiter.marks.values())


def test_a_new_shape_applies_at_once_and_goes_on_from_what_was_released() -> None:
    clock = FakeClock(START)
    limiter = FakeLimiter(clock, x=1_000_000, y=600)
    s = scheduler(limiter, clock)
    run_for(s, clock, limiter, 10.5)
    changed_at = clock() - START
    limiter.reshape({"type": "constant", "y": 6000})
    base = limiter.base
    assert base == 1 + math.floor(10 * changed_at)  # what 600/min allowed by then
    run_for(s, clock, limiter, 10)
    done = cumulative(limiter)
    assert done[int(START) + 12] - done[int(START) + 11] == 100  # the new rate within a second
    assert abs(done[int(START) + 19] - (base + 100 * (20 - changed_at))) <= 1 + 1e-6


def test_a_backlog_at_its_bound_holds_the_release_and_marks_the_seconds() -> None:
    clock = FakeClock(START)
    limiter = FakeLimiter(clock, x=1_000_000, y=6000, backlog=50)
    s = scheduler(limiter, clock)
    end = clock() + 5
    while clock() < end:  # the workers settle nothing
        delay = s.step()
        if s.tracker.outstanding:
            s.on_confirm(ack_frame(len(s.channel.published)))
        clock.advance(max(delay, 0.001))
    assert s.next_seq == 50
    assert any("backpressure" in m for m in limiter.marks.values())


# --- the shapes themselves ----------------------------------------------------------------------
def test_integrals_of_the_analytic_shapes() -> None:
    ramp = shapes.parse(SHAPES["ramp"])
    assert ramp.count(120) == pytest.approx((600 + 12000) / 2 * 2)  # the mean rate, 2 minutes
    assert ramp.count(180) == pytest.approx(12600 + 12000)  # then it holds the last rate
    assert ramp.rate(60) == 6300
    steps = shapes.parse(SHAPES["steps"])
    assert steps.count(60) == pytest.approx(200 + 1000 + 40) and steps.rate(100) == 120
    spike = shapes.parse(SHAPES["spike"])
    assert spike.count(30) == 300 and spike.count(40) == 1300 and spike.rate(45) == 600
    sine = shapes.parse(SHAPES["sine"])
    assert sine.count(40) == pytest.approx(1650 / 60 * 40)  # whole periods: the mean rate
    trace = shapes.parse({"type": "trace", "perSecond": [5, 10]})
    assert trace.count(1.5) == 10 and trace.count(4) == 15 + 20  # then 10 a second


def test_poisson_arrivals_are_seeded_and_have_the_mean_rate() -> None:
    a, b = shapes.parse(SHAPES["poisson"], 1), shapes.parse(SHAPES["poisson"], 1)
    other = shapes.parse(SHAPES["poisson"], 2)
    assert [a.count(t / 10) for t in range(600)] == [b.count(t / 10) for t in range(600)]
    assert [a.count(t) for t in range(60)] != [other.count(t) for t in range(60)]
    # 20 a second for 600 s: 12,000 expected, sd ≈ 110; the 99.9 % interval is ± 3.3 sd.
    assert abs(a.count(600) - 12_000) <= 3.3 * math.sqrt(12_000)
    fresh = shapes.parse(SHAPES["poisson"], 1)
    assert fresh.count(599.5) == a.count(599.5)  # any second is known without the ones before


@pytest.mark.parametrize(
    ("shape", "field"),
    [
        ({"type": "ramp", "from": 600, "to": 0, "seconds": 10}, "shape.to"),
        ({"type": "ramp", "from": 600, "to": 1200}, "shape.seconds"),
        ({"type": "constant", "y": float("inf")}, "shape.y"),
        ({"type": "constant", "y": True}, "shape.y"),
        ({"type": "constant", "y": 600, "extra": 1}, "shape.extra"),
        ({"type": "steps", "steps": []}, "shape.steps"),
        ({"type": "steps", "steps": [{"seconds": 1, "y": 1e12}]}, "shape.steps[0].y"),
        ({"type": "sine", "min": 900, "max": 600, "period": 10}, "shape.max"),
        ({"type": "trace", "perSecond": [1, -2]}, "shape.perSecond[1]"),
        ({"type": "trace", "perSecond": [0, 0]}, "shape.perSecond"),
        ({"type": "trace", "perSecond": [1] * (shapes.MAX_TRACE + 1)}, "shape.perSecond"),
        ({"type": "warp", "y": 1}, "shape.type"),
        ([1, 2], "shape"),
    ],
)
def test_a_shape_lab_cannot_follow_is_refused_naming_the_field(shape: object, field: str) -> None:
    with pytest.raises(shapes.ShapeError) as refused:
        shapes.parse(shape)
    assert refused.value.field == field


def test_the_short_forms_of_the_command_line() -> None:
    def parsed(text: str) -> dict:
        return shapes.from_text(text, read=lambda _path: "second,jobs\n0,3\n1,5\n")

    assert parsed("ramp:600..12000:120s") == SHAPES["ramp"]
    assert parsed("constant:600") == SHAPES["constant"]
    assert parsed("steps:20s@600,20s@3000,20s@120") == SHAPES["steps"]
    assert parsed("spike:600..6000@30s+10s") == SHAPES["spike"]
    assert parsed("sine:300..3000/40s") == SHAPES["sine"]
    assert parsed("poisson:1200") == SHAPES["poisson"]
    assert parsed("@traffic.csv") == {"type": "trace", "perSecond": [3, 5]}
    assert parsed('{"type": "constant", "y": 5}') == {"type": "constant", "y": 5}
    for bad in ("ramp:600", "steps:30@600", "fast", "{not json"):
        with pytest.raises(shapes.ShapeError):
            parsed(bad)


def test_the_eta_follows_the_shape() -> None:
    plan = shapes.Plan(shapes.parse(SHAPES["ramp"]), base=1, x=1 + 12600, version="1")
    assert plan.eta_s(0, lag=0) == pytest.approx(120, abs=0.01)
    assert plan.eta_s(60, lag=0) == pytest.approx(60, abs=0.01)


def test_a_run_that_forgave_jobs_still_releases_all_of_x() -> None:
    """The forgiven jobs come off the shape's target before the cap at x, never after: a run
    whose scheduler was away longer than the rest of its shape still ends with every job."""
    clock = FakeClock(START)
    limiter = FakeLimiter(clock, x=300, y=600)
    first = scheduler(limiter, clock, "s1")
    run_for(first, clock, limiter, 5)
    limiter.lease_holder = None
    clock.advance(60)  # longer than the 30 s the whole run takes
    second = scheduler(limiter, clock, "s2")
    run_for(second, clock, limiter, 40)
    assert second.next_seq == limiter.granted_to == 300 and limiter.lag > 0


@pytest.mark.parametrize("mean", [0.5, 12, 35, 400, 20_000])
def test_poisson_counts_have_the_mean_and_variance_of_a_poisson(mean: float) -> None:
    import random
    from statistics import fmean, pvariance

    rng = random.Random(3)
    draws = [shapes.poisson_draw(rng, mean) for _ in range(4000)]
    sd_of_mean = math.sqrt(mean / len(draws))
    assert abs(fmean(draws) - mean) <= 4 * sd_of_mean
    assert pvariance(draws) == pytest.approx(mean, rel=0.15)


def test_a_fast_poisson_far_into_a_run_costs_one_draw_per_second() -> None:
    import time

    fast = shapes.parse({"type": "poisson", "y": 60_000_000}, 5)  # a million a second
    began = time.perf_counter()
    total = fast.count(600.0)  # ten minutes in: 600 counts, and one second's offsets
    assert time.perf_counter() - began < 5
    assert abs(total - 600_000_000) <= 4 * math.sqrt(600_000_000)
