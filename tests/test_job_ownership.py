"""A single job is a state machine with one writer per transition (real Redis, no timing).

Each test interleaves the steps of two actors explicitly, in the order that used to go wrong:
a cancelled delayed job retried and then run-now'd published its attempt twice; a second copy
of an attempt restarted it beside its running owner; prune deleted a job retried between its
listing and its delete; a pause answered before a job started did not stop it.
"""

from __future__ import annotations

import json
import time

import pytest

from lab.runtime.attempts import End
from lab.runtime.jobs import JobConflict, JobRecords
from lab.runtime.messages import Job
from lab.runtime.stores import Stores

QUEUE = "q.single"


@pytest.fixture
def records(stores: Stores) -> JobRecords:
    return JobRecords(stores.settings, stores.redis)


def message(records: JobRecords, job_id: str) -> Job:
    return records.message(job_id).job


def test_cancel_retry_then_run_now_publishes_the_attempt_once(records: JobRecords) -> None:
    job_id, delayed = records.create("agent", {}, 3, run_at_ms=int(time.time() * 1000) + 3_600_000)
    assert delayed and records.redis.zscore(records.keys.delayed_jobs, job_id) is not None
    assert records.cancel(job_id) == "cancelled"
    # The delayed entry went with the cancel: nothing can publish the old attempt any more.
    assert records.redis.zscore(records.keys.delayed_jobs, job_id) is None
    assert records.retry(job_id) == 2  # the caller publishes attempt 2 now
    assert records.run_now(job_id) is False  # no second copy: run-now finds nothing waiting
    assert records.due(now_ms=2**52) == []  # nor does the delayed releaser


def test_a_second_copy_of_an_attempt_waits_for_its_owner(records: JobRecords) -> None:
    job_id, _ = records.create("agent", {}, 3)
    job = message(records, job_id)
    first = records.begin(job, "w1", False, "w1/a", QUEUE)
    assert first.run and first.tracked
    # The same attempt delivered again (redelivery, or a publish that raced a retry) while its
    # owner's lease is alive: it does not start beside it.
    second = records.begin(job, "w2", True, "w2/b", QUEUE)
    assert not second.run and 0 < second.busy_ms <= records.lease_ms
    assert records.get(job_id)["worker"] == "w1"
    # The owner's steps and finish are accepted; the other copy, seen later, is skipped.
    assert records.progress(job, "w1/a", 50, "half", "half way") == "ok"
    assert records.finish(job, End("completed", "w1/a", result={}))
    assert records.begin(job, "w2", True, "w2/b", QUEUE).reason == "completed"


def test_an_owner_whose_lease_was_taken_over_writes_nothing(records: JobRecords) -> None:
    job_id, _ = records.create("agent", {}, 3)
    job = message(records, job_id)
    assert records.begin(job, "w1", False, "w1/a", QUEUE).run
    # w1 froze past its lease (as if SIGSTOPped): the lease lapses, a redelivery takes over.
    records.redis.hset(records.keys.job(job_id), "leaseUntil", 0)
    assert records.begin(job, "w2", True, "w2/b", QUEUE).run
    # w1 wakes: its step, its renewal and its finish are all refused.
    assert records.progress(job, "w1/a", 60, "late", "late step") == "gone"
    assert records.renew({job_id: "w1/a"}) == 0
    assert not records.finish(job, End("completed", "w1/a", result={"by": "w1"}))
    view = records.get(job_id)
    assert view["state"] == "active" and view["worker"] == "w2" and view["step"] != "late"
    assert records.renew({job_id: "w2/b"}) == 1
    assert records.finish(job, End("completed", "w2/b", result={"by": "w2"}))
    assert records.get(job_id)["result"] == {"by": "w2"}


def test_prune_deletes_only_what_is_still_ended_when_it_deletes(records: JobRecords) -> None:
    job_id, _ = records.create("agent", {}, 1)
    job = message(records, job_id)
    assert records.begin(job, "w1", False, "w1/a", QUEUE).run
    assert records.finish(job, End("failed", "w1/a", error="boom"))
    cutoff = int(time.time() * 1000) + 1000
    assert records.ended_before(cutoff) == [job_id]  # prune's listing
    records.retry(job_id)  # a retry lands between the listing and the delete
    with pytest.raises(JobConflict):
        records.delete(job_id, ended_before_ms=cutoff)
    assert records.get(job_id)["state"] == "queued"


def test_no_job_starts_once_its_queue_is_paused(records: JobRecords, stores: Stores) -> None:
    job_id, _ = records.create("agent", {}, 3)
    job = message(records, job_id)
    assert stores.pauses.pause_queue(
        QUEUE
    )  # the pause has answered; the message is already delivered
    begin = records.begin(job, "w1", False, "w1/a", QUEUE)
    assert begin.paused and not begin.run and records.get(job_id)["state"] == "queued"
    stores.pauses.pause_queue(QUEUE, paused=False)
    assert records.begin(job, "w1", False, "w1/a", QUEUE).run


def test_a_stale_progress_message_never_reaches_the_log(records: JobRecords) -> None:
    job_id, _ = records.create("agent", {}, 3)
    job = message(records, job_id)
    assert records.begin(job, "w1", False, "w1/a", QUEUE).run
    assert records.progress(job, "not-the-owner", 10, "x", "forged") == "gone"
    assert all("forged" not in json.dumps(line) for line in records.get(job_id)["log"])
