"""Test doubles for the seams (`lab.runtime.seams`): a clock the test moves, a channel that
records what would have gone to RabbitMQ, a connection that runs what threads hand back, and
in-memory stand-ins for the State, Store and job records the worker and scheduler talk to. Each
stand-in satisfies the Protocol its real class satisfies (mypy checks both, `make lint`).
Nothing here opens a connection, so tests using it run with every service unreachable."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pika

from lab.runtime import latency, shapes
from lab.runtime.jobs import Begin, End
from lab.runtime.keys import Keys
from lab.runtime.messages import Job
from lab.runtime.retry import Budget
from lab.runtime.state import Ask, Grant, RunView
from lab.runtime.store import BulkResult

if TYPE_CHECKING:
    from lab.runtime.jobs import JobRecords
    from lab.runtime.seams import (
        Connection,
        DocumentStore,
        SchedulerState,
        SingleJobRecords,
        WorkerState,
    )
    from lab.runtime.state import State
    from lab.runtime.store import Store


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Published:
    queue: str
    body: bytes
    headers: dict[str, Any] | None
    priority: int | None = None


@dataclass
class StubChannel:
    """What the code under test published and acked, in order; no broker behind it."""

    published: list[Published] = field(default_factory=list)
    acks: list[tuple[int, bool]] = field(default_factory=list)
    nacks: list[tuple[int, bool]] = field(default_factory=list)  # (tag, requeue)
    log: list[str] = field(default_factory=list)  # "publish <queue>" and "ack <tag>", in order
    is_open: bool = True

    def basic_publish(self, exchange: str, routing_key: str, body: Any, properties: Any) -> None:
        body = body if isinstance(body, bytes) else str(body).encode()
        headers = getattr(properties, "headers", None)
        priority = getattr(properties, "priority", None)
        self.published.append(Published(routing_key, body, headers, priority))
        self.log.append(f"publish {routing_key}")

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.acks.append((delivery_tag, multiple))
        self.log.append(f"ack {delivery_tag}")

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        self.nacks.append((delivery_tag, requeue))
        self.log.append(f"nack {delivery_tag}")

    def basic_cancel(self, consumer_tag: str) -> None:
        self.log.append(f"cancel {consumer_tag}")

    def basic_qos(self, prefetch_count: int = 0) -> None:
        pass

    def basic_consume(self, queue: str, callback: Any) -> str:
        self.log.append(f"consume {queue}")
        return f"ctag-{queue}"

    def to(self, queue: str) -> list[Published]:
        return [p for p in self.published if p.queue == queue]


class StubConnection:
    """`add_callback_threadsafe` queues the callback; `run_callbacks` runs them on the test's
    thread, as pika's connection thread would."""

    def __init__(self) -> None:
        self.callbacks: list[Any] = []
        self.tags = 0  # the last delivery tag handed out on this connection's channel

    def add_callback_threadsafe(self, callback: Any) -> None:
        self.callbacks.append(callback)

    def run_callbacks(self) -> int:
        ran = 0
        while self.callbacks:
            self.callbacks.pop(0)()
            ran += 1
        return ran

    def close(self) -> None:
        self.callbacks.clear()

    def process_data_events(self, time_limit: float = 0) -> None:
        """What a worker's loop calls: run what the other threads handed back, else wait a
        moment for them (as pika waits for the socket)."""
        if not self.run_callbacks():
            time.sleep(min(time_limit, 0.005))


def ack_frame(tag: int, multiple: bool = True) -> Any:
    return SimpleNamespace(method=pika.spec.Basic.Ack(delivery_tag=tag, multiple=multiple))


def nack_frame(tag: int, multiple: bool = False) -> Any:
    return SimpleNamespace(method=pika.spec.Basic.Nack(delivery_tag=tag, multiple=multiple))


