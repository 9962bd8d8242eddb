"""Test doubles for the seams (`lab.runtime.seams`): a clock the test moves, a channel that
records what would have gone to RabbitMQ, a connection that runs what threads hand back, and
in-memory stand-ins for the Elasticsearch store and the single jobs' records (the stores'
stand-ins are in `lab.testing.stores` and `lab.testing.limiter`). Each stand-in satisfies the
Protocol its real class satisfies (mypy checks both, `make lint`), and `tests/contracts/` runs
the same tests on both. Nothing here opens a connection, so tests using it run with every
service unreachable."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pika

from lab.runtime.attempts import Begin, End
from lab.runtime.messages import Job
from lab.runtime.retry import Budget
from lab.runtime.store import BulkResult


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
        same_attempt = job.attempt == j["attempt"]
        if j["state"] == "active" and same_attempt and j["lease"] not in ("", lease) and left > 0:
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
