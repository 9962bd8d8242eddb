"""A run of another target is released by the same scheduler and shape, its jobs submitted
through the target's client at the end of each tick: what the broker took or may have taken
counts as released, what it refused is released again, each outcome recorded (on stand-ins)."""

from __future__ import annotations

from collections.abc import Sequence

from lab.config import Settings
from lab.runtime.messages import Job
from lab.runtime.scheduler import Scheduler
from lab.runtime.submits import Outcome
from lab.testing import FakeClock, FakeLimiter

SETTINGS = Settings(queue="unit.jobs", publish_window=2000)


class Broker:
    """A target's client that refuses the seqs in `refuse` once and times out on `unsure`."""

    def __init__(self, refuse: set[int], unsure: set[int]):
        self.refuse, self.unsure = set(refuse), unsure
        self.opened = 0
        self.taken: list[int] = []

    def open(self) -> None:
        self.opened += 1

    def submit(self, jobs: Sequence[Job]) -> list[Outcome]:
        out = []
        for job in jobs:
            assert job.seq is not None
            if job.seq in self.refuse:
                self.refuse.discard(job.seq)
                out.append(Outcome("failed", error="refused"))
            elif job.seq in self.unsure:
                out.append(Outcome("indeterminate"))
            else:
                self.taken.append(job.seq)
                out.append(Outcome("ok", broker_id=job.jobId))
        return out


def test_a_target_s_run_is_submitted_refusals_released_again_and_every_outcome_counted() -> None:
    clock = FakeClock(1000.0)
    limiter = FakeLimiter(clock, x=20, y=60_000, target="celery")
    broker = Broker(refuse={3, 4}, unsure={7})
    s = Scheduler(SETTINGS, "s1", stores=limiter.stores(), clock=clock,
                  submitters=lambda name: broker)  # fmt: skip
    for _ in range(40):
        clock.advance(max(s.step(), 0.001))
        limiter.settled = s.next_seq
    assert broker.opened == 1  # one client, opened once
    assert sorted(broker.taken) == [s for s in range(20) if s != 7]  # 3 and 4 on a second try
    assert sorted(limiter.submits["failed"]) == [3, 4]
    assert limiter.submits["indeterminate"] == [7]
    assert limiter.enqueued == 20  # every job counts as released once the broker answered


class SlowBroker(Broker):
    """Takes `per_job_s` of the clock per job, as a framework's submits do (Celery's ~100/s)."""

    def __init__(self, clock: FakeClock, per_job_s: float):
        super().__init__(set(), set())
        self.clock, self.per_job_s = clock, per_job_s
        self.longest_s = 0.0

    def submit(self, jobs: Sequence[Job]) -> list[Outcome]:
        self.clock.advance(self.per_job_s * len(jobs))
        self.longest_s = max(self.longest_s, self.per_job_s * len(jobs))
        return super().submit(jobs)


def test_a_slow_target_is_submitted_a_tick_s_worth_at_a_time_so_the_lease_holds() -> None:
    """A thousand jobs granted at once to a target that takes 50 a second would hold the tick
    20 s, past the 5 s lease: the release would go back to the last recorded job and submit
    what was already taken a second time. The tick asks for what the target's measured rate
    submits in about half a second."""
    clock = FakeClock(1000.0)
    limiter = FakeLimiter(clock, x=600, y=6_000_000, target="celery")
    broker = SlowBroker(clock, per_job_s=0.02)
    s = Scheduler(SETTINGS, "s1", stores=limiter.stores(), clock=clock,
                  submitters=lambda name: broker)  # fmt: skip
    while s.next_seq < 600 or limiter.enqueued < 600:
        clock.advance(max(s.step(), 0.001))
        limiter.settled = s.next_seq
        assert clock() < 1100, "the run never finished releasing"
    assert sorted(broker.taken) == list(range(600))  # each once
    assert broker.longest_s <= 2.0 < SETTINGS.lease_ms / 1000
    assert 40 <= s.submissions.rate <= 60  # it learnt the target's 50 a second