class FakeLimiter:
    """The scheduler's side of `release.lua` and `advance.lua`, in memory and on the test's
    clock: a lease, one run of `x` jobs at `y` a minute (or following `shape`), the run's shape
    clock with its pauses, the catch-up rule (a scheduler behind by more than its budget
    releases the budget and the rest is forgiven), the timeline's releases per second, and the
    confirmed frontier as `enqueued`. `backlog` bounds published-but-unsettled jobs, as
    `LAB_BACKLOG_LIMIT` does (`settled` plays the workers)."""

    def __init__(self, clock: FakeClock, x: int, y: float = 600.0,
                 shape: dict[str, Any] | None = None, seed: int = 0,
                 backlog: int | None = None):  # fmt: skip
        self.clock, self.x, self.seed, self.backlog = clock, x, seed, backlog
        self.shape = shape or {"type": "constant", "y": y}
        self.start_ms: int | None = None  # the shape's clock starts with the first release
        self.created_ms = self.now_ms()
        self.paused_ms = 0
        self.paused_at: int | None = None
        self.base, self.lag, self.version, self.granted_to = 1, 0, 1, 0
        self.enqueued = self.settled = 0
        self.lease_holder: str | None = None
        self.advances: list[tuple[float, int]] = []
        self.grants: list[tuple[float, int]] = []
        self.released: dict[int, int] = {}  # Redis second → jobs first published in it
        self.marks: dict[int, set[str]] = {}  # second → forgiven, backpressure, paused
        self.heartbeats: list[dict[str, Any]] = []
        self.judged: list[int] = []  # when the scheduler judged the run's objectives

    def now_ms(self) -> int:
        return round(self.clock() * 1000)

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    @paused.setter
    def paused(self, value: bool) -> None:
        if value and self.paused_at is None:
            self.paused_at = self.now_ms()
        elif not value and self.paused_at is not None:
            if self.start_ms is not None:
                self.paused_ms += self.now_ms() - max(self.paused_at, self.start_ms)
            self.paused_at = None

    def run_hash(self) -> dict[str, str]:
        h = {"runId": "run1", "state": "running", "xTotal": str(self.x),
             "yMinutes": str(shapes.parse(self.shape, self.seed).rate(0)),
             "enqueued": str(self.enqueued), "processed": str(self.settled), "failed": "0",
             "running": "1", "startedAt": str(self.created_ms), "shape": json.dumps(self.shape),
             "seed": str(self.seed),
             "shapeStartMs": "" if self.start_ms is None else str(self.start_ms),
             "pausedMs": str(self.paused_ms), "shapeBase": str(self.base),
             "shapeLag": str(self.lag), "shapeVersion": str(self.version)}  # fmt: skip
        if self.paused_at is not None:
            h.update(paused="1", pausedAt=str(self.paused_at))
        return h

    def reshape(self, shape: dict[str, Any]) -> None:
        """`PATCH /run`: the new shape goes on from what the old one allowed by now."""
        plan = self.plan("run1")
        assert plan is not None
        elapsed = shapes.elapsed_s(self.run_hash(), self.now_ms())
        self.base = min(self.x, plan.target(elapsed) - self.lag)
        self.shape, self.lag, self.version = shape, 0, self.version + 1
        self.start_ms, self.paused_ms = self.now_ms(), 0
        if self.paused_at is not None:
            self.paused_at = self.start_ms

    def acquire_lease(self, scheduler_id: str) -> bool:
        if self.lease_holder in (None, scheduler_id):
            self.lease_holder = scheduler_id
            return True
        return False

    def release_lease(self, scheduler_id: str) -> None:
        if self.lease_holder == scheduler_id:
            self.lease_holder = None

    def active_run_id(self) -> str | None:
        return "run1"

    def run(self, run_id: str) -> RunView | None:
        return RunView.from_hash(self.run_hash(), self.now_ms())

    def plan(self, run_id: str) -> shapes.Plan | None:
        return shapes.Plan.of_run(self.run_hash())

    def judge_slo(self, run_id: str, now_ms: int, head_age_ms: int = 0) -> str:
        self.judged.append(now_ms)
        return "none"

    def measure_head_ages(
        self, run_queue: str, other_run_queue: str, single_queue: str
    ) -> tuple[int, int]:
        return self.now_ms(), 0

    def scheduler_heartbeat(self, scheduler_id: str, fields: dict[str, Any]) -> None:
        self.heartbeats.append(fields)

    def forget_scheduler(self, scheduler_id: str) -> None:
        pass

    def release(self, scheduler_id: str, run_id: str, next_seq: int, want: int,
                ask: Ask | None = None) -> Grant:  # fmt: skip
        """`release.lua`, line by line."""
        if self.lease_holder != scheduler_id:
            return Grant("lease", holder=self.lease_holder or "")
        now = self.now_ms()
        sec = now // 1000
        if self.paused:
            self.marks.setdefault(sec, set()).add("paused")
            return Grant("paused")
        ask = ask or Ask()
        if self.start_ms is None:
            self.start_ms = now
        elapsed = now - self.start_ms - self.paused_ms
        answer = dict(status="ok", run_id=run_id, granted=0, elapsed_ms=elapsed, x_total=self.x,
                      version=str(self.version), now_ms=now, lag=self.lag)  # fmt: skip
        remaining = self.x - next_seq
        if remaining <= 0 or ask.target < 0 or ask.version != str(self.version):
            return Grant(**answer)  # type: ignore[arg-type]
        room = (self.backlog - (next_seq - self.settled)) if self.backlog else 1 << 60
        allowed = min(ask.target - self.lag, self.x)
        if allowed - next_seq > ask.budget:
            self.lag += allowed - next_seq - ask.budget
            self.marks.setdefault(sec, set()).add("forgiven")
            allowed = next_seq + ask.budget
        if room <= 0 and allowed > next_seq:
            self.marks.setdefault(sec, set()).add("backpressure")
        granted = max(0, min(allowed - next_seq, want, remaining, room))
        if granted > 0 and next_seq + granted > self.granted_to:
            first = max(self.granted_to, next_seq)
            self.released[sec] = self.released.get(sec, 0) + next_seq + granted - first
            self.granted_to = next_seq + granted
        self.grants.append((self.clock(), granted))
        answer.update(granted=granted, lag=self.lag)
        return Grant(**answer)  # type: ignore[arg-type]

    def advance(self, scheduler_id: str, run_id: str, up_to: int) -> str:
        if self.lease_holder != scheduler_id:
            return "lease"
        self.enqueued = max(self.enqueued, up_to)
        self.advances.append((self.clock(), up_to))
        return "ok"


