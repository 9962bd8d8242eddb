"""A worker on lab.testing's stand-ins and a stub connection, for the unit tests of its
decisions, its middleware and the kinds' policies: build one, hand it deliveries, run it until
idle, read what it did."""

from __future__ import annotations

from collections.abc import Iterable

from lab.config import Settings
from lab.runtime.batch import Delivery
from lab.runtime.messages import Job, run_job
from lab.runtime.middleware import Counters, Middleware, Stack, default_stack
from lab.runtime.session import Session
from lab.runtime.worker import Worker
from lab.testing import (
    FakeCounting,
    FakeRecords,
    FakeStore,
    FakeWorkerStores,
    StubChannel,
    StubConnection,
)

SETTINGS = Settings(queue="unit.jobs", max_attempts=3, retry_ladder_ms="200,400,800", batch=10)


def worker(
    store: FakeStore | None = None, middleware: Iterable[Middleware] = ()
) -> tuple[Worker, Session, FakeCounting, FakeStore]:
    """A worker on stand-ins and a stub connection; `middleware` runs after the default stack."""
    stores, store = FakeWorkerStores(), store or FakeStore()
    stack = Stack([*default_stack().middleware, *middleware])
    w = Worker(SETTINGS, "w1", stores=stores, store=store, records=FakeRecords(), middleware=stack)
    session = w.session = Session(StubConnection(), StubChannel())
    return w, session, stores.counting, store


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
