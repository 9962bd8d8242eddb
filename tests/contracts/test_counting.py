"""Counting: `FakeCounting` and `record.lua` (through `Counting`) give the same answers to the
same batches: each job counted once, a failure that later succeeds moved over, middleware counts
and latency added only with a job counted for the first time, nothing for a run that does not
exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from lab.runtime import latency
from lab.runtime.middleware import Count
from lab.runtime.stores import Stores
from lab.testing import FakeCounting
from tests.contracts.conftest import KINDS


@dataclass
class World:
    """One counting store and what a test reads back from it, whichever it is."""

    counting: Any
    stores: Stores | None = None

    def start(self, x: int = 100) -> str:
        if self.stores is None:
            run_id = f"run{len(self.counting.runs) + 1}"
            self.counting.runs.add(run_id)
            self.counting.x[run_id] = x
            return run_id
        return self.stores.runs.start(x, 60)

    def verdict(self, run_id: str) -> tuple[int, int]:
        """(jobs that ended more than once, seqs the run never had)."""
        if self.stores is None:
            c = self.counting
            return len(c.again.get(run_id, ())), c.unexpected.get(run_id, 0)
        h = self.stores.redis.hmget(self.stores.keys.run(run_id), "executedAgain", "unexpected")
        return int(h[0] or 0), int(h[1] or 0)

    def counted(self, key: str) -> dict[str, int]:
        if self.stores is None:
            return dict(self.counting.hashes.get(key, {}))
        return {f: int(n) for f, n in self.stores.redis.hgetall(key).items()}

    def histograms(self, run_id: str) -> dict[str, latency.Histogram]:
        source = self.counting if self.stores is None else self.stores.runs
        return source.histograms(run_id)


@pytest.fixture(params=KINDS)
def world(request: pytest.FixtureRequest) -> World:
    if request.param == "fake":
        return World(FakeCounting(runs=set()))
    stores = request.getfixturevalue("real_stores")
    return World(stores.counting, stores)


def timings(run_id: str, seqs: list[int], finished: float = 2_000_000.0) -> dict[str, Any]:
    jobs = [(seq, 1, 1_000_000 + seq, 1_000_100 + seq, 1_000_500.0 + seq, 0.0) for seq in seqs]
    return {run_id: latency.RunTimings(0, ["index"], finished, jobs)}


def test_each_job_is_counted_once_however_often_it_comes(world: World) -> None:
    run = world.start()
    assert world.counting.record({run: ([0, 1, 2], [])}) == (3, 0)
    assert world.counting.record({run: ([1, 2, 3], [])}) == (1, 0)
    assert world.counting.record({run: ([4, 4], [])}) == (1, 0)  # twice in one batch


def test_a_failure_that_later_succeeds_moves_over_and_a_success_never_fails(world: World) -> None:
    run = world.start()
    assert world.counting.record({run: ([], [5])}) == (0, 1)
    assert world.counting.record({run: ([], [5])}) == (0, 0)
    assert world.counting.record({run: ([5], [])}) == (1, -1)
    assert world.counting.record({run: ([6], [6])}) == (1, 0)  # done wins within a batch
    assert world.counting.record({run: ([], [6])}) == (0, 0)


def test_a_run_that_does_not_exist_counts_nothing(world: World) -> None:
    run = world.start()
    assert world.counting.record({"nosuch": ([0], [1]), run: ([0], [])}) == (1, 0)


def test_middleware_counts_come_only_with_a_job_counted_for_the_first_time(world: World) -> None:
    run = world.start()
    key = world.counting.keys.run_kinds(run)
    counts = {run: {0: [Count(key, "index")], 1: [Count(key, "index", 2)]}}
    assert world.counting.record({run: ([0, 1], [])}, counts) == (2, 0)
    assert world.counting.record({run: ([0, 1], [])}, counts) == (0, 0)
    failed = {run: {2: [Count(key, "lost")]}}
    assert world.counting.record({run: ([], [2])}, failed) == (0, 1)
    assert world.counted(key) == {"index": 3, "lost": 1}


@pytest.mark.parametrize("mixed", [False, True])
def test_latency_is_counted_with_its_job_once(world: World, mixed: bool) -> None:
    run = world.start()
    if mixed:  # a batch with a job seen before goes job by job: only the new ones add
        world.counting.record({run: ([0], [])}, None, timings(run, [0]))
    seqs = list(range(10))
    world.counting.record({run: (seqs, [])}, None, timings(run, seqs))
    world.counting.record({run: (seqs, [])}, None, timings(run, seqs))
    measured = world.histograms(run)
    assert {m: h.count for m, h in measured.items()} == dict.fromkeys(latency.METRICS, 10)
    expected = latency.Histogram()
    for seq in seqs:
        expected.add(latency.bucket_of(2_000_000.0 - 1_000_000 - seq))
    assert measured["endToEnd"].counts == expected.counts


def test_dead_letters_are_counted(world: World) -> None:
    run = world.start()
    world.counting.dead_letter(run)
    world.counting.dead_letter(None)
    assert world.counting.dead_lettered() == 2


def test_a_job_that_ends_again_was_executed_more_than_once(world: World) -> None:
    run = world.start()
    world.counting.record({run: ([1, 2], [3])})
    assert world.counting.record({run: ([1], [3])}) == (0, 0)
    assert world.counting.record({run: ([], [2])}) == (0, 0)
    assert world.verdict(run) == (3, 0)
    world.counting.record({run: ([1], [])})
    assert world.verdict(run) == (3, 0)  # jobs, not ends: 1 ended three times, once "again"


def test_a_seq_the_run_never_had_is_unexpected_and_counted_nowhere_else(world: World) -> None:
    run = world.start(x=5)
    assert world.counting.record({run: ([4, 5, 9], [7])}) == (1, 0)
    assert world.verdict(run) == (0, 3)


def test_a_batch_sent_again_counts_once(world: World) -> None:
    run = world.start()
    assert world.counting.record({run: ([0, 1], [])}, call_id="b1") == (2, 0)
    assert world.counting.record({run: ([0, 1], [])}, call_id="b1") == (2, 0)  # its first answer
    assert world.verdict(run) == (0, 0)  # not "executed again": the same batch, sent twice
    assert world.counting.record({run: ([0, 1], [])}, call_id="b2") == (0, 0)
    assert world.verdict(run) == (2, 0)


def test_a_batch_of_jobs_released_long_ago_is_counted(world: World) -> None:
    # A job whose first release was decades ago (a message's createdAt of 1): its end-to-end
    # sum, over a batch, passed 1e17 µs, which the script wrote as `1e+17` and Redis refused.
    run = world.start(x=600)
    seqs = list(range(500))
    jobs = [(seq, 1, 1, 1, 2_000_000.0, 0.0) for seq in seqs]
    batch = {run: latency.RunTimings(0, ["index"], 2_000_000_000_000.0, jobs)}
    assert world.counting.record({run: (seqs, [])}, None, batch) == (500, 0)
    assert world.histograms(run)["endToEnd"].count == 500