class FakeStore:
    """Elasticsearch for the worker: keeps documents by `_id`; refuses the jobIds in `refuse`;
    raises `down` (once each) before answering, as an unreachable cluster would."""

    def __init__(self, refuse: dict[str, str] | None = None):
        self.docs: dict[str, dict[str, Any]] = {}
        self.refuse = refuse or {}
        self.down: list[BaseException] = []
        self.calls = 0

    def ensure_index(self) -> None:
        pass

    def bulk_upsert(self, docs: list[dict[str, Any]]) -> BulkResult:
        self.calls += 1
        if self.down:
            raise self.down.pop(0)
        result = BulkResult()
        for doc in docs:
            if doc["jobId"] in self.refuse:
                result.failed[doc["jobId"]] = self.refuse[doc["jobId"]]
            else:
                self.docs[doc["jobId"]] = doc
                result.written.append(doc["jobId"])
        return result


class FakeState:
    """Redis for the worker: the exactly-once count (a set of seqs per run, like the bitmap),
    dead letters counted, heartbeats kept."""

    def __init__(self) -> None:
        self.done: dict[str, set[int]] = {}
        self.failed: dict[str, set[int]] = {}
        self.dead_letters: list[str | None] = []
        self.heartbeats: list[dict[str, Any]] = []
        self.paused: set[str] = set()
        self.hashes: dict[str, dict[str, int]] = {}  # what middleware counted (HINCRBY)
        self.timings: dict[str, dict[int, list[Any]]] = {}  # runId → seq → latency, counted once
        self.keys = Keys("unit")

    def queue_paused(self, queue: str) -> bool:
        return queue in self.paused

    def paused_queues(self) -> set[str]:
        return set(self.paused)

    def record(
        self,
        outcomes: dict[str, tuple[list[int], list[int]]],
        counts: dict[str, dict[int, list[Any]]] | None = None,
        timings: dict[str, latency.RunTimings] | None = None,
    ) -> tuple[int, int]:
        """As record.lua: each seq counted once; its middleware counts and its latency
        (`self.timings[runId][seq]`) only when it is new."""
        new_done = new_failed = 0
        for run_id, (done, failed) in outcomes.items():
            extra = (counts or {}).get(run_id, {})
            run_timings = (timings or {}).get(run_id)
            timed = {t[0]: t for t in run_timings.detail()["jobs"]} if run_timings else {}
            for seq in done:
                if seq not in self.done.setdefault(run_id, set()):
                    self.done[run_id].add(seq)
                    new_done += 1
                    self._count(extra.get(seq, []))
                    self._time(run_id, timed.get(seq))
            for seq in failed:
                if seq not in self.done.get(run_id, set()) and seq not in self.failed.setdefault(
                    run_id, set()
                ):
                    self.failed[run_id].add(seq)
                    new_failed += 1
                    self._count(extra.get(seq, []))
                    self._time(run_id, timed.get(seq))
        return new_done, new_failed

    def _time(self, run_id: str, timing: list[Any] | None) -> None:
        if timing is not None:
            self.timings.setdefault(run_id, {})[timing[0]] = timing

    def _count(self, found: list[Any]) -> None:
        for c in found:
            fields = self.hashes.setdefault(c.key, {})
            fields[c.field] = fields.get(c.field, 0) + c.n

    def count_dead_letter(self, run_id: str | None = None) -> None:
        self.dead_letters.append(run_id)

    def heartbeat(self, worker_id: str, fields: dict[str, Any]) -> None:
        self.heartbeats.append(fields)

    def forget_worker(self, worker_id: str) -> None:
        pass


