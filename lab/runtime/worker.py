"""The worker: receive a batch, run its handlers, write the documents, count, then ack.

    main thread (owns the AMQP connection; the only one that acks or publishes)
        collect deliveries → a batch of up to `batch`, or what came within `linger_ms`
        hand the batch to a processing thread            (up to PIPELINE batches in flight)
        on its result: publish retries / dead letters (confirmed), then ack
    processing thread (lab/runtime/batch.py decides; lab/runtime/retry.py says what a failure
                       becomes)
        parse + run handlers → one Elasticsearch _bulk (_id = jobId) → one Redis script that
        counts exactly once → result handed back with add_callback_threadsafe
    job threads (`concurrency` of them; fed by <queue>.single, single jobs by priority, and
                 <queue>.long, each with prefetch = concurrency)
        one job at a time: kinds that declare BATCHABLE = False, and single jobs, whose record
        (lab/runtime/jobs.py) says whether to run, takes their progress steps and their outcome

A crash at any point before the ack means redelivery, never loss; redelivery is harmless because
documents are upserts by jobId and the count is a bitmap. While one batch is written the next is
already being collected, so a single worker keeps Elasticsearch busy.

A worker exits only when asked to. Whatever a message holds, it ends as a verdict: a body that
is not a job is dead-lettered with the reason; an error while handling one message (its handler,
its document, its Redis script) fails that message alone — a batch that fails as a whole is
written again one job at a time to find it. An unreachable Elasticsearch or Redis is waited out
with the batch in hand (not acked, no attempt spent); a lost RabbitMQ connection ends the
`Session`, whose unacked deliveries the broker hands out again, and the worker reconnects with
jittered backoff. `waitingFor` in the heartbeat (and so in `/status`) says what it waits for.
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
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions

from lab.config import Settings
from lab.runtime import broker, handlers, retry
from lab.runtime import state as state_module
from lab.runtime import store as store_module
from lab.runtime.backoff import Backoff
from lab.runtime.batch import (
    Delivery,
    Outcome,
    apply_bulk,
    budget_of,
    counts_by_run,
    execute,
    prepare,
    run_handlers,
)
from lab.runtime.handlers import UnknownKind, handler_for
from lab.runtime.jobs import Begin, JobRecords
from lab.runtime.progress import NO_PROGRESS, JobContext
from lab.runtime.retry import Budget
from lab.runtime.state import State
from lab.runtime.store import Store

log = logging.getLogger("lab.runtime.worker")

PIPELINE = 2  # batches in flight: one being written while the next is collected
Result = tuple[list[Outcome], tuple[int, int]]


class Stopping(Exception):
    """The worker was asked to stop while a service was unreachable."""


@dataclass
class Session:
    """One AMQP connection: its channel, the deliveries it handed out and their acks.

    Delivery tags mean something only on their own channel, so when the connection is lost the
    session is dropped whole; work still running for it finishes but is never acked (the broker
    delivers those messages again, and redelivery is harmless)."""

    connection: pika.BlockingConnection
    channel: Any
    buffer: list[Delivery] = field(default_factory=list)
    acks: broker.AckTracker = field(default_factory=broker.AckTracker)
    in_flight: int = 0
    running_jobs: int = 0
    consumers: dict[str, str] = field(default_factory=dict)  # queue → consumer tag


class Worker:
    """One worker process. `state`, `store` and `records` are seams: the unit tests hand it
    in-memory stand-ins and a stub channel, and check its batch, ack, retry and dead-letter
    decisions without any service (tests/unit/test_worker_decisions.py)."""

    def __init__(
        self,
        settings: Settings,
        worker_id: str | None = None,
        state: State | None = None,
        store: Store | None = None,
        records: JobRecords | None = None,
    ):
        self.settings = settings
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.topology = broker.Topology.of(settings)
        self.run_budget = Budget.of_run_job(settings.max_attempts)
        handlers.use_ladder(self.topology.ladder)  # kinds' own retry steps must be its steps
        self.state = state or State(settings)
        self.records = records or JobRecords(self.state)
        self.store = store or Store(settings)
        self.stopping = threading.Event()
        self.session: Session | None = None
        self.processed = 0
        self.failed = 0
        self.dead_lettered = 0
        self.waiting_for = ""  # the service this worker is waiting for, shown in /status
        self.started_ms = int(time.time() * 1000)
        self._pool = ThreadPoolExecutor(PIPELINE, thread_name_prefix="batch")
        # Kinds that declare BATCHABLE = False run one by one here; a sixth waits for a slot.
        self._jobs = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="job")
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
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        reconnect = Backoff(initial_s=0.5, cap_s=5.0)
        try:
            self._patiently(self.store.ensure_index, "Elasticsearch")
            while not self.stopping.is_set():
                try:
                    self._serve(reconnect)
                except pika.exceptions.AMQPError as exc:
                    self._lost(reconnect, _describe_amqp(exc))
                except Exception as exc:  # a bug must not end the worker: start a new session
                    log.exception("unexpected error in the consumer loop")
                    self._lost(reconnect, repr(exc))
        except Stopping:
            pass
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._jobs.shutdown(wait=False, cancel_futures=True)
            try:
                self.state.forget_worker(self.id)
            except Exception as exc:  # noqa: BLE001 - the key expires by itself anyway
                log.warning("could not unregister: %r", exc)
        log.info("worker %s stopped after %d processed", self.id, self.processed)

    def _serve(self, reconnect: Backoff) -> None:
        """One session: connect, declare, consume until asked to stop, then finish in hand."""
        connection = broker.connect(
            self.settings.amqp_url, f"lab-worker-{self.id}", broker.Deadlines.of(self.settings)
        )
        channel = connection.channel()
        channel.confirm_delivery()
        self.topology.declare(channel)
        session = self.session = Session(connection, channel)
        self.paused = self._patiently(self.state.paused_queues, "Redis")
        self._apply_pauses(session, self.paused)
        if self.waiting_for:
            log.info("RabbitMQ is back; consuming again")
        self.waiting_for = ""
        reconnect.reset()
        log.info(
            "worker %s consuming %s (prefetch %d, batch %d), %s and %s (concurrency %d)",
            self.id,
            self.settings.queue,
            self.settings.prefetch,
            self.settings.batch,
            self.topology.single,
            self.topology.long,
            self.settings.concurrency,
        )
        self._loop(session)
        # Graceful stop: take no more deliveries, finish what is already in hand.
        for tag in list(session.consumers.values()):
            channel.basic_cancel(tag)
        connection.process_data_events(time_limit=0)
        self._drain(session)
        connection.close()

    def _apply_pauses(self, session: Session, paused: set[str]) -> None:
        """On the connection's thread: consume each queue that is not paused, and cancel the
        consumer of one that is. Deliveries already in hand finish and are acked; the broker
        takes back what it had sent but the worker had not taken yet.

        Prefetch applies per consumer: many batch jobs in hand, but only as many long jobs as
        there are slots, so a busy worker leaves the rest to workers with free slots."""
        consumers = {
            self.settings.queue: (self.settings.prefetch, self._on_message(self.settings.queue)),
            self.topology.single: (
                self.settings.concurrency,
                self._on_long(self.topology.single),
            ),
            self.topology.long: (self.settings.concurrency, self._on_long(self.topology.long)),
        }
        for queue, (prefetch, callback) in consumers.items():
            tag = session.consumers.get(queue)
            if queue in paused and tag is not None:
                session.channel.basic_cancel(tag)
                del session.consumers[queue]
                log.info("queue %s paused: taking nothing new from it", queue)
            elif queue not in paused and tag is None:
                session.channel.basic_qos(prefetch_count=prefetch)
                session.consumers[queue] = session.channel.basic_consume(queue, callback)
                if self.started_consuming:
                    log.info("queue %s resumed", queue)
        self.started_consuming = True

    def _watch_pauses(self) -> None:
        """From the heartbeat thread: a pause or resume reaches the connection's thread."""
        paused = self.state.paused_queues()
        session = self.session
        if paused != self.paused and session is not None:
            self.paused = paused
            self._hand_back(session, functools.partial(self._apply_pauses, session, paused))

    def _lost(self, reconnect: Backoff, why: str) -> None:
        """The session is gone: forget its deliveries and wait before connecting again."""
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(Exception):  # already closed is the usual case
                session.connection.close()
        if self.stopping.is_set():
            return
        self.waiting_for = "RabbitMQ"
        delay = reconnect.next()
        log.warning("RabbitMQ unreachable (%s); reconnecting in %.1fs", why, delay)
        self.stopping.wait(delay)

    def _loop(self, session: Session) -> None:
        deadline: float | None = None
        while not self.stopping.is_set():
            if session.buffer and deadline is None:
                deadline = time.monotonic() + self.settings.linger_ms / 1000
            full = len(session.buffer) >= self.settings.batch
            due = deadline is not None and time.monotonic() >= deadline
            if session.buffer and (full or due) and session.in_flight < PIPELINE:
                self._dispatch(session)
                deadline = None
                continue
            wait = 0.2 if deadline is None else max(0.0, deadline - time.monotonic())
            session.connection.process_data_events(
                time_limit=wait if session.in_flight < PIPELINE else 0.2
            )

    def _drain(self, session: Session) -> None:
        while session.buffer or session.in_flight or session.running_jobs:
            if session.buffer and session.in_flight < PIPELINE:
                self._dispatch(session)
            session.connection.process_data_events(time_limit=0.1)

    def _on_message(self, queue: str) -> Callable[..., None]:
        def collect(_ch: Any, method: Any, props: Any, body: bytes) -> None:
            session = self.session
            assert session is not None
            session.buffer.append(_delivery(queue, method, props, body))
            session.acks.delivered(method.delivery_tag)

        return collect

    def _on_long(self, queue: str) -> Callable[..., None]:
        def start(_ch: Any, method: Any, props: Any, body: bytes) -> None:
            session = self.session
            assert session is not None
            session.acks.delivered(method.delivery_tag)
            self._start_job(session, _delivery(queue, method, props, body))

        return start

    # --- one batch: processing thread ---------------------------------------------------------
    def _dispatch(self, session: Session) -> None:
        size = self.settings.batch
        batch, session.buffer = session.buffer[:size], session.buffer[size:]
        session.in_flight += 1
        self._submit(session, self._pool, self._process, batch, batch=True)

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

    def _process(self, session: Session, batch: list[Delivery]) -> Result | None:
        """Handlers, the bulk write and the count; None when stopping during an outage.

        Deliveries that must run on their own are handed to the job pool (`_process_one`)."""
        try:
            if self._patiently(lambda: self.state.queue_paused(batch[0].queue), "Redis"):
                return [Outcome(d, None, "requeued") for d in batch], (0, 0)
        except Stopping:
            return None
        per_message: list[Delivery] = []
        outcomes = run_handlers(batch, self.id, self.run_budget, per_message)
        for delivery in per_message:
            self._hand_back(session, functools.partial(self._start_job, session, delivery))
        try:
            return outcomes, self._write_isolating(outcomes, self.run_budget)
        except Stopping:
            return None

    def _process_one(self, session: Session, deliveries: list[Delivery]) -> Result | None:
        """One job on its own: ask its record whether to run, run it with progress, finish it."""
        (delivery,) = deliveries
        outcome, handler = prepare(delivery)
        budget = budget_of(handler, self.run_budget) if handler is not None else self.run_budget
        job = outcome.job
        try:
            if handler is not None and job is not None:
                ctx = NO_PROGRESS
                if job.runId is None:
                    begin = self._patiently(lambda: self._begin(outcome), "Redis")
                    if not begin.run:
                        return [self._not_now(outcome, begin)], (0, 0)
                    if begin.tracked:
                        outcome.tracked = True
                        budget = begin.budget or budget
                        report = functools.partial(self.records.progress, job, outcome.lease)
                        ctx = JobContext(report)
                elif self._patiently(lambda: self.state.queue_paused(delivery.queue), "Redis"):
                    outcome.verdict = "requeued"
                    return [outcome], (0, 0)
                self.active_jobs[job.jobId] = outcome.lease
                try:
                    execute(outcome, handler, self.id, budget, ctx)
                finally:
                    self.active_jobs.pop(job.jobId, None)
                if outcome.tracked and not self._still_owned(outcome):
                    return [outcome], (0, 0)
            counted = self._write_isolating([outcome], budget)
            if outcome.tracked and outcome.verdict != "retry":
                # A retry is recorded after its message is published (see _done).
                self._patiently(lambda: self._finish_record(outcome), "Redis")
        except Stopping:
            return None
        except Exception as exc:  # its record's script failed: this job fails, the worker goes on
            log.exception("job %s failed inside the worker", job.jobId if job else "?")
            if outcome.verdict not in ("dead", "skipped"):
                outcome.fail(f"internal error: {exc!r}", budget)
            return [outcome], (0, 0)
        return [outcome], counted

    def _begin(self, outcome: Outcome) -> Begin:
        """Ask the job's record whether this delivery runs; if it does, the attempt is owned by
        a fresh lease token, kept on the outcome for its progress steps and its finish."""
        job = outcome.job
        assert job is not None
        lease = f"{self.id}/{uuid.uuid4().hex[:12]}"
        delivery = outcome.delivery
        begin = self.records.begin(job, self.id, delivery.redelivered, lease, delivery.queue)
        if begin.run and begin.tracked:
            outcome.lease = lease
        return begin

    def _not_now(self, outcome: Outcome, begin: Begin) -> Outcome:
        """A single job that does not run on this delivery, and what becomes of the message."""
        job = outcome.job
        assert job is not None
        if begin.paused:
            outcome.verdict = "requeued"
        elif begin.busy_ms:
            outcome.verdict, outcome.defer_ms = "deferred", begin.busy_ms
            log.info("job %s attempt %d is %s; looking again later", job.jobId, job.attempt,
                     begin.reason)  # fmt: skip
        else:
            outcome.verdict = "skipped"
            log.info("skipping job %s: %s", job.jobId, begin.reason)
        return outcome

    def _still_owned(self, outcome: Outcome) -> bool:
        """After the handler: is the attempt still this worker's? If another took it over (this
        one was frozen or cut off past its lease), the attempt writes nothing at all."""
        job = outcome.job
        assert job is not None
        if self._patiently(lambda: self.records.renew({job.jobId: outcome.lease}), "Redis"):
            return True
        log.warning("job %s attempt %d was taken over by another worker; writing nothing",
                    job.jobId, job.attempt)  # fmt: skip
        outcome.verdict = "skipped"
        return False

    def _write(self, outcomes: list[Outcome], budget: Budget) -> tuple[int, int]:
        """The bulk write and the exactly-once count of what it wrote."""
        docs = [o.doc for o in outcomes if o.verdict == "pending" and o.doc is not None]
        result = self._patiently(lambda: self.store.bulk_upsert(docs), "Elasticsearch")
        apply_bulk(outcomes, result.failed, budget)
        return self._patiently(lambda: self.state.record(counts_by_run(outcomes)), "Redis")

    def _write_isolating(self, outcomes: list[Outcome], budget: Budget) -> tuple[int, int]:
        """`_write`, and when the batch fails as a whole (a document Elasticsearch cannot take
        in any form, a script error), each job again on its own: only the one at fault fails."""
        try:
            return self._write(outcomes, budget)
        except Stopping:
            raise
        except Exception as exc:
            if len(outcomes) > 1:
                log.warning(
                    "a batch of %d failed (%r); writing its jobs one by one", len(outcomes), exc
                )
        done = failed = 0
        for outcome in outcomes:
            try:
                new_done, new_failed = self._write([outcome], budget)
            except Stopping:
                raise
            except Exception as exc:
                log.warning("job %s cannot be written: %r", outcome.job, exc)
                if outcome.verdict in ("pending", "written") and outcome.job is not None:
                    outcome.fail(f"internal error: {exc!r}", budget)
                new_done, new_failed = self._count_dead_only(outcome)
            done += new_done
            failed += new_failed
        return done, failed

    def _count_dead_only(self, outcome: Outcome) -> tuple[int, int]:
        """A run's job that died because it could not be written still counts as failed."""
        if outcome.verdict != "dead":
            return 0, 0
        try:
            return self._patiently(lambda: self.state.record(counts_by_run([outcome])), "Redis")
        except Stopping:
            raise
        except Exception as exc:  # noqa: BLE001 - the dead letter itself still goes out
            log.warning("could not count %s as failed: %r", outcome.job, exc)
            return 0, 0

    def _finish_record(self, outcome: Outcome) -> None:
        """End the attempt in its record; the script writes nothing if the lease is not ours."""
        job = outcome.job
        assert job is not None
        end = functools.partial(self.records.finish, job, lease=outcome.lease)
        if outcome.verdict == "written":
            assert outcome.doc is not None
            result = outcome.doc["result"]
            end("completed", result=result, message=f"attempt {job.attempt} completed")
        elif outcome.verdict == "cancelled":
            end("cancelled", message=f"attempt {job.attempt} cancelled")
        elif outcome.verdict == "dead":
            message = f"attempt {job.attempt} failed, no attempts left: {outcome.error}"
            end("failed", error=outcome.error, message=message)
        elif outcome.verdict == "retry":
            delay = self._retry_delay(outcome)
            message = (f"attempt {job.attempt} failed: {outcome.error}; "
                       f"attempt {job.attempt + 1} in {delay} ms")  # fmt: skip
            end("retry", error=outcome.error, message=message)

    # --- back on the main thread --------------------------------------------------------------
    def _start_job(self, session: Session, delivery: Delivery) -> None:
        session.running_jobs += 1
        self._submit(session, self._jobs, self._process_one, [delivery], batch=False)

    def _done(self, session: Session, future: Future, batch: bool) -> None:
        if batch:
            session.in_flight -= 1
        else:
            session.running_jobs -= 1
        if session is not self.session:
            return  # its connection is gone: these deliveries come back from the broker
        exc = future.exception()
        if exc is not None:
            # _process catches every error of a message, so this is a bug in the worker: leave
            # the deliveries unacked (they return when this session ends) and carry on.
            log.error("processing failed unexpectedly: %r", exc, exc_info=exc)
            return
        result = future.result()
        if result is None:
            return  # stopping during an outage: unacked deliveries go back to the queue
        outcomes, (new_done, new_failed) = result
        # Runs count exactly once in Redis; single jobs (no runId) count here as they end.
        singles = [o.verdict for o in outcomes if o.job is not None and o.job.runId is None]
        self.processed += new_done + singles.count("written")
        self.failed += new_failed + singles.count("dead")
        outcomes = self._requeue_paused(session, outcomes)
        for outcome in outcomes:
            if outcome.verdict in ("retry", "dead", "deferred"):
                self._send_on(session, outcome)
            if outcome.tracked and outcome.verdict == "retry":
                try:
                    self._finish_record(outcome)
                except Exception as exc:  # noqa: BLE001
                    # Harmless: the next attempt's message still runs (its attempt is newer).
                    log.warning("could not record the retry of %s: %r", outcome.job, exc)
        upto, singles_acked = session.acks.finish(o.delivery.tag for o in outcomes)
        if upto is not None:
            session.channel.basic_ack(delivery_tag=upto, multiple=True)
        for tag in singles_acked:
            session.channel.basic_ack(delivery_tag=tag)

    def _requeue_paused(self, session: Session, outcomes: list[Outcome]) -> list[Outcome]:
        """Deliveries whose queue was found paused go back to it unstarted, after this worker
        stops consuming that queue (so the broker does not hand them straight back); returns
        the other outcomes."""
        back = [o for o in outcomes if o.verdict == "requeued"]
        if not back:
            return outcomes
        queues = {o.delivery.queue for o in back}
        self.paused = self.paused | queues
        self._apply_pauses(session, self.paused)
        for outcome in back:
            session.channel.basic_nack(delivery_tag=outcome.delivery.tag, requeue=True)
        session.acks.settle(o.delivery.tag for o in back)
        return [o for o in outcomes if o.verdict != "requeued"]

    def _retry_delay(self, outcome: Outcome) -> int:
        """The kind's own ladder step for this failure (its `RETRY_DELAYS_MS`, checked against
        the lab's ladder when it loaded), else the lab's."""
        assert outcome.job is not None
        budget = outcome.budget or self.run_budget
        try:
            ladder = handler_for(outcome.job.kind).ladder(self.topology.ladder)
        except UnknownKind:
            ladder = self.topology.ladder
        return budget.delay_ms(ladder, outcome.job.attempt)

    def _send_on(self, session: Session, outcome: Outcome) -> None:
        """Publish a failed delivery to its ladder step's queue or to the dead letters."""
        job = outcome.job
        if outcome.verdict == "deferred" and job is not None:
            # The same attempt again, once its owner's lease could have lapsed: by then it has
            # finished (this copy is skipped) or its worker is gone (this copy takes over).
            delay = self.topology.step_at_least(outcome.defer_ms)
            queue = self.topology.retry(delay, self.topology.route(job.kind, True))
            session.channel.basic_publish(
                "",
                queue,
                outcome.delivery.body,
                broker.properties(outcome.delivery.headers, outcome.delivery.priority),
            )
            return
        if outcome.verdict == "retry" and job is not None:
            delay = self._retry_delay(outcome)
            queue = self.topology.retry(delay, self.topology.route(job.kind, job.runId is None))
            log.warning(
                "job %s attempt %d failed, retry in %d ms: %s",
                job.jobId,
                job.attempt,
                delay,
                outcome.error,
            )
            session.channel.basic_publish(
                "",
                queue,
                job.next_attempt().to_json(),
                broker.properties(
                    retry.retry_headers(outcome.error, outcome.delivery.headers),
                    outcome.delivery.priority,
                ),
            )
            return
        delivery = outcome.delivery
        log.error("dead-lettering %s: %s", job.jobId if job else "a message", outcome.error)
        headers = retry.dead_letter_headers(
            outcome.reason,
            outcome.error,
            delivery.queue,
            self.id,
            job.attempt if job else None,
            delivery.headers,
        )
        session.channel.basic_publish(
            "", self.topology.dead, delivery.body, broker.properties(headers, delivery.priority)
        )
        self.dead_lettered += 1
        try:
            self.state.count_dead_letter(job.runId if job is not None else None)
        except Exception as exc:  # noqa: BLE001 - the letter is safe in its queue either way
            log.warning("could not count a dead letter: %r", exc)

    # --- waiting out outages ------------------------------------------------------------------
    def _patiently(self, action: Callable[[], Any], what: str) -> Any:
        """Run `action` until the service answers; raises Stopping if asked to stop meanwhile."""
        wait = Backoff(initial_s=0.5, cap_s=5.0)
        while True:
            try:
                result = action()
            except Exception as exc:
                if not (state_module.unavailable(exc) or store_module.unavailable(exc)):
                    raise
                if self.stopping.is_set():
                    log.warning("%s unreachable while stopping; leaving the batch unacked", what)
                    raise Stopping from exc
                self.waiting_for = what
                delay = wait.next()
                log.warning("%s unreachable (%s); retrying in %.1fs", what, brief(exc), delay)
                self.stopping.wait(delay)
                continue
            if wait.failures:
                log.info("%s is back", what)
                self.waiting_for = ""
            return result

    # --- heartbeat ----------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        """Announce this worker; the key's TTL makes a killed worker vanish from /status."""
        host = socket.gethostname()
        while not self.stopping.is_set():
            session = self.session
            try:
                self.state.heartbeat(
                    self.id,
                    {
                        "id": self.id,
                        "pid": os.getpid(),
                        "host": host,
                        "processed": self.processed,
                        "failed": self.failed,
                        "deadLettered": self.dead_lettered,
                        "inFlight": session.acks.in_work if session else 0,
                        "running": session.running_jobs if session else 0,
                        "jobs": ",".join(sorted(self.active_jobs.copy())),
                        "startedMs": self.started_ms,
                        "waitingFor": self.waiting_for,
                        "paused": ",".join(sorted(self.paused & set(self.topology.consumed))),
                    },
                )
                self.records.renew({i: t for i, t in self.active_jobs.copy().items() if t})
                self._watch_pauses()
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat is only a stale row
                log.warning("heartbeat failed: %r", exc)
            self.stopping.wait(self.settings.heartbeat_s)


def brief(exc: BaseException) -> str:
    """An exception in one short line (a client's connection errors nest several deep)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 160 else text[:159] + "…"


def _delivery(queue: str, method: Any, props: Any, body: bytes) -> Delivery:
    headers = props.headers if props is not None and isinstance(props.headers, dict) else None
    priority = getattr(props, "priority", None)
    priority = priority if isinstance(priority, int) and 0 <= priority <= 255 else None
    return Delivery(method.delivery_tag, body, method.redelivered, headers, queue, priority)


def _describe_amqp(exc: BaseException) -> str:
    """A lost connection's reason, with what to do when it is a topology mismatch."""
    text = repr(exc)
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and exc.reply_code == 406:
        text += (
            " — a queue exists with other arguments (declared by an older lab or another "
            "LAB_RETRY_LADDER_MS / LAB_DEAD_LETTER_MAX); `lab reset` removes this lab's queues"
        )
    return text
