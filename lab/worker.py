"""The worker: receive a batch, run its handlers, write the documents, count, then ack.

    while not stopping:
        batch = collect()            # up to `batch` deliveries, or what came within `linger_ms`
        outcomes = run_handlers()    # parse + handler per delivery (lab/batch.py)
        write documents              # one Elasticsearch _bulk request, _id = jobId
        retry / dead-letter failures # confirmed publishes to the retry or dead-letter queue
        record                       # one Redis script: exactly-once counts by bitmap
        ack(multiple=True)           # only now: a crash before this means redelivery, not loss

This thread owns the pika connection and is the only one that acks. An unreachable
Elasticsearch or Redis is waited out with the batch in hand (not acked, not retried), so an
outage spends no job's attempts and loses nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from typing import Any

import pika
import redis

from lab import broker
from lab.batch import Delivery, Outcome, apply_bulk, counts_by_run, run_handlers
from lab.config import Settings
from lab.state import State
from lab.store import Store, Unavailable

log = logging.getLogger("lab.worker")


class Worker:
    def __init__(self, settings: Settings, worker_id: str | None = None):
        self.settings = settings
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.topology = broker.Topology(settings.queue)
        self.state = State(settings)
        self.store = Store(settings)
        self.stopping = threading.Event()
        self.buffer: list[Delivery] = []
        self.processed = 0
        self.failed = 0
        self.started_ms = int(time.time() * 1000)
        self._retry_queues: set[int] = set()

    # --- lifecycle ----------------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self.stopping.set()

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self._wait_for(self.store.ensure_index, "Elasticsearch")
        connection = broker.connect(self.settings.amqp_url, f"lab-worker-{self.id}")
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_qos(prefetch_count=self.settings.prefetch)
        self.topology.declare(channel)
        consumer_tag = channel.basic_consume(self.settings.queue, self._on_message)
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        log.info(
            "worker %s consuming %s (prefetch %d, batch %d)",
            self.id,
            self.settings.queue,
            self.settings.prefetch,
            self.settings.batch,
        )
        try:
            while not self.stopping.is_set():
                batch = self._collect(connection)
                if batch:
                    self._handle(connection, channel, batch)
            # Graceful stop: take no more deliveries, finish what is already in hand.
            channel.basic_cancel(consumer_tag)
            connection.process_data_events(time_limit=0)
            while self.buffer:
                batch, self.buffer = (
                    self.buffer[: self.settings.batch],
                    self.buffer[self.settings.batch :],
                )
                self._handle(connection, channel, batch)
            connection.close()
        finally:
            self.state.forget_worker(self.id)
        log.info("worker %s stopped after %d processed", self.id, self.processed)

    def _on_message(self, _ch: Any, method: Any, _props: Any, body: bytes) -> None:
        self.buffer.append(Delivery(method.delivery_tag, body, method.redelivered))

    def _collect(self, connection: pika.BlockingConnection) -> list[Delivery]:
        size = self.settings.batch
        deadline = None
        while len(self.buffer) < size and not self.stopping.is_set():
            timeout = 0.2 if deadline is None else deadline - time.monotonic()
            if timeout <= 0:
                break
            connection.process_data_events(time_limit=timeout)
            if self.buffer and deadline is None:
                deadline = time.monotonic() + self.settings.linger_ms / 1000
        batch, self.buffer = self.buffer[:size], self.buffer[size:]
        return batch

    # --- one batch ----------------------------------------------------------------------------
    def _handle(
        self,
        connection: pika.BlockingConnection,
        channel: Any,
        batch: list[Delivery],
    ) -> None:
        max_attempts = self.settings.max_attempts
        outcomes = run_handlers(batch, self.id, max_attempts)
        docs = [o.doc for o in outcomes if o.verdict == "pending" and o.doc is not None]
        result = self._patiently(connection, lambda: self.store.bulk_upsert(docs), "Elasticsearch")
        if result is None:
            return  # stopping during an outage: unacked deliveries go back to the queue
        apply_bulk(outcomes, result.failed, max_attempts)
        for outcome in outcomes:
            if outcome.verdict in ("retry", "dead"):
                self._send_on(channel, outcome)
        counted = self._patiently(
            connection, lambda: self.state.record(counts_by_run(outcomes)), "Redis"
        )
        if counted is None:
            return
        self.processed += counted[0]
        self.failed += counted[1]
        channel.basic_ack(delivery_tag=batch[-1].tag, multiple=True)

    def _send_on(self, channel: Any, outcome: Outcome) -> None:
        """Publish a failed delivery to its retry queue or the dead-letter queue (confirmed)."""
        job = outcome.job
        if outcome.verdict == "retry" and job is not None:
            delay = broker.retry_delay_ms(self.settings.retry_delay_ms, job.attempt)
            if delay not in self._retry_queues:
                self.topology.declare_retry(channel, delay)
                self._retry_queues.add(delay)
            log.warning(
                "job %s attempt %d failed, retry in %d ms: %s",
                job.jobId,
                job.attempt,
                delay,
                outcome.error,
            )
            channel.basic_publish(
                "",
                self.topology.retry(delay),
                job.next_attempt().to_json(),
                broker.properties({"x-lab-error": outcome.error}),
            )
            return
        log.error("dead-lettering %s: %s", job.jobId if job else "a message", outcome.error)
        channel.basic_publish(
            "",
            self.topology.dead,
            outcome.delivery.body,
            broker.properties({"x-lab-error": outcome.error, "x-lab-worker": self.id}),
        )
        self.state.count_dead_letter()

    def _patiently(self, connection: pika.BlockingConnection, action: Any, what: str) -> Any:
        """Run `action` until the service answers; None when asked to stop meanwhile."""
        delay = 0.5
        while True:
            try:
                return action()
            except (*Unavailable, redis.ConnectionError, redis.TimeoutError) as exc:
                if self.stopping.is_set():
                    log.warning("%s unreachable while stopping; leaving the batch unacked", what)
                    return None
                log.warning("%s unreachable (%s); retrying in %.1fs", what, exc, delay)
                connection.sleep(delay)  # keeps the AMQP connection alive meanwhile
                delay = min(delay * 2, 5.0)

    def _wait_for(self, action: Any, what: str) -> None:
        delay = 0.5
        while not self.stopping.is_set():
            try:
                action()
                return
            except Unavailable as exc:
                log.warning("%s unreachable (%s); retrying in %.1fs", what, exc, delay)
                time.sleep(delay)
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
                        "inFlight": len(self.buffer),
                        "startedMs": self.started_ms,
                    },
                )
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
            self.stopping.wait(self.settings.heartbeat_s)
