"""The worker's decisions on a stub channel, with in-memory stand-ins for Elasticsearch and
Redis: what it writes, counts, retries, dead-letters and acks, and in which order. The same
paths against the real services are in tests/test_failures.py, test_poison.py and
test_exactly_once.py."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
from elastic_transport import ConnectionError as EsConnectionError

from lab.runtime.messages import Job, run_job
from lab.testing import FakeStore
from tests.unit.stub_worker import SETTINGS, counters, deliver, job, settle, worker


def test_a_batch_is_written_counted_once_and_acked_with_one_multiple_ack() -> None:
    w, session, counting, store = worker()
    deliver(w, session, *(job(seq) for seq in range(5)))
    settle(w, session)
    assert sorted(store.docs) == [f"run1-{seq}" for seq in range(5)] and store.calls == 1
    assert counting.done == {"run1": {0, 1, 2, 3, 4}} and counters(w).processed == 5
    assert session.channel.acks == [(5, True)] and session.channel.published == []


def test_a_failed_attempt_goes_to_its_ladder_step_and_is_acked_after_the_publish() -> None:
    w, session, counting, store = worker()
    deliver(w, session, job(0), job(1, failAttempts=1), job(2))
    settle(w, session)
    (retry,) = session.channel.to("unit.jobs.retry.200")
    again = json.loads(retry.body)
    assert again["jobId"] == "run1-1" and again["attempt"] == 2
    assert "injected failure" in retry.headers["x-lab-error"]
    assert "run1-1" not in store.docs and counting.done == {"run1": {0, 2}}
    assert session.channel.acks == [(3, True)]  # every delivery, the failed one included
    assert session.channel.log == ["publish unit.jobs.retry.200", "ack 3"]  # never lost between


def test_the_second_failure_waits_longer_and_the_last_is_dead_lettered() -> None:
    w, session, counting, _ = worker()
    deliver(w, session, job(7, attempt=2, failAttempts=3))
    settle(w, session)
    assert len(session.channel.to("unit.jobs.retry.400")) == 1
    deliver(w, session, job(8, attempt=3, failAttempts=3))
    settle(w, session)
    (dead,) = session.channel.to("unit.jobs.dead")
    assert dead.headers["x-lab-reason"] == "exhausted" and json.loads(dead.body)["attempt"] == 3
    assert (
        counting.failed == {"run1": {8}}
        and counting.dead_letters == ["run1"]
        and counters(w).failed == 1
    )


def test_a_retry_and_a_dead_letter_keep_the_message_priority() -> None:
    w, session, _, _ = worker()
    deliver(w, session, job(1, failAttempts=1), priority=5)
    deliver(w, session, b"not json", priority=5)
    settle(w, session)
    (retry,) = session.channel.to("unit.jobs.retry.200")
    (dead,) = session.channel.to("unit.jobs.dead")
    assert retry.priority == 5 and dead.priority == 5


def test_a_malformed_body_is_dead_lettered_unchanged_and_the_batch_goes_on() -> None:
    w, session, counting, _ = worker()
    deliver(w, session, job(0), b'{"jobId": "x"', job(1))
    settle(w, session)
    (dead,) = session.channel.to("unit.jobs.dead")
    assert dead.body == b'{"jobId": "x"' and dead.headers["x-lab-reason"] == "malformed"
    assert dead.headers["x-lab-queue"] == "unit.jobs"
    assert counting.done == {"run1": {0, 1}} and session.channel.acks == [(3, True)]


def test_a_document_elasticsearch_refuses_fails_alone() -> None:
    w, session, counting, store = worker(FakeStore(refuse={"run1-1": "400: mapper_parsing"}))
    deliver(w, session, job(0), job(1), job(2))
    settle(w, session)
    (retry,) = session.channel.to("unit.jobs.retry.200")
    assert json.loads(retry.body)["jobId"] == "run1-1" and "mapper_parsing" in str(retry.headers)
    assert sorted(store.docs) == ["run1-0", "run1-2"] and counting.done == {"run1": {0, 2}}


def test_an_unreachable_elasticsearch_is_waited_out_without_spending_an_attempt() -> None:
    store = FakeStore()
    store.down.append(EsConnectionError("connection refused"))
    w, session, counting, _ = worker(store)
    deliver(w, session, job(0), job(1))
    settle(w, session)
    assert store.calls == 2 and session.channel.published == []  # no retry was spent
    assert counting.done == {"run1": {0, 1}} and session.channel.acks == [(2, True)]


def test_a_redelivered_job_is_written_again_but_counted_once() -> None:
    w, session, counting, store = worker()
    deliver(w, session, job(0), job(1))
    settle(w, session)
    deliver(w, session, job(1))  # the broker hands it out again (a lost ack)
    settle(w, session)
    assert counting.done == {"run1": {0, 1}} and counters(w).processed == 2
    assert sorted(store.docs) == ["run1-0", "run1-1"]


def test_a_batch_from_a_paused_queue_goes_back_unstarted_and_is_never_acked() -> None:
    w, session, counting, store = worker()
    w.stores.pauses.queues.add(
        SETTINGS.queue
    )  # paused after these were delivered, before they start
    deliver(w, session, *(job(seq) for seq in range(3)))
    settle(w, session)
    assert store.docs == {} and counting.done == {} and counters(w).processed == 0
    assert session.channel.acks == [] and session.channel.nacks == [(1, True), (2, True), (3, True)]
    # The consumer is cancelled before the first nack, so the broker cannot hand them back.
    log = session.channel.log
    assert SETTINGS.queue in w.paused and log.index("nack 1") > max(
        i for i, line in enumerate(log) if line.startswith(("cancel", "consume"))
    )
    # Deliveries after them are acked as usual once the queue is resumed.
    w.stores.pauses.queues.clear()  # type: ignore[attr-defined]
    deliver(w, session, job(9))
    settle(w, session)
    assert session.channel.acks == [(4, True)] and "run1-9" in store.docs


def test_only_a_kind_run_one_by_one_has_its_handler_s_end_as_its_service_end() -> None:
    from lab.runtime.batch import Delivery, execute, prepare
    from lab.runtime.messages import Job
    from lab.runtime.retry import Budget

    budget = Budget.of_run_job(3)
    for kind, one_by_one in (("index", False), ("sleep", True)):
        job = Job("r-1-0", "r-1", 0, kind, payload={"seconds": 0.01} if kind == "sleep" else {})
        outcome, handler = prepare(Delivery(1, job.to_json()))
        assert handler is not None and handler.batchable is not one_by_one
        execute(outcome, handler, "w", budget)
        assert (outcome.ended_ms >= outcome.started_ms + 9) if one_by_one else not outcome.ended_ms


@pytest.fixture
def arithmetic_kinds() -> Iterator[None]:
    """Two kinds of this test's own whose arithmetic fails on every attempt: one written in
    batches, one run one by one; removed after."""
    from lab.runtime import handlers
    from lab.runtime.handlers import Handler

    def compute(job: Job) -> dict[str, object]:
        operation = job.payload["op"]
        if operation == "exp":
            return {"v": math.exp(1000)}  # OverflowError
        if operation == "divide":
            return {"v": 1 / (job.seq or 0)}  # ZeroDivisionError
        raise FloatingPointError("underflow")  # numpy's errstate(all="raise") raises these

    handlers.register(Handler("arith", compute))
    handlers.register(Handler("arithalone", compute, batchable=False))
    yield
    handlers.forget("arith")
    handlers.forget("arithalone")


@pytest.mark.parametrize("kind", ["arith", "arithalone"])
def test_an_arithmetic_error_is_dead_lettered_once_as_permanent(
    arithmetic_kinds: None, kind: str
) -> None:
    # The same input overflows or divides by zero on every attempt: the first attempt of each
    # job is its last, with the budget of three left unspent.
    w, session, state, store = worker()
    bodies = [
        Job(**{**run_job("run1", seq, kind).__dict__, "payload": {"op": op}}).to_json()
        for seq, op in ((0, "divide"), (1, "exp"), (2, "float"))
    ]
    deliver(w, session, *bodies)
    settle(w, session)
    dead = session.channel.to("unit.jobs.dead")
    assert [d.headers["x-lab-reason"] for d in dead] == ["permanent"] * 3
    assert [d.headers["x-lab-attempt"] for d in dead] == [1, 1, 1]
    assert sorted(d.headers["x-lab-error"].split(":")[0] for d in dead) == [
        "FloatingPointError", "OverflowError", "ZeroDivisionError"
    ]  # fmt: skip
    assert not [p for p in session.channel.published if ".retry." in p.queue]
    assert state.failed == {"run1": {0, 1, 2}} and store.docs == {}
    acks = session.channel.acks
    acked = {t for tag, many in acks for t in (range(1, tag + 1) if many else [tag])}
    assert counters(w).failed == 3 and acked == {1, 2, 3}
