"""Worker middleware on a stub channel: hooks in order, counts added only for a job counted for
the first time, a decision that puts a batch back, and a middleware's bug that costs nothing."""

from __future__ import annotations

from typing import Any

from lab.runtime.batch import Delivery, Outcome
from lab.runtime.middleware import Count, Middleware
from lab.runtime.middleware.counters import Counters
from lab.runtime.middleware.kinds import KindCounts
from lab.runtime.seams import WorkerSeam
from tests.unit.stub_worker import deliver, job, settle, worker


class Journal(Middleware):
    """Writes down every hook it sees."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def before_process(self, worker: WorkerSeam, batch: list[Delivery]) -> None:
        self.seen.append(f"before {len(batch)}")

    def counts(self, worker: WorkerSeam, outcome: Outcome) -> list[Count]:
        self.seen.append("counts")
        return []

    def after_process(self, worker: WorkerSeam, outcomes: list[Outcome], counted: Any) -> None:
        self.seen.append(f"after {counted}")

    def on_success(self, worker: WorkerSeam, outcome: Outcome) -> None:
        self.seen.append("success")

    def on_retry(self, worker: WorkerSeam, outcome: Outcome) -> None:
        self.seen.append("retry")


class Broken(Middleware):
    def before_process(self, worker: WorkerSeam, batch: list[Delivery]) -> None:
        raise RuntimeError("a bug in a middleware")

    def counts(self, worker: WorkerSeam, outcome: Outcome) -> list[Count]:
        raise RuntimeError("another")


class Holding(Middleware):
    def before_process(self, worker: WorkerSeam, batch: list[Delivery]) -> str:
        return "requeue"


def test_hooks_see_a_batch_in_order() -> None:
    journal = Journal()
    w, session, _, _ = worker(middleware=[journal])
    deliver(w, session, job(0), job(1, failAttempts=1))
    settle(w, session)
    assert journal.seen == ["before 2", "counts", "counts", "after (1, 0)", "success", "retry"]


def test_what_a_middleware_counts_is_added_once_per_job() -> None:
    w, session, counting, _ = worker(middleware=[KindCounts()])  # one line installs it
    deliver(w, session, job(0), job(1), job(1))  # job 1 delivered twice
    settle(w, session)
    deliver(w, session, job(0))  # and job 0 redelivered later
    settle(w, session)
    assert counting.hashes["unit:run:run1:kinds"] == {"index": 2}
    assert w.middleware.of(Counters).processed == 2
    # Each job's latency is counted the same way: once, however often it was delivered.
    assert sorted(counting.timings["run1"]) == [0, 1]


def test_a_middleware_bug_costs_no_delivery() -> None:
    w, session, counting, store = worker(middleware=[Broken()])
    deliver(w, session, job(0), job(1))
    settle(w, session)
    assert sorted(store.docs) == ["run1-0", "run1-1"] and counting.done == {"run1": {0, 1}}
    assert session.channel.acks == [(2, True)]


def test_a_middleware_may_put_a_batch_back_unstarted() -> None:
    w, session, counting, store = worker(middleware=[Holding()])
    deliver(w, session, job(0))
    settle(w, session)
    assert store.docs == {} and session.channel.nacks == [(1, True)]
