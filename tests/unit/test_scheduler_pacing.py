"""The scheduler's own decisions, without Redis or RabbitMQ: how fast it asks and publishes on a
fake clock, the publish window, recording the confirmed frontier, republishing refused jobs,
standing by when the lease is gone, and pairing confirms with jobs across runs on one channel.
(`release.lua`'s arithmetic itself is tested against Redis in tests/test_rate.py.)"""

from __future__ import annotations

import json

from lab.config import Settings
from lab.runtime.pacing import ADVANCE_EVERY_S, MAX_TICK_S, MIN_TICK_S, next_tick
from lab.runtime.scheduler import Scheduler
from lab.testing import FakeClock, FakeLimiter, StubChannel, ack_frame, nack_frame

SETTINGS = Settings(queue="unit.jobs", publish_window=50)


def scheduler(limiter: FakeLimiter, clock: FakeClock) -> tuple[Scheduler, StubChannel]:
    s = Scheduler(SETTINGS, scheduler_id="s1", stores=limiter.stores(), clock=clock)
    s.channel = StubChannel()
    return s, s.channel


def seqs(channel: StubChannel) -> list[int]:
    return [json.loads(p.body)["seq"] for p in channel.to("unit.jobs")]


def steps(s: Scheduler, clock: FakeClock, n: int) -> None:
    """`n` ticks 10 ms apart: with a fresh limiter, the lease, then one token, then the rest."""
    for _ in range(n):
        s.step()
        clock.advance(0.01)


def run_for(s: Scheduler, clock: FakeClock, seconds: float, confirm: bool = True) -> None:
    """Tick as the event loop would: each `step` says when the next one is due."""
    end = clock() + seconds
    while clock() < end:
        delay = s.step()
        if confirm and s.tracker.outstanding:
            s.on_confirm(ack_frame(len(s.channel.published)))  # the channel's own last tag
        clock.advance(max(delay, 0.001))


def test_the_release_follows_y_on_a_fake_clock_and_never_bursts() -> None:
    clock = FakeClock()
    limiter = FakeLimiter(clock, x=100_000, y=600)  # 10 jobs a second
    s, channel = scheduler(limiter, clock)
    run_for(s, clock, 60)
    published = seqs(channel)
    assert published == list(range(len(published)))  # every seq once, in order
    assert abs(len(published) - 600) <= 3, len(published)
    # Ten in each whole second: the first at once, then one every 100 ms (the one due on a
    # second's edge belongs to the next).
    assert set(list(limiter.released.values())[:-1]) == {10}, limiter.released
    assert not limiter.marks  # nothing forgiven, nothing held back


def test_ticks_come_when_the_next_job_is_due_within_bounds() -> None:
    assert next_tick(0, False) == MIN_TICK_S
    assert next_tick(None, False) == MIN_TICK_S
    assert next_tick(0.075, False) == 0.075
    assert next_tick(10, False) == MAX_TICK_S
    assert next_tick(10, True) == ADVANCE_EVERY_S  # confirms to record: come back soon


def test_no_more_than_the_publish_window_is_ever_unconfirmed() -> None:
    clock = FakeClock()
    limiter = FakeLimiter(clock, x=10_000, y=6_000_000)  # 100,000 a second
    s, channel = scheduler(limiter, clock)
    run_for(s, clock, 1, confirm=False)
    assert s.tracker.outstanding == SETTINGS.publish_window == len(channel.published)
    assert s.step() == MIN_TICK_S and len(channel.published) == SETTINGS.publish_window


