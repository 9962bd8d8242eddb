"""The scheduler: releases the active run's jobs into the durable queue as its shape says.

Every tick it computes how many jobs the run's shape allows by now (`lab/runtime/shapes.py`: the
first job at once, then the integral of Y over shape time, the run's time less its pauses) and
asks Redis (one script, `release.lua`) how many it may publish. That answer combines the lease
(only one scheduler releases), the target with the catch-up rule (the shape's clock and the
jobs forgiven to a scheduler that fell behind live in Redis, so a restart neither bursts nor
resets), and backpressure (published-but-unsettled jobs stay under `backlog_limit`). It then
generates exactly those jobs, of the run's kind and payload, and publishes them with publisher
confirms outstanding in a window, never one round trip per message. A job counts as released
(`enqueued`) only once it and every job before it are confirmed; after a crash, the next
scheduler starts at `enqueued` and republishes what was unconfirmed, which is harmless because
jobs are idempotent by jobId.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pika
import redis
from pika.adapters.select_connection import SelectConnection

from lab.config import Settings
from lab.runtime import broker
from lab.runtime.acks import ConfirmTracker
from lab.runtime.backoff import Backoff
from lab.runtime.heartbeat import identity, keep_beating
from lab.runtime.messages import run_job
from lab.runtime.pacing import ADVANCE_EVERY_S, MAX_TICK_S, MIN_TICK_S, Pace
from lab.runtime.seams import SchedulerStores
from lab.runtime.shapes import Plan
from lab.runtime.stores import Stores
from lab.runtime.submits import Submissions, Submitter

log = logging.getLogger("lab.runtime.scheduler")

STANDBY_POLL_S = 0.5
CHUNK = 1000
WATCH_EVERY_S = 1.0  # how often the leader measures head ages and judges the run's objectives


class Scheduler:
    """One scheduler process. `stores` and `clock` are seams: the unit tests give it stand-ins
    and a clock of their own and a stub channel, and drive `step` without any service."""

    def __init__(
        self,
        settings: Settings,
        scheduler_id: str | None = None,
        stores: SchedulerStores | None = None,
        clock: Callable[[], float] = time.monotonic,
        submitters: Callable[[str], Submitter] | None = None,
    ):
        self.settings = settings
        self.id = scheduler_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.stores: SchedulerStores = stores or Stores.of(settings)
        self.clock = clock
        self.topology = broker.Topology.of(settings)
        self.tracker = ConfirmTracker()
        self.republish: list[int] = []
        self.run_id: str | None = None
        self.plan: Plan | None = None  # the run's shape, as of its version
        self.kind, self.queue = "index", settings.queue
        self.payload: dict[str, Any] = {}
        self.pace = Pace(clock)  # the run's shape time, and when the next tick is due
        self.lag = 0
        self._watched_at = -WATCH_EVERY_S
        self.judging = False  # the followed run has objectives still to judge
        self.next_seq = 0
        self.advanced_to = 0
        self.leader = False
        self.stopping = False
        self.connection: SelectConnection | None = None
        self.channel: Any = None
        self._last_advance = 0.0
        self._finish_deadline: float | None = None
        self.waiting_for = ""  # the service it waits for, shown in /status
        self._reconnect = Backoff(initial_s=0.5, cap_s=5.0)
        self.slowest_tick_ms = 0  # since the last heartbeat: a tick must never grow with a run
        # A run of another target (lab.targets) is submitted through its broker's client, made
        # by `submitters` and kept per target; None while following lab's own pipeline.
        self.submissions = Submissions(submitters, clock=clock)
        self.submitter: Submitter | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        # One node at a time (SelectConnection takes one); each reconnect tries the next node of
        # LAB_AMQP_URL, so a cluster's surviving node is found when ours goes away.
        nodes = broker.endpoints(
            self.settings.amqp_url, f"lab-scheduler-{self.id}", broker.Deadlines.of(self.settings)
        )
        attempt = 0
        while not self.stopping:
            params = nodes[attempt % len(nodes)]
            attempt += 1
            self.connection = SelectConnection(
                params,
                on_open_callback=self._on_connection_open,
                on_open_error_callback=self._on_connection_error,
                on_close_callback=self._on_connection_closed,
            )
            self.connection.ioloop.start()
            if not self.stopping:
                self.waiting_for = "RabbitMQ"
                delay = self._reconnect.next()
                log.warning("RabbitMQ unreachable; reconnecting in %.1fs", delay)
                deadline = time.monotonic() + delay
                while not self.stopping and time.monotonic() < deadline:
                    time.sleep(0.1)
        try:
            self.stores.release.release_lease(self.id)
            self.stores.heartbeats.forget_scheduler(self.id)
        except Exception as exc:  # noqa: BLE001 - the lease and heartbeat expire by themselves
            log.warning("could not release the lease: %r", exc)
        log.info("scheduler %s stopped", self.id)

    def _heartbeat_loop(self) -> None:
        """Announce this scheduler and what it waits for; the key's TTL makes a dead one vanish."""

        def beat() -> None:
            self.stores.heartbeats.scheduler(self.id, {
                **identity(self.id), "leader": int(self.leader), "runId": self.run_id or "",
                "waitingFor": self.waiting_for, "slowestTickMs": self.slowest_tick_ms,
            })  # fmt: skip
            self.slowest_tick_ms = 0

        keep_beating(beat, self.settings, lambda: self.stopping)

    def _request_stop(self, *_: Any) -> None:
        self.stopping = True

    def _on_connection_open(self, connection: SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_error(self, connection: SelectConnection, error: Exception) -> None:
        log.warning("cannot reach RabbitMQ (%r)", error)
        connection.ioloop.stop()

    def _on_connection_closed(self, connection: SelectConnection, reason: Exception) -> None:
        self.channel = None
        # Unconfirmed jobs are unknown now: start again from the confirmed frontier.
        self.republish = []
        self.tracker.reset()
        self.run_id = None
        if not self.stopping:
            log.warning("RabbitMQ connection closed (%s); reconnecting", reason)
        connection.ioloop.stop()

    def _on_channel_open(self, channel: Any) -> None:
        """Declare the topology, then turn on publisher confirms, then start ticking."""
        self.channel = channel
        channel.add_on_close_callback(lambda _ch, reason: self._close(f"channel closed: {reason}"))
        self._declare(self.topology.queues())

    def _declare(self, queues: list[tuple[str, dict[str, object]]]) -> None:
        """The topology's queues one after another (the async channel takes one at a time)."""
        if not queues:
            self.channel.confirm_delivery(self.on_confirm, callback=lambda _f: self._schedule(0))
            log.info("scheduler %s connected; queue %s", self.id, self.settings.queue)
            self.waiting_for = ""
            self._reconnect.reset()
            return
        (name, arguments), rest = queues[0], queues[1:]
        self.channel.queue_declare(
            name, durable=True, arguments=arguments, callback=lambda _f: self._declare(rest)
        )

    def _close(self, why: str) -> None:
        log.warning("%s", why)
        if self.connection and self.connection.is_open:
            self.connection.close()

    def _schedule(self, delay: float) -> None:
        if self.connection is not None:
            self.connection.ioloop.call_later(delay, self._tick)

    # --- confirms -----------------------------------------------------------------------------
    def on_confirm(self, frame: Any) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Ack):
            self.tracker.acked(method.delivery_tag, method.multiple)
        else:
            refused = self.tracker.nacked(method.delivery_tag, method.multiple)
            log.warning("broker refused %d jobs; publishing them again", len(refused))
            self.republish.extend(refused)
        try:
            self.advance_frontier()  # released counts follow confirms closely (throttled to 20/s)
        except redis.RedisError as exc:
            log.warning("Redis unreachable (%s); will record confirms later", exc)

    # --- the loop -----------------------------------------------------------------------------
    def _tick(self) -> None:
        if self.channel is None or not self.channel.is_open:
            return
        if self.stopping:
            self._finish()
            return
        began = time.monotonic()
        try:
            delay = self.step()
            if self.leader:
                self.watch()
            if self.waiting_for == "Redis":
                log.info("Redis is back")
                self.waiting_for = ""
        except redis.RedisError as exc:
            if self.waiting_for != "Redis":  # said once per outage; "Redis is back" ends it
                log.warning("Redis unreachable (%r); retrying each second", exc)
            self.waiting_for = "Redis"
            delay = 1.0
        took_ms = int((time.monotonic() - began) * 1000)
        self.slowest_tick_ms = max(self.slowest_tick_ms, took_ms)
        self._schedule(delay)

    def step(self) -> float:
        """One decision: publish what the limiter grants; returns seconds until the next tick."""
        if self.run_id is None or not self.leader:
            # Idle or standing by: (re)take the lease; while releasing, release.lua renews it.
            was_leader = self.leader
            self.leader = self.stores.release.acquire_lease(self.id)
            if not self.leader:
                return STANDBY_POLL_S
            if not was_leader:
                log.info("scheduler %s holds the lease", self.id)
                self.run_id = None
            return self.follow(self.stores.runs.active_id())
        self.advance_frontier()
        self._publish_refused()
        self._submit()
        want = min(CHUNK, self.settings.publish_window - self.tracker.outstanding)
        if self.submitter is not None:
            want = min(want, self.submissions.budget())
        if want <= 0:
            return MIN_TICK_S
        ask = self.pace.ask(self.plan, self.lag, self.settings.burst_s)
        grant = self.stores.release.grant(self.id, self.run_id, self.next_seq, want, ask)
        if grant.status != "ok":
            self.pace.forget()  # the run's clock is read again before the next target
        if grant.status == "lease":
            log.warning("lease lost to %s; standing by", grant.holder or "nobody")
            self.leader = False
            self.run_id = None
            return STANDBY_POLL_S
        if grant.status == "idle":
            # Stopped or finished: record the confirms still on their way, then let go.
            self.advance_frontier(force=True)
            if self.tracker.outstanding:
                return 0.02
            self.run_id = None
            return MAX_TICK_S
        if grant.status == "paused":
            # Keep following the run; confirms still on their way are recorded meanwhile.
            self.advance_frontier(force=True)
            return MAX_TICK_S
        if grant.status == "switch":
            return self.follow(grant.run_id)
        self.pace.sync(grant.elapsed_ms, grant.now_ms)
        self.lag = grant.lag
        if self.plan is None or grant.version != self.plan.version:
            self.plan = self.stores.runs.plan(self.run_id)  # PATCH /run: a new shape from now on
            return 0.0
        for seq in range(self.next_seq, self.next_seq + grant.granted):
            self._publish(self.run_id, seq)
        self.next_seq += grant.granted
        self._submit()
        return self.pace.next_tick(self.plan, self.next_seq, self.lag, self.tracker.outstanding > 0)

    def watch(self) -> None:
        """Once a second the leader measures how long the oldest waiting job of each queue has
        waited (`stores.head_ages`), then judges the run's objectives with it
        (`stores.objectives`)."""
        now = self.clock()
        if now - self._watched_at < WATCH_EVERY_S:
            return
        self._watched_at = now
        t = self.topology
        other = t.long if self.queue == t.queue else t.queue
        head = self.stores.head_ages.measure(self.queue, other, t.single)
        if not self.judging or self.run_id is None:
            return
        verdict = self.stores.objectives.judge(self.run_id, head)
        if verdict == "none":
            self.judging = False
        elif verdict == "breached":
            log.warning("run %s breached an objective", self.run_id)

    # --- following the run -----------------------------------------------------------------
    def follow(self, run_id: str | None) -> float:
        """Start releasing `run_id` from its first unconfirmed job."""
        if run_id is None:
            self.run_id = None
            return MAX_TICK_S
        run = self.stores.runs.get(run_id)
        plan = self.stores.runs.plan(run_id)
        if run is None or plan is None:
            return MAX_TICK_S
        self.tracker.forget()  # the same channel: its delivery tags go on
        self.republish = []
        self.run_id, self.plan = run_id, plan
        self.pace.forget()
        self.judging = bool(run.slo)  # a run without objectives is never read for them
        self._watched_at = -WATCH_EVERY_S  # its first second is watched from its first tick
        self.kind, self.payload = run.kind, run.payload or {}
        self.queue = self.topology.route(run.kind, single=False)
        self.submitter = None if run.target == "lab" else self.submissions.client(run.target)
        self.submissions.batch = []
        self.next_seq = self.advanced_to = run.enqueued
        log.info(
            "releasing run %s from seq %d (x=%d, %s jobs, %s)",
            run_id,
            run.enqueued,
            run.xTotal,
            run.kind,
            run.shapeText,
        )
        return 0.0

    def _publish(self, run_id: str, seq: int) -> None:
        job = run_job(run_id, seq, self.kind, self.payload)
        if self.submitter is not None:
            self.submissions.batch.append(job)  # submitted together at the end of the tick
            return
        self.channel.basic_publish("", self.queue, job.to_json(), broker.properties())
        self.tracker.published(seq)

    def _submit(self) -> None:
        """Submit what this tick released to the run's target, at once: what the broker took
        (or may have taken) counts as released; what it refused is released again next tick."""
        if self.submitter is None or not self.submissions.batch or self.run_id is None:
            return
        seqs = self.submissions.submit(self.submitter)
        self.republish.extend(seqs["failed"])
        self.stores.release.submitted(self.run_id, seqs)

    def _publish_refused(self) -> None:
        refused, self.republish = self.republish, []
        if self.run_id is None:
            return
        for seq in refused:
            self._publish(self.run_id, seq)

    def advance_frontier(self, force: bool = False) -> None:
        """Tell Redis how far the confirmed frontier has moved (at most every 50 ms)."""
        if self.run_id is None:
            return
        now = self.clock()
        if not force and now - self._last_advance < ADVANCE_EVERY_S:
            return
        frontier = self.tracker.frontier(self.next_seq, self.republish)
        if frontier > self.advanced_to:
            answer = self.stores.release.advance(self.id, self.run_id, frontier)
            if answer == "ok":
                self.advanced_to = frontier
            elif answer == "lease":
                self.leader = False
        self._last_advance = now

    def _finish(self) -> None:
        """Graceful stop: wait briefly for outstanding confirms, record them, then close."""
        if self._finish_deadline is None:
            self._finish_deadline = time.monotonic() + 5.0
        deadline = self._finish_deadline
        assert self.connection is not None  # it finishes on its own connection's loop
        if self.tracker.outstanding and time.monotonic() < deadline:
            self.connection.ioloop.call_later(0.02, self._tick)
            return
        try:
            self.advance_frontier(force=True)
        except redis.RedisError as exc:
            log.warning("could not record the last confirms: %s", exc)
        self.connection.close()
