"""The worker: receive a batch, run its handlers, write the documents, count, then ack.

    main thread (owns the AMQP connection; the only one that acks or publishes)
        collect deliveries → a batch of up to `batch`, or what came within `linger_ms`
        hand the batch to a processing thread            (up to PIPELINE batches in flight)
        on its result: publish retries / dead letters (confirmed), then ack
    processing thread (lab/runtime/batch.py decides; lab/runtime/retry.py says what a failure
                       becomes)
        parse + run handlers → one Elasticsearch _bulk (_id = jobId) → one Redis script that
        counts exactly once → result handed back with add_callback_threadsafe
    job threads (one per delivery in hand from <queue>.single, single jobs by priority,
                 prefetch = concurrency, and <queue>.long, prefetch = 2 × concurrency)
        one job at a time in each of `concurrency` slots: kinds that declare BATCHABLE = False,
        and single jobs, whose record (lab/runtime/jobs.py) says whether to run, takes their
        progress steps and their outcome; written and counted once out of the slot

A crash at any point before the ack means redelivery, never loss; redelivery is harmless because
documents are upserts by jobId and the count is a bitmap. While one batch is written the next is
already being collected, so a single worker keeps Elasticsearch busy.

Cross-cutting behaviour is middleware (`lab/runtime/middleware/`: pause, leases, counters), one
module each; a job that runs on its own is `lab/runtime/single.py`; what a batch writes and counts
is `lab/runtime/recording.py`; where a failed delivery goes is `lab/runtime/forward.py`; what one
AMQP connection holds is `lab/runtime/session.py`; the heartbeat's loop is
`lab/runtime/heartbeat.py`.

A worker exits only when asked to: whatever a message holds, it ends as a verdict (batch.py);
an unreachable Elasticsearch or Redis is waited out with the batch in hand (patience.py); a lost
RabbitMQ connection ends the `Session`, whose unacked deliveries the broker hands out again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pika
import pika.exceptions

from lab.config import Settings
from lab.runtime import broker, handlers
from lab.runtime.backoff import Backoff
from lab.runtime.batch import Delivery, Outcome, Result, run_handlers
from lab.runtime.forward import Forwarder
from lab.runtime.heartbeat import identity, keep_beating
from lab.runtime.jobs import JobRecords
from lab.runtime.middleware.stack import Stack, default_stack
from lab.runtime.patience import Patience, Stopping, describe_amqp
from lab.runtime.recording import Recorder
from lab.runtime.retry import Budget
from lab.runtime.seams import DocumentStore, SingleJobRecords, WorkerStores
from lab.runtime.session import Session, waiting_since
from lab.runtime.single import SingleRunner
from lab.runtime.store import Store
from lab.runtime.stores import Stores

log = logging.getLogger("lab.runtime.worker")

PIPELINE = 2  # batches in flight: one being written while the next is collected
LONG_PREFETCH = 2  # long jobs in hand per slot (Dramatiq's workers hold 2 per thread too)


class Worker:
    """One worker process. `stores`, `store`, `records` and `middleware` are seams: the unit tests
    hand it in-memory stand-ins and a stub channel, and check its batch, ack, retry and
    dead-letter decisions without any service (tests/unit/test_worker_decisions.py)."""

    def __init__(
        self,
        settings: Settings,
        worker_id: str | None = None,
        stores: WorkerStores | None = None,
        store: DocumentStore | None = None,
        records: SingleJobRecords | None = None,
        middleware: Stack | None = None,
    ):
        self.settings = settings
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.topology = broker.Topology.of(settings)
        self.run_budget = Budget.of_run_job(settings.max_attempts)
        handlers.use_ladder(self.topology.ladder)  # kinds' own retry steps must be its steps
        if stores is None or records is None:
            real = Stores.of(settings)
            stores, records = stores or real, records or JobRecords(settings, real.redis)
        self.stores: WorkerStores = stores
        self.records: SingleJobRecords = records
        self.store: DocumentStore = store or Store(settings)
        self.middleware = middleware or default_stack()
        self.stopping = threading.Event()
        self.patiently = Patience(self.stopping)
        counts = self.middleware.counts_for(self)
        self.recorder = Recorder(self.store, self.stores.counting, self.patiently, counts)
        self.forwarder = Forwarder(self.topology, self.id, self.run_budget, self.stores.counting)
        self.single = SingleRunner(
            self, self.middleware, self.recorder, self.forwarder, self.run_budget,
            settings.concurrency,
        )  # fmt: skip
        self.session: Session | None = None
        self.started_ms = int(time.time() * 1000)
        self._pool = ThreadPoolExecutor(PIPELINE, thread_name_prefix="batch")
        # Kinds that declare BATCHABLE = False run one by one here, a thread per delivery in
        # hand (LONG_PREFETCH + 1 times the slots); a sixth waits for one of five slots.
        self._jobs = ThreadPoolExecutor(
            (LONG_PREFETCH + 1) * settings.concurrency, thread_name_prefix="job"
        )
        # Jobs running now, for the heartbeat: id → the lease token of a single job's attempt
        # (renewed by each heartbeat), or "" for a run's job, which has no record.
        self.active_jobs: dict[str, str] = {}
        self.paused: set[str] = set()  # queues paused for every worker (kept in Redis)
        self.started_consuming = False

    # --- lifecycle ----------------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self.stopping.set()

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        beat = (self.heartbeat, self.settings, self.stopping.is_set, self.stopping.wait)
        threading.Thread(target=keep_beating, args=beat, name="heartbeat", daemon=True).start()
        reconnect = Backoff(initial_s=0.5, cap_s=5.0)
        self.middleware.start(self)
        try:
            self.patiently(self.store.ensure_index, "Elasticsearch")
            while not self.stopping.is_set():
                try:
                    self._serve(reconnect)
                except pika.exceptions.AMQPError as exc:
                    self._lost(reconnect, describe_amqp(exc))
                except Exception as exc:  # a bug must not end the worker: start a new session
                    log.exception("unexpected error in the consumer loop")
                    self._lost(reconnect, repr(exc))
        except Stopping:
            pass
        finally:
            self.middleware.stop(self)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._jobs.shutdown(wait=False, cancel_futures=True)
            try:
                self.stores.heartbeats.forget_worker(self.id)
            except Exception as exc:  # noqa: BLE001 - the key expires by itself anyway
                log.warning("could not unregister: %r", exc)
        log.info("worker %s stopped", self.id)

    def _serve(self, reconnect: Backoff) -> None:
        """One session: connect, declare, consume until asked to stop, then finish in hand."""
        connection = broker.connect(
            self.settings.amqp_url, f"lab-worker-{self.id}", broker.Deadlines.of(self.settings)
        )
        channel = connection.channel()
        channel.confirm_delivery()
        self.topology.declare(channel)
        session = self.session = Session(connection, channel)
        self.paused = self.patiently(self.stores.pauses.paused, "Redis")
        self.apply_pauses(session, self.paused)
        if self.patiently.waiting_for:
            log.info("RabbitMQ is back; consuming again")
        self.patiently.waiting_for = ""
        reconnect.reset()
        log.info("worker %s consuming %s (prefetch %d, batch %d), %s and %s (concurrency %d)",
                 self.id, self.settings.queue, self.settings.prefetch, self.settings.batch,
                 self.topology.single, self.topology.long, self.settings.concurrency)  # fmt: skip
        self._loop(session)
        # Graceful stop: take no more deliveries, finish what is already in hand.
        for tag in list(session.consumers.values()):
            channel.basic_cancel(tag)
        connection.process_data_events(time_limit=0)
        self.drain(session)
        connection.close()

    def _lost(self, reconnect: Backoff, why: str) -> None:
        """The session is gone: forget its deliveries and wait before connecting again."""
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(Exception):  # already closed is the usual case
                session.connection.close()
        if self.stopping.is_set():
            return
        self.patiently.waiting_for = "RabbitMQ"
        delay = reconnect.next()
        log.warning("RabbitMQ unreachable (%s); reconnecting in %.1fs", why, delay)
        self.stopping.wait(delay)

    # --- pauses: which queues this worker consumes ----------------------------------------------
    def apply_pauses(self, session: Session, paused: set[str]) -> None:
        """On the connection's thread: consume each queue that is not paused, and cancel the
        consumer of one that is. Deliveries already in hand and not started go back (see the
        pause middleware); the broker takes back what it had sent but the worker had not taken.

        Prefetch applies per consumer: many batch jobs in hand; a long job waiting for each
        slot, so a slot that frees starts the next job at once rather than after an ack and a
        delivery; and only as many single jobs as there are slots, so that a single job never
        waits on a busy worker while another has a free slot."""
        prefetch_of = {
            self.settings.queue: self.settings.prefetch,
            self.topology.single: self.settings.concurrency,
            self.topology.long: LONG_PREFETCH * self.settings.concurrency,
        }
        for queue, prefetch in prefetch_of.items():
            tag = session.consumers.get(queue)
            if queue in paused and tag is not None:
                session.channel.basic_cancel(tag)
                del session.consumers[queue]
                log.info("queue %s paused: taking nothing new from it", queue)
            elif queue not in paused and tag is None:
                session.channel.basic_qos(prefetch_count=prefetch)
                session.consumers[queue] = session.channel.basic_consume(
                    queue, self._callback(queue)
                )
                if self.started_consuming:
                    log.info("queue %s resumed", queue)
        self.started_consuming = True

    def follow_pauses(self, paused: set[str]) -> None:
        """From any thread: a pause or resume reaches the connection's thread."""
        session = self.session
        if paused != self.paused and session is not None:
            self.paused = paused
            self._hand_back(session, functools.partial(self.apply_pauses, session, paused))

    # --- the consumer loop: the connection's thread ---------------------------------------------
    def _loop(self, session: Session) -> None:
        deadline: float | None = None
        while not self.stopping.is_set():
            if session.buffer and deadline is None:
                deadline = time.monotonic() + self.settings.linger_ms / 1000
            full = len(session.buffer) >= self.settings.batch
            due = deadline is not None and time.monotonic() >= deadline
            if session.buffer and (full or due) and session.in_flight < PIPELINE:
                self.dispatch(session)
                deadline = None
                continue
            wait = 0.2 if deadline is None else max(0.0, deadline - time.monotonic())
            session.connection.process_data_events(
                time_limit=wait if session.in_flight < PIPELINE else 0.2
            )

    def drain(self, session: Session) -> None:
        """Run until idle: dispatch what is buffered and act on what comes back, until nothing
        is in hand (a graceful stop, and tests on a stub connection)."""
        while session.buffer or session.in_flight or session.running_jobs:
            if session.buffer and session.in_flight < PIPELINE:
                self.dispatch(session)
            session.connection.process_data_events(time_limit=0.1)

    def receive(self, session: Session, queue: str, delivery: Delivery) -> None:
        """A delivery from `queue`, as the broker's callback hands it over (tests drive a worker
        on a stub connection through this and `drain`)."""
        session.acks.delivered(delivery.tag)
        if queue == self.settings.queue:
            session.buffer.append(delivery)
        else:
            self._start_job(session, delivery)

    def _callback(self, queue: str) -> Callable[..., None]:
        def on_delivery(_ch: Any, method: Any, props: Any, body: bytes) -> None:
            session = self.session
            assert session is not None
            self.receive(session, queue, Delivery.of(queue, method, props, body))

        return on_delivery

    def dispatch(self, session: Session) -> None:
        """Hand the buffered deliveries (up to a batch) to a processing thread."""
        size = self.settings.batch
        batch, session.buffer = session.buffer[:size], session.buffer[size:]
        session.in_flight += 1
        self._submit(session, self._pool, self._process, batch, batch=True)

    def _start_job(self, session: Session, delivery: Delivery) -> None:
        session.running_jobs += 1
        self._submit(session, self._jobs, lambda _s, d: self.single.run(d), [delivery], False)

    def _submit(
        self,
        session: Session,
        pool: ThreadPoolExecutor,
        work: Callable[[Session, list[Delivery]], Result | None],
        deliveries: list[Delivery],
        batch: bool,
    ) -> None:
        future = pool.submit(work, session, deliveries)
        future.add_done_callback(
            lambda f: self._hand_back(session, functools.partial(self._done, session, f, batch))
        )

    def _hand_back(self, session: Session, callback: Callable[[], None]) -> None:
        """Run `callback` on the thread that owns the session's connection, if it still lives."""
        # When the session is gone, the broker delivers its unacked messages again.
        with contextlib.suppress(pika.exceptions.AMQPError):
            session.connection.add_callback_threadsafe(callback)

    # --- one batch: a processing thread -------------------------------------------------------
    def _process(self, session: Session, batch: list[Delivery]) -> Result | None:
        """Handlers, the bulk write and the count; None when stopping during an outage.
        Deliveries that must run on their own are handed to the job pool (`SingleRunner`)."""
        try:
            if self.middleware.before_process(self, batch) == "requeue":
                return [Outcome(d, None, "requeued") for d in batch], (0, 0)
            per_message: list[Delivery] = []
            outcomes = run_handlers(batch, self.id, self.run_budget, per_message)
            for delivery in per_message:
                self._hand_back(session, functools.partial(self._start_job, session, delivery))
            return outcomes, self.recorder.write_isolating(outcomes, self.run_budget)
        except Stopping:
            return None

    # --- acting on outcomes: the connection's thread ------------------------------------------
    def _done(self, session: Session, future: Future, batch: bool) -> None:
        if batch:
            session.in_flight -= 1
        else:
            session.running_jobs -= 1
        if session is not self.session:
            return  # its connection is gone: these deliveries come back from the broker
        exc = future.exception()
        if exc is not None:
            # Processing catches every error of a message, so this is a bug in the worker: leave
            # the deliveries unacked (they return when this session ends) and carry on.
            log.error("processing failed unexpectedly: %r", exc, exc_info=exc)
            return
        result = future.result()
        if result is None:
            return  # stopping during an outage: unacked deliveries go back to the queue
        outcomes, counted = result
        outcomes = self._requeue(session, outcomes)
        self.middleware.after_process(self, outcomes, counted)
        for outcome in outcomes:
            if outcome.verdict in ("retry", "dead", "deferred"):
                self.forwarder.send(session.channel, outcome)
            if outcome.tracked and outcome.verdict == "retry":
                try:
                    self.single.finish_record(outcome)
                except Exception as exc:  # noqa: BLE001
                    # Harmless: the next attempt's message still runs (its attempt is newer).
                    log.warning("could not record the retry of %s: %r", outcome.job, exc)
            self.middleware.acted_on(self, outcome)
        upto, singles_acked = session.acks.finish(o.delivery.tag for o in outcomes)
        if upto is not None:
            session.channel.basic_ack(delivery_tag=upto, multiple=True)
        for tag in singles_acked:
            session.channel.basic_ack(delivery_tag=tag)

    def _requeue(self, session: Session, outcomes: list[Outcome]) -> list[Outcome]:
        """Deliveries whose queue was found paused go back to it unstarted, after this worker
        stops consuming that queue (so the broker does not hand them straight back); returns
        the other outcomes."""
        back = [o for o in outcomes if o.verdict == "requeued"]
        if not back:
            return outcomes
        self.paused = self.paused | {o.delivery.queue for o in back}
        self.apply_pauses(session, self.paused)
        for outcome in back:
            session.channel.basic_nack(delivery_tag=outcome.delivery.tag, requeue=True)
        session.acks.settle(o.delivery.tag for o in back)
        return [o for o in outcomes if o.verdict != "requeued"]

    # --- heartbeat ----------------------------------------------------------------------------
    def heartbeat(self) -> None:
        """Announce this worker with what it and its middleware report (beats.WORKER names
        every field); the key's TTL makes a killed worker vanish from /status."""
        session = self.session
        self.stores.heartbeats.worker(
            self.id,
            {
                **identity(self.id),
                "inFlight": session.acks.in_work if session else 0,
                "running": self.single.running,
                "waitingSinceMs": waiting_since(session),
                "startedMs": self.started_ms,
                "waitingFor": self.patiently.waiting_for,
                **self.middleware.heartbeat(self),
            },
        )