def test_enqueued_is_the_confirmed_frontier_recorded_at_most_every_50ms() -> None:
    clock = FakeClock()
    limiter = FakeLimiter(clock, x=1000, y=6_000_000)
    s, _ = scheduler(limiter, clock)
    s.step()  # takes the lease and follows the run
    clock.advance(0.01)
    s.step()  # reads the run's clock
    clock.advance(0.01)  # the shape allows far more than the window by now
    s.step()  # publishes the window of 50
    assert s.tracker.outstanding == 50
    clock.advance(ADVANCE_EVERY_S)
    s.on_confirm(ack_frame(10))  # jobs 0-9 confirmed
    s.on_confirm(ack_frame(20))  # within 50 ms of the last record: not written yet
    assert [up for _, up in limiter.advances] == [10]
    clock.advance(ADVANCE_EVERY_S + 0.001)
    s.on_confirm(ack_frame(30))
    assert [up for _, up in limiter.advances] == [10, 30]
    assert limiter.enqueued == 30


def test_a_refused_job_is_published_again_and_holds_the_frontier_back() -> None:
    clock = FakeClock()
    limiter = FakeLimiter(clock, x=5, y=6_000_000)
    s, channel = scheduler(limiter, clock)
    steps(s, clock, 3)  # the lease, the clock, then every job
    assert seqs(channel) == [0, 1, 2, 3, 4]
    s.on_confirm(nack_frame(3))  # seq 2 refused
    s.on_confirm(ack_frame(5))
    assert s.tracker.frontier(s.next_seq, s.republish) == 2
    clock.advance(1)
    s.step()
    assert seqs(channel) == [0, 1, 2, 3, 4, 2]
    s.on_confirm(ack_frame(6))
    clock.advance(1)
    s.advance_frontier()
    assert limiter.enqueued == 5


def test_a_lost_lease_means_standing_by_and_publishing_nothing() -> None:
    clock = FakeClock()
    limiter = FakeLimiter(clock, x=100, y=6000)
    s, channel = scheduler(limiter, clock)
    s.step()
    limiter.lease_holder = "s2"  # another scheduler took over
    clock.advance(1)
    before = len(channel.published)
    assert s.step() > 0 and not s.leader
    assert len(channel.published) == before


def test_a_paused_run_publishes_nothing_and_resumes_without_catching_up() -> None:
    clock = FakeClock()
    limiter = FakeLimiter(clock, x=100_000, y=600)
    s, channel = scheduler(limiter, clock)
    run_for(s, clock, 5)
    before = len(channel.published)
    limiter.paused = True
    run_for(s, clock, 5)
    assert len(channel.published) == before and s.run_id == "run1"  # still following it
    limiter.paused = False
    run_for(s, clock, 1)
    assert len(channel.published) - before <= 10 + 1  # one second's worth: shape time stood still
    assert not any("forgiven" in m for m in limiter.marks.values())


def test_confirms_of_a_later_run_on_the_same_channel_are_paired_with_its_own_jobs() -> None:
    """The broker numbers a channel's publishes 1, 2, 3, … for the channel's whole life, not per
    run. A tracker that started again at 1 for the next run took the broker's single confirms
    for jobs it never had (the run's last job stayed unconfirmed: the run never completed) and
    its multiple confirms for jobs not yet confirmed (counted as released too early)."""
    clock = FakeClock()
    limiter = FakeLimiter(clock, x=5, y=6_000_000)
    s, channel = scheduler(limiter, clock)
    steps(s, clock, 3)
    s.on_confirm(ack_frame(5))  # the broker's tags 1-5: the first run's jobs 0-4
    clock.advance(1)
    s.advance_frontier()
    assert limiter.enqueued == 5
    limiter.enqueued, limiter.granted_to = 0, 0  # the next run: nothing of it released yet
    s.follow("run2")
    steps(s, clock, 2)  # its clock, then every job
    assert seqs(channel) == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    s.on_confirm(ack_frame(7))  # tags 6 and 7: this run's jobs 0 and 1, no more
    clock.advance(1)
    s.advance_frontier()
    assert limiter.enqueued == 2
    for tag in (8, 9, 10):  # one by one, as RabbitMQ may confirm
        s.on_confirm(ack_frame(tag, multiple=False))
    clock.advance(1)
    s.advance_frontier()
    assert limiter.enqueued == 5 and s.tracker.outstanding == 0
