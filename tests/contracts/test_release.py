"""The scheduler follows every load shape through `release.lua` and `advance.lua` on a
simulated clock, and through their stand-in (`lab.testing.FakeLimiter`) the same way: what it
releases by every whole second is the shape's integral within one job (or 0.5 %); a scheduler
killed mid-shape goes on where the shape says without a burst beyond its budget; a pause stops
shape time; a new shape applies at once; a backlog at its bound holds the release. Each test
runs on both, so the stand-in the unit tests use cannot drift from the scripts."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from lab.config import Settings
from lab.runtime import shapes
from lab.runtime.scheduler import Scheduler
from lab.testing import FakeClock, StubChannel, ack_frame
from tests.contracts.conftest import KINDS, START
from tests.contracts.worlds import make
from tests.unit.test_shapes import SHAPES  # every shape the shapes' own tests know

NewRun = Callable[..., Any]


@pytest.fixture(params=KINDS)
def new_run(request: pytest.FixtureRequest, clock: FakeClock) -> NewRun:
    """Makes the run a test releases: in memory, or in Redis through the real scripts."""
    settings = request.getfixturevalue("redis_settings") if request.param == "redis" else None
    return lambda **run: make(request.param, settings, clock, **run)


SETTINGS = Settings(queue="unit.jobs", publish_window=2000)


def scheduler(limiter: Any, clock: FakeClock, sid: str = "s1") -> Scheduler:
    s = Scheduler(SETTINGS, scheduler_id=sid, stores=limiter.stores(), clock=clock)
    s.channel = StubChannel()
    return s


def run_for(
    s: Scheduler, clock: FakeClock, limiter: Any, seconds: float, late: float = 0.0
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


def cumulative(limiter: Any) -> dict[int, int]:
    """Jobs released by the end of each whole second of the run."""
    out, total = {}, 0
    for second in range(int(START), max(limiter.released) + 1):
        total += limiter.released.get(second, 0)
        out[second] = total
    return out


def assert_follows(limiter: Any, shape: shapes.Shape, lag: int = 0, shift: float = 0.0,
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
def test_the_release_follows_every_shape_second_by_second(
    new_run: NewRun, clock: FakeClock, name: str
) -> None:
    limiter = new_run(x=1_000_000, shape=SHAPES[name], seed=7)
    s = scheduler(limiter, clock)
    run_for(s, clock, limiter, 90)
    assert not limiter.marks, limiter.marks  # nothing held back, nothing forgiven
    assert_follows(limiter, shapes.parse(SHAPES[name], 7))
    published = [json.loads(p.body)["seq"] for p in s.channel.published]
    assert published == list(range(len(published)))  # every seq once, in order


@pytest.mark.parametrize("late", [0.0, 0.004, 0.008])
def test_ticks_that_fire_late_still_release_each_second_s_jobs_in_it(
    new_run: NewRun, clock: FakeClock, late: float
) -> None:
    # The tick before each whole second releases what is due by the second's end, so a tick a
    # few ms late does not carry the second's last jobs into the next one (at 100 jobs a second
    # the tolerance is one job for the first seconds).
    fast = {"type": "constant", "y": 6000}
    limiter = new_run(x=1_000_000, shape=fast)
    s = scheduler(limiter, clock)
    run_for(s, clock, limiter, 6, late)
    assert not limiter.marks, limiter.marks
    assert_follows(limiter, shapes.parse(fast))


def test_a_scheduler_killed_mid_ramp_goes_on_where_the_shape_says_without_a_burst(
    new_run: NewRun, clock: FakeClock
) -> None:
    ramp = SHAPES["ramp"]
    limiter = new_run(x=1_000_000, shape=ramp)
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


def test_a_pause_stops_shape_time_and_the_ramp_resumes_where_it_stood(
    new_run: NewRun, clock: FakeClock
) -> None:
    limiter = new_run(x=1_000_000, shape=SHAPES["ramp"])
    s = scheduler(limiter, clock)
    run_for(s, clock, limiter, 20)
    at_pause = sum(limiter.released.values())
    limiter.paused = True
    paused_at = clock()
    run_for(s, clock, limiter, 10)
    assert sum(limiter.released.values()) == at_pause
    assert any("paused" in m for m in limiter.marks.values())
    limiter.paused = False
    stood = clock() - paused_at  # 10 s, and the tick that ended the wait
    run_for(s, clock, limiter, 30)
    # Seconds after the pause follow the ramp shifted by the time it stood still.
    later = [sec for sec in cumulative(limiter) if sec > START + 31][:-1]
    assert_follows(limiter, shapes.parse(SHAPES["ramp"]), shift=stood, seconds=later)
    assert not any("forgiven" in m for m in limiter.marks.values())


def test_a_new_shape_applies_at_once_and_goes_on_from_what_was_released(
    new_run: NewRun, clock: FakeClock
) -> None:
    limiter = new_run(x=1_000_000, y=600)
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


def test_a_backlog_at_its_bound_holds_the_release_and_marks_the_seconds(
    new_run: NewRun, clock: FakeClock
) -> None:
    limiter = new_run(x=1_000_000, y=6000, backlog=50)
    s = scheduler(limiter, clock)
    end = clock() + 5
    while clock() < end:  # the workers settle nothing
        delay = s.step()
        if s.tracker.outstanding:
            s.on_confirm(ack_frame(len(s.channel.published)))
        clock.advance(max(delay, 0.001))
    assert s.next_seq == 50
    assert any("backpressure" in m for m in limiter.marks.values())


def test_a_run_that_forgave_jobs_still_releases_all_of_x(new_run: NewRun, clock: FakeClock) -> None:
    """The forgiven jobs come off the shape's target before the cap at x, never after: a run
    whose scheduler was away longer than the rest of its shape still ends with every job."""
    limiter = new_run(x=300, y=600)
    first = scheduler(limiter, clock, "s1")
    run_for(first, clock, limiter, 5)
    limiter.lease_holder = None
    clock.advance(60)  # longer than the 30 s the whole run takes
    second = scheduler(limiter, clock, "s2")
    run_for(second, clock, limiter, 40)
    assert second.next_seq == limiter.granted_to == 300 and limiter.lag > 0
