"""Worker middleware on a stub channel: hooks in order, counts added only for a job counted for
the first time, a decision that puts a batch back, and a middleware's bug that costs nothing."""

from __future__ import annotations

from typing import Any

from lab.runtime.batch import Delivery, Outcome
from lab.runtime.middleware import Count, Middleware, Stack, default_stack
from lab.runtime.middleware.counters import Counters
from lab.runtime.middleware.kinds import KindCounts
from lab.runtime.worker import Session, Worker
from lab.testing import FakeRecords, FakeState, FakeStore, StubChannel, StubConnection
from tests.unit.test_worker_decisions import SETTINGS, deliver, job, settle


class Journal(Middleware):
    """Writes down every hook it sees."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def before_process(self, worker: Worker, batch: list[Delivery]) -> None:
        self.seen.append(f"before {len(batch)}")

    def counts(self, worker: Worker, outcome: Outcome) -> list[Count]:
        self.seen.append("counts")
        return []

    def after_process(self, worker: Worker, outcomes: list[Outcome], counted: Any) -> None:
        self.seen.append(f"after {counted}")

    def on_success(self, worker: Worker, outcome: Outcome) -> None:
        self.seen.append("success")

    def on_retry(self, worker: Worker, outcome: Outcome) -> None:
        self.seen.append("retry")


class Broken(Middleware):
    def before_process(self, worker: Worker, batch: list[Delivery]) -> None:
        raise RuntimeError("a bug in a middleware")

    def counts(self, worker: Worker, outcome: Outcome) -> list[Count]:
        raise RuntimeError("another")


class Holding(Middleware):
    def before_process(self, worker: Worker, batch: list[Delivery]) -> str:
        return "requeue"


def with_stack(*middleware: Middleware) -> tuple[Worker, Session, FakeState, FakeStore]:
    state, store = FakeState(), FakeStore()
    stack = Stack([*default_stack().middleware, *middleware])
    w = Worker(SETTINGS, "w1", state=state, store=store, records=FakeRecords(), middleware=stack)
    session = w.session = Session(StubConnection(), StubChannel())
    return w, session, state, store


def test_hooks_see_a_batch_in_order() -> None:
    journal = Journal()
    w, session, _, _ = with_stack(journal)
    deliver(w, session, job(0), job(1, failAttempts=1))
    settle(w, session)
    assert journal.seen == ["before 2", "counts", "counts", "after (1, 0)", "success", "retry"]


def test_what_a_middleware_counts_is_added_once_per_job() -> None:
    w, session, state, _ = with_stack(KindCounts())  # one line installs it
    deliver(w, session, job(0), job(1), job(1))  # job 1 delivered twice
    settle(w, session)
    deliver(w, session, job(0))  # and job 0 redelivered later
    settle(w, session)
    assert state.hashes["unit:run:run1:kinds"] == {"index": 2}
    assert w.middleware.of(Counters).processed == 2
    # Each job's latency is counted the same way: once, however often it was delivered.
    assert sorted(state.timings["run1"]) == [0, 1]


def test_a_middleware_bug_costs_no_delivery() -> None:
    w, session, state, store = with_stack(Broken())
    deliver(w, session, job(0), job(1))
    settle(w, session)
    assert sorted(store.docs) == ["run1-0", "run1-1"] and state.done == {"run1": {0, 1}}
    assert session.channel.acks == [(2, True)]


def test_a_middleware_may_put_a_batch_back_unstarted() -> None:
    w, session, state, store = with_stack(Holding())
    deliver(w, session, job(0))
    settle(w, session)
    assert store.docs == {} and session.channel.nacks == [(1, True)]
