"""The worker: receive a batch, run its handlers, write the documents, count, then ack.

    main thread (owns the AMQP connection; the only one that acks or publishes)
        collect deliveries → a batch of up to `batch`, or what came within `linger_ms`
        hand the batch to a processing thread            (up to PIPELINE batches in flight)
        on its result: publish retries / dead letters (confirmed), then ack
    processing thread (lab/batch.py decides, this file does the I/O)
        parse + run handlers → one Elasticsearch _bulk (_id = jobId) → one Redis script that
        counts exactly once → result handed back with add_callback_threadsafe
    job threads (`concurrency` of them; fed by <queue>.long with prefetch = concurrency)
        one job at a time: kinds that declare BATCHABLE = False, and single jobs, whose record
        (lab/jobs.py) says whether to run, takes their progress steps and their outcome

A crash at any point before the ack means redelivery, never loss; redelivery is harmless because
documents are upserts by jobId and the count is a bitmap. While one batch is written the next is
already being collected, so a single worker keeps Elasticsearch busy. An unreachable
Elasticsearch or Redis is waited out with the batch in hand (not acked, no attempt spent).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import redis

from lab import broker
from lab.batch import (
    Delivery,
    Outcome,
    apply_bulk,
    counts_by_run,
    execute,
    prepare,
    run_handlers,
)
from lab.config import Settings
from lab.jobs import NO_PROGRESS, JobContext, JobRecords
from lab.state import State
from lab.store import Store, Unavailable

log = logging.getLogger("lab.worker")

PIPELINE = 2  # batches in flight: one being written while the next is collected


class Stopping(Exception):
    """The worker was asked to stop while a service was unreachable."""


class Worker:
    def __init__(self, settings: Settings, worker_id: str | None = None):
        self.settings = settings
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.topology = broker.Topology(settings.queue)
        self.state = State(settings)
        self.records = JobRecords(self.state)
        self.store = Store(settings)
        self.stopping = threading.Event()
        self.buffer: list[Delivery] = []
        self.acks = broker.AckTracker()
        self.in_flight = 0
        self.processed = 0
        self.failed = 0
        self.started_ms = int(time.time() * 1000)
        self._retry_queues: set[str] = set()
        self._pool = ThreadPoolExecutor(PIPELINE, thread_name_prefix="batch")
        # Kinds that declare BATCHABLE = False run one by one here; a sixth waits for a slot.
        self._jobs = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="job")
        self.running_jobs = 0
        self.active_jobs: set[str] = set()  # single jobs running now, for the heartbeat

    # --- lifecycle ----------------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self.stopping.set()

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        try:
            self._patiently(self.store.ensure_index, "Elasticsearch")
        except Stopping:
            return
        self.connection = broker.connect(self.settings.amqp_url, f"lab-worker-{self.id}")
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.topology.declare(self.channel)
        # Prefetch applies per consumer: many batch jobs in hand, but only as many long jobs as
        # there are slots, so a busy worker leaves the rest to workers with free slots.
        self.channel.basic_qos(prefetch_count=self.settings.prefetch)
        consumer_tags = [self.channel.basic_consume(self.settings.queue, self._on_message)]
        self.channel.basic_qos(prefetch_count=self.settings.concurrency)
        consumer_tags.append(self.channel.basic_consume(self.topology.long, self._on_long_message))
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        log.info(
            "worker %s consuming %s (prefetch %d, batch %d) and %s (concurrency %d)",
            self.id,
            self.settings.queue,
            self.settings.prefetch,
            self.settings.batch,
            self.topology.long,
            self.settings.concurrency,
        )
        try:
            self._loop()
            # Graceful stop: take no more deliveries, finish what is already in hand.
            for tag in consumer_tags:
                self.channel.basic_cancel(tag)
            self.connection.process_data_events(time_limit=0)
            self._drain()
            self.connection.close()
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._jobs.shutdown(wait=False, cancel_futures=True)
            self.state.forget_worker(self.id)
        log.info("worker %s stopped after %d processed", self.id, self.processed)

    def _loop(self) -> None:
        deadline: float | None = None
        while not self.stopping.is_set():
            if self.buffer and deadline is None:
                deadline = time.monotonic() + self.settings.linger_ms / 1000
            full = len(self.buffer) >= self.settings.batch
            due = deadline is not None and time.monotonic() >= deadline
            if self.buffer and (full or due) and self.in_flight < PIPELINE:
                self._dispatch()
                deadline = None
                continue
            wait = 0.2 if deadline is None else max(0.0, deadline - time.monotonic())
            self.connection.process_data_events(
                time_limit=wait if self.in_flight < PIPELINE else 0.2
            )

    def _drain(self) -> None:
        while self.buffer or self.in_flight or self.running_jobs:
            if self.buffer and self.in_flight < PIPELINE:
                self._dispatch()
            self.connection.process_data_events(time_limit=0.1)

    def _on_message(self, _ch: Any, method: Any, _props: Any, body: bytes) -> None:
        self.buffer.append(Delivery(method.delivery_tag, body, method.redelivered))
        self.acks.delivered(method.delivery_tag)

    def _on_long_message(self, _ch: Any, method: Any, _props: Any, body: bytes) -> None:
        self.acks.delivered(method.delivery_tag)
        self._start_job(Delivery(method.delivery_tag, body, method.redelivered))

    # --- one batch: processing thread ---------------------------------------------------------
    def _dispatch(self) -> None:
        size = self.settings.batch
        batch, self.buffer = self.buffer[:size], self.buffer[size:]
        self.in_flight += 1
        self._submit(self._pool, batch, batch=True)

    def _submit(self, pool: ThreadPoolExecutor, deliveries: list[Delivery], batch: bool) -> None:
        work = self._process if batch else self._process_one
        future = pool.submit(work, deliveries)
        future.add_done_callback(
            lambda f: self.connection.add_callback_threadsafe(
                functools.partial(self._done, f, batch)
            )
        )

    def _process(self, batch: list[Delivery]) -> tuple[list[Outcome], tuple[int, int]] | None:
        """Handlers, the bulk write and the count; None when stopping during an outage.

        Deliveries that must run on their own are handed to the job pool (`_process_one`).
        """
        per_message: list[Delivery] = []
        outcomes = run_handlers(batch, self.id, self.settings.max_attempts, per_message)
        for delivery in per_message:
            self.connection.add_callback_threadsafe(functools.partial(self._start_job, delivery))
        try:
            return outcomes, self._write(outcomes, self.settings.max_attempts)
        except Stopping:
            return None

    def _process_one(
        self, deliveries: list[Delivery]
    ) -> tuple[list[Outcome], tuple[int, int]] | None:
        """One job on its own: ask its record whether to run, run it with progress, finish it."""
        (delivery,) = deliveries
        outcome, handler = prepare(delivery)
        max_attempts = self.settings.max_attempts
        job = outcome.job
        try:
            if handler is not None and job is not None:
                ctx = NO_PROGRESS
                if job.runId is None:
                    begin = self._patiently(
                        lambda: self.records.begin(job, self.id, delivery.redelivered), "Redis"
                    )
                    if not begin.run:
                        log.info("skipping job %s: %s", job.jobId, begin.reason)
                        outcome.verdict = "skipped"
                        return [outcome], (0, 0)
                    if begin.tracked:
                        outcome.tracked = True
                        max_attempts = begin.last_attempt
                        ctx = JobContext(functools.partial(self.records.progress, job))
                self.active_jobs.add(job.jobId)
                try:
                    execute(outcome, handler, self.id, max_attempts, ctx)
                finally:
                    self.active_jobs.discard(job.jobId)
            counted = self._write([outcome], max_attempts)
            if outcome.tracked and outcome.verdict != "retry":
                # A retry is recorded after its message is published (see _done).
                self._patiently(lambda: self._finish_record(outcome), "Redis")
        except Stopping:
            return None
        return [outcome], counted

    def _write(self, outcomes: list[Outcome], max_attempts: int) -> tuple[int, int]:
        """The bulk write and the exactly-once count of what it wrote."""
        docs = [o.doc for o in outcomes if o.verdict == "pending" and o.doc is not None]
        result = self._patiently(lambda: self.store.bulk_upsert(docs), "Elasticsearch")
        apply_bulk(outcomes, result.failed, max_attempts)
        return self._patiently(lambda: self.state.record(counts_by_run(outcomes)), "Redis")

    def _finish_record(self, outcome: Outcome) -> None:
        job = outcome.job
        assert job is not None
        if outcome.verdict == "written":
            assert outcome.doc is not None
            self.records.finish(
                job,
                "completed",
                result=outcome.doc["result"],
                message=f"attempt {job.attempt} completed",
            )
        elif outcome.verdict == "cancelled":
            self.records.finish(job, "cancelled", message=f"attempt {job.attempt} cancelled")
        elif outcome.verdict == "dead":
            self.records.finish(
                job,
                "failed",
                error=outcome.error,
                message=f"attempt {job.attempt} failed, no attempts left: {outcome.error}",
            )
        elif outcome.verdict == "retry":
            delay = broker.retry_delay_ms(self.settings.retry_delay_ms, job.attempt)
            self.records.finish(
                job,
                "retry",
                error=outcome.error,
                message=f"attempt {job.attempt} failed: {outcome.error}; "
                f"attempt {job.attempt + 1} in {delay} ms",
            )

    # --- back on the main thread --------------------------------------------------------------
    def _start_job(self, delivery: Delivery) -> None:
        self.running_jobs += 1
        self._submit(self._jobs, [delivery], batch=False)

    def _done(self, future: Future, batch: bool) -> None:
        if batch:
            self.in_flight -= 1
        else:
            self.running_jobs -= 1
        exc = future.exception()
        if exc is not None:
            # A bug, not a job failure: leave the batch unacked so it is redelivered elsewhere.
            log.error("batch failed unexpectedly: %r; stopping", exc)
            self.stopping.set()
            return
        result = future.result()
        if result is None:
            return  # stopping during an outage: unacked deliveries go back to the queue
        outcomes, (new_done, new_failed) = result
        # Runs count exactly once in Redis; single jobs (no runId) count here as they end.
        singles = [o.verdict for o in outcomes if o.job is not None and o.job.runId is None]
        self.processed += new_done + singles.count("written")
        self.failed += new_failed + singles.count("dead")
        for outcome in outcomes:
            if outcome.verdict in ("retry", "dead"):
                self._send_on(outcome)
            if outcome.tracked and outcome.verdict == "retry":
                try:
                    self._finish_record(outcome)
                except redis.RedisError as exc:
                    # Harmless: the next attempt's message still runs (its attempt is newer).
                    log.warning("could not record the retry of %s: %s", outcome.job, exc)
        upto, singles = self.acks.finish(o.delivery.tag for o in outcomes)
        if upto is not None:
            self.channel.basic_ack(delivery_tag=upto, multiple=True)
        for tag in singles:
            self.channel.basic_ack(delivery_tag=tag)

    def _send_on(self, outcome: Outcome) -> None:
        """Publish a failed delivery to its retry queue or the dead-letter queue (confirmed)."""
        job = outcome.job
        if outcome.verdict == "retry" and job is not None:
            delay = broker.retry_delay_ms(self.settings.retry_delay_ms, job.attempt)
            target = self.topology.route(job.kind)
            retry_queue = self.topology.retry(delay, target)
            if retry_queue not in self._retry_queues:
                self.topology.declare_retry(self.channel, delay, target)
                self.state.redis.sadd(self.state.keys.retry_queues, retry_queue)
                self._retry_queues.add(retry_queue)
            log.warning(
                "job %s attempt %d failed, retry in %d ms: %s",
                job.jobId,
                job.attempt,
                delay,
                outcome.error,
            )
            self.channel.basic_publish(
                "",
                retry_queue,
                job.next_attempt().to_json(),
                broker.properties({"x-lab-error": outcome.error}),
            )
            return
        log.error("dead-lettering %s: %s", job.jobId if job else "a message", outcome.error)
        self.channel.basic_publish(
            "",
            self.topology.dead,
            outcome.delivery.body,
            broker.properties({"x-lab-error": outcome.error, "x-lab-worker": self.id}),
        )
        self.state.count_dead_letter()

    # --- waiting out outages ------------------------------------------------------------------
    def _patiently(self, action: Any, what: str) -> Any:
        """Run `action` until the service answers; raises Stopping if asked to stop meanwhile."""
        delay = 0.5
        while True:
            try:
                return action()
            except (*Unavailable, redis.ConnectionError, redis.TimeoutError) as exc:
                if self.stopping.is_set():
                    log.warning("%s unreachable while stopping; leaving the batch unacked", what)
                    raise Stopping from exc
                log.warning("%s unreachable (%s); retrying in %.1fs", what, exc, delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)

    # --- heartbeat ----------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        """Announce this worker; the key's TTL makes a killed worker vanish from /status."""
        host = socket.gethostname()
        while not self.stopping.is_set():
            try:
                self.state.heartbeat(
                    self.id,
                    {
                        "id": self.id,
                        "pid": os.getpid(),
                        "host": host,
                        "processed": self.processed,
                        "failed": self.failed,
                        "inFlight": self.acks.in_work,
                        "running": self.running_jobs,
                        "jobs": ",".join(sorted(self.active_jobs.copy())),
                        "startedMs": self.started_ms,
                    },
                )
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
            self.stopping.wait(self.settings.heartbeat_s)
