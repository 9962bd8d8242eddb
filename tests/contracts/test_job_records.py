"""Single jobs' records as a worker uses them: `FakeRecords` and the job scripts (through
`JobRecords`) answer the same way on one clock: an untracked message runs, one attempt has one
owner at a time (a second copy waits out the owner's lease, then takes over), a stale attempt is
skipped, only the owner's progress, renewals and end are written, a paused queue sends the
message back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from lab.runtime.attempts import End
from lab.runtime.jobs import JobRecords
from lab.runtime.messages import Job
from lab.runtime.stores import Stores
from lab.testing import FakeClock, FakeRecords
from tests.contracts.conftest import KINDS

QUEUE = "contract.jobs.single"


@dataclass
class World:
    records: Any
    clock: FakeClock
    stores: Stores | None = None

    def add(self, attempts: int = 3) -> str:
        if self.stores is None:
            job_id = f"job-{len(self.records.jobs) + 1}"
            self.records.add(job_id, attempts)
            return job_id
        job_id, _ = self.records.create("agent", {}, attempts)
        return str(job_id)

    def pause(self, queue: str) -> None:
        if self.stores is None:
            self.records.paused.add(queue)
        else:
            self.stores.pauses.pause_queue(queue)

    @property
    def lease_s(self) -> float:
        return self.records.lease_s if self.stores is None else self.records.lease_ms / 1000


@pytest.fixture(params=KINDS)
def world(request: pytest.FixtureRequest, clock: FakeClock) -> World:
    if request.param == "fake":
        return World(FakeRecords(clock, lease_s=10.0), clock)
    settings = request.getfixturevalue("redis_settings").with_overrides(heartbeat_ttl_s=10.0)
    stores = Stores.of(settings, clock=clock)
    return World(JobRecords(settings, stores.redis, clock=clock), clock, stores)


def message(job_id: str, attempt: int = 1) -> Job:
    return Job(jobId=job_id, runId=None, seq=None, kind="agent", attempt=attempt, createdAt=0,
               payload={})  # fmt: skip


def test_a_message_with_no_record_runs_untracked(world: World) -> None:
    begin = world.records.begin(message("job-none"), "w1", False, "w1/a", QUEUE)
    assert begin.run and not begin.tracked


def test_one_attempt_has_one_owner_until_its_lease_lapses(world: World) -> None:
    job_id = world.add()
    first = world.records.begin(message(job_id), "w1", False, "w1/a", QUEUE)
    assert first.run and first.tracked and first.budget is not None
    copy = world.records.begin(message(job_id), "w2", True, "w2/a", QUEUE)
    assert not copy.run and 0 < copy.busy_ms <= world.lease_s * 1000 + 1
    assert world.records.progress(message(job_id), "w1/a", 10, "one", "") == "ok"
    assert world.records.progress(message(job_id), "w2/a", 20, "two", "") == "gone"
    world.clock.advance(world.lease_s / 2)
    assert world.records.renew({job_id: "w1/a"}) == 1
    world.clock.advance(world.lease_s * 0.9)  # renewed: still the owner's
    assert not world.records.begin(message(job_id), "w2", True, "w2/a", QUEUE).run
    world.clock.advance(world.lease_s)  # lapsed: the copy takes over
    assert world.records.begin(message(job_id), "w2", True, "w2/a", QUEUE).run
    assert world.records.renew({job_id: "w1/a"}) == 0
    assert not world.records.finish(message(job_id), End("completed", lease="w1/a"))
    assert world.records.finish(message(job_id), End("completed", lease="w2/a", result={}))
    again = world.records.begin(message(job_id), "w3", True, "w3/a", QUEUE)
    assert not again.run and again.reason == "completed"


def test_a_retry_queues_the_next_attempt_and_the_old_one_is_stale(world: World) -> None:
    job_id = world.add()
    assert world.records.begin(message(job_id), "w1", False, "w1/a", QUEUE).run
    assert world.records.finish(message(job_id), End("retry", lease="w1/a", error="boom"))
    stale = world.records.begin(message(job_id, 1), "w2", True, "w2/a", QUEUE)
    assert not stale.run
    assert world.records.begin(message(job_id, 2), "w2", False, "w2/b", QUEUE).run
    assert world.records.finish(message(job_id, 2), End("failed", lease="w2/b", error="boom"))
    assert not world.records.begin(message(job_id, 2), "w2", True, "w2/c", QUEUE).run


def test_a_newer_attempt_takes_over_at_once(world: World) -> None:
    # A manual retry re-publishes with attempt + 1 while the old attempt may still run.
    job_id = world.add()
    assert world.records.begin(message(job_id), "w1", False, "w1/a", QUEUE).run
    assert world.records.begin(message(job_id, 2), "w2", False, "w2/b", QUEUE).run
    assert world.records.progress(message(job_id), "w1/a", 50, "late", "") == "gone"


def test_a_paused_queue_sends_the_message_back(world: World) -> None:
    job_id = world.add()
    world.pause(QUEUE)
    begin = world.records.begin(message(job_id), "w1", False, "w1/a", QUEUE)
    assert not begin.run and begin.paused
    assert world.records.begin(message(job_id), "w1", False, "w1/a", "other.queue").run
