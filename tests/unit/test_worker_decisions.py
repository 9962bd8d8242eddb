"""The worker's decisions on a stub channel, with in-memory stand-ins for Elasticsearch and
Redis: what it writes, counts, retries, dead-letters and acks, and in which order. The same
paths against the real services are in tests/test_failures.py, test_poison.py and
test_exactly_once.py."""

from __future__ import annotations

import json

from elastic_transport import ConnectionError as EsConnectionError

from lab.config import Settings
from lab.runtime.batch import Delivery
from lab.runtime.messages import Job, run_job
from lab.runtime.middleware.counters import Counters
from lab.runtime.worker import Session, Worker
from lab.testing import FakeRecords, FakeState, FakeStore, StubChannel, StubConnection

SETTINGS = Settings(queue="unit.jobs", max_attempts=3, retry_ladder_ms="200,400,800", batch=10)


def worker(store: FakeStore | None = None) -> tuple[Worker, Session, FakeState, FakeStore]:
    state, store = FakeState(), store or FakeStore()
    w = Worker(SETTINGS, "w1", state=state, store=store, records=FakeRecords())
    session = w.session = Session(StubConnection(), StubChannel())
    return w, session, state, store


def deliver(
    w: Worker, session: Session, *bodies: bytes, headers: dict | None = None, priority: int = 0
) -> None:
    for body in bodies:
        session.connection.tags += 1  # delivery tags count up per channel, as the broker's do
        delivery = Delivery(session.connection.tags, body, False, headers, SETTINGS.queue, priority)
        w.receive(session, SETTINGS.queue, delivery)


def settle(w: Worker, session: Session) -> None:
    """Run the worker until nothing is in hand: the batch processed, written, acted on."""
    w.drain(session)


def counters(w: Worker) -> Counters:
    return w.middleware.of(Counters)


def job(seq: int, attempt: int = 1, **payload: object) -> bytes:
    j = run_job("run1", seq)
    return Job(**{**j.__dict__, "attempt": attempt, "payload": payload}).to_json()


def test_a_batch_is_written_counted_once_and_acked_with_one_multiple_ack() -> None:
    w, session, state, store = worker()
    deliver(w, session, *(job(seq) for seq in range(5)))
    settle(w, session)
    assert sorted(store.docs) == [f"run1-{seq}" for seq in range(5)] and store.calls == 1
    assert state.done == {"run1": {0, 1, 2, 3, 4}} and counters(w).processed == 5
    assert session.channel.acks == [(5, True)] and session.channel.published == []


def test_a_failed_attempt_goes_to_its_ladder_step_and_is_acked_after_the_publish() -> None:
    w, session, state, store = worker()
    deliver(w, session, job(0), job(1, failAttempts=1), job(2))
    settle(w, session)
    (retry,) = session.channel.to("unit.jobs.retry.200")
    again = json.loads(retry.body)
    assert again["jobId"] == "run1-1" and again["attempt"] == 2
    assert "injected failure" in retry.headers["x-lab-error"]
    assert "run1-1" not in store.docs and state.done == {"run1": {0, 2}}
    assert session.channel.acks == [(3, True)]  # every delivery, the failed one included
    assert session.channel.log == ["publish unit.jobs.retry.200", "ack 3"]  # never lost between


def test_the_second_failure_waits_longer_and_the_last_is_dead_lettered() -> None:
    w, session, state, _ = worker()
    deliver(w, session, job(7, attempt=2, failAttempts=3))
    settle(w, session)
    assert len(session.channel.to("unit.jobs.retry.400")) == 1
    deliver(w, session, job(8, attempt=3, failAttempts=3))
    settle(w, session)
    (dead,) = session.channel.to("unit.jobs.dead")
    assert dead.headers["x-lab-reason"] == "exhausted" and json.loads(dead.body)["attempt"] == 3
    assert (
        state.failed == {"run1": {8}} and state.dead_letters == ["run1"] and counters(w).failed == 1
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
    w, session, state, _ = worker()
    deliver(w, session, job(0), b'{"jobId": "x"', job(1))
    settle(w, session)
    (dead,) = session.channel.to("unit.jobs.dead")
    assert dead.body == b'{"jobId": "x"' and dead.headers["x-lab-reason"] == "malformed"
    assert dead.headers["x-lab-queue"] == "unit.jobs"
    assert state.done == {"run1": {0, 1}} and session.channel.acks == [(3, True)]


def test_a_document_elasticsearch_refuses_fails_alone() -> None:
    w, session, state, store = worker(FakeStore(refuse={"run1-1": "400: mapper_parsing"}))
    deliver(w, session, job(0), job(1), job(2))
    settle(w, session)
    (retry,) = session.channel.to("unit.jobs.retry.200")
    assert json.loads(retry.body)["jobId"] == "run1-1" and "mapper_parsing" in str(retry.headers)
    assert sorted(store.docs) == ["run1-0", "run1-2"] and state.done == {"run1": {0, 2}}


def test_an_unreachable_elasticsearch_is_waited_out_without_spending_an_attempt() -> None:
    store = FakeStore()
    store.down.append(EsConnectionError("connection refused"))
    w, session, state, _ = worker(store)
    deliver(w, session, job(0), job(1))
    settle(w, session)
    assert store.calls == 2 and session.channel.published == []  # no retry was spent
    assert state.done == {"run1": {0, 1}} and session.channel.acks == [(2, True)]


def test_a_redelivered_job_is_written_again_but_counted_once() -> None:
    w, session, state, store = worker()
    deliver(w, session, job(0), job(1))
    settle(w, session)
    deliver(w, session, job(1))  # the broker hands it out again (a lost ack)
    settle(w, session)
    assert state.done == {"run1": {0, 1}} and counters(w).processed == 2
    assert sorted(store.docs) == ["run1-0", "run1-1"]


def test_a_batch_from_a_paused_queue_goes_back_unstarted_and_is_never_acked() -> None:
    w, session, state, store = worker()
    state.paused.add(SETTINGS.queue)  # paused after these were delivered, before they start
    deliver(w, session, *(job(seq) for seq in range(3)))
    settle(w, session)
    assert store.docs == {} and state.done == {} and counters(w).processed == 0
    assert session.channel.acks == [] and session.channel.nacks == [(1, True), (2, True), (3, True)]
    # The consumer is cancelled before the first nack, so the broker cannot hand them back.
    log = session.channel.log
    assert SETTINGS.queue in w.paused and log.index("nack 1") > max(
        i for i, line in enumerate(log) if line.startswith(("cancel", "consume"))
    )
    # Deliveries after them are acked as usual once the queue is resumed.
    state.paused.clear()
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