class FakeRecords:
    """Single jobs' records in memory, as the job scripts keep them: `add` a job, then a worker
    begins, steps, renews and finishes its attempts under a lease on the test's clock."""

    def __init__(self, clock: FakeClock | None = None, lease_s: float = 10.0):
        self.clock = clock or FakeClock()
        self.lease_s = lease_s
        self.jobs: dict[str, dict[str, Any]] = {}
        self.paused: set[str] = set()

    def add(self, job_id: str, attempts: int = 3) -> None:
        self.jobs[job_id] = {"state": "queued", "attempt": 1, "attempts": attempts,
                             "lease": "", "until": 0.0, "steps": [], "outcome": None}  # fmt: skip

    def begin(self, job: Job, worker_id: str, redelivered: bool, lease: str, queue: str) -> Begin:
        if queue in self.paused:
            return Begin(run=False, tracked=True, reason="its queue is paused", paused=True)
        j = self.jobs.get(job.jobId)
        if j is None:
            return Begin(run=True, tracked=False)
        if j["state"] not in ("queued", "active") or job.attempt < j["attempt"]:
            return Begin(run=False, tracked=True, reason=j["state"])
        left = j["until"] - self.clock()
        if j["state"] == "active" and j["lease"] not in ("", lease) and left > 0:
            return Begin(run=False, tracked=True, reason="running", busy_ms=int(left * 1000) + 1)
        j.update(
            state="active", attempt=job.attempt, lease=lease, until=self.clock() + self.lease_s
        )
        return Begin(run=True, tracked=True, budget=Budget.of_record(j["attempts"], j["attempts"]))

    def progress(self, job: Job, lease: str, percent: int, step: str, message: str) -> str:
        j = self.jobs.get(job.jobId)
        if j is None or j["state"] != "active" or j["lease"] != lease:
            return "gone"
        j["steps"].append(step)
        j["until"] = self.clock() + self.lease_s
        return "ok"

    def renew(self, leases: dict[str, str]) -> int:
        kept = 0
        for job_id, lease in leases.items():
            j = self.jobs.get(job_id)
            if j is not None and j["state"] == "active" and j["lease"] == lease:
                j["until"] = self.clock() + self.lease_s
                kept += 1
        return kept

    def finish(self, job: Job, end: End) -> bool:
        j = self.jobs.get(job.jobId)
        if j is None or j["state"] != "active" or j["lease"] != end.lease:
            return False
        if end.outcome == "retry":
            j.update(state="queued", attempt=job.attempt + 1, lease="")
        else:
            done = end.result if end.outcome == "completed" else end.error
            j.update(state=end.outcome, lease="", outcome=done)
        return True


if TYPE_CHECKING:

    def _every_stand_in_fits_its_seam(
        state: State, store: Store, records: JobRecords, connection: pika.BlockingConnection
    ) -> None:
        """Never called: mypy checks that the real classes and the stand-ins both satisfy the
        same Protocols, so a change to one that the other lacks fails `make lint`."""
        for worker_state in (state, FakeState()):
            _w: WorkerState = worker_state
        for scheduler_state in (state, FakeLimiter(FakeClock(), 1, 60)):
            _s: SchedulerState = scheduler_state
        for document_store in (store, FakeStore()):
            _d: DocumentStore = document_store
        for job_records in (records, FakeRecords()):
            _r: SingleJobRecords = job_records
        for conn in (connection, StubConnection()):
            _c: Connection = conn
