"""What the worker and the scheduler ask of the services: the seams, as Protocols.

`State`, `Store` and `JobRecords` satisfy them against Redis and Elasticsearch; `lab.testing`'s
in-memory stand-ins satisfy them too, and mypy (`make lint`) holds both to them, so a stand-in
cannot drift from what it stands in for. Each names only what its user calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from lab.runtime import latency
    from lab.runtime.jobs import Begin, End
    from lab.runtime.keys import Keys
    from lab.runtime.messages import Job
    from lab.runtime.shapes import Plan
    from lab.runtime.state import Ask, Grant, RunView
    from lab.runtime.store import BulkResult


class WorkerState(Protocol):
    """Redis as a worker uses it: the exactly-once count, dead letters, heartbeats, pauses."""

    keys: Keys

    def record(
        self,
        outcomes: dict[str, tuple[list[int], list[int]]],
        counts: dict[str, dict[int, list[Any]]] | None = None,
        timings: dict[str, latency.RunTimings] | None = None,
    ) -> tuple[int, int]: ...

    def count_dead_letter(self, run_id: str | None = None) -> None: ...

    def heartbeat(self, worker_id: str, fields: dict[str, Any]) -> None: ...

    def forget_worker(self, worker_id: str) -> None: ...

    def queue_paused(self, queue: str) -> bool: ...

    def paused_queues(self) -> set[str]: ...


class SchedulerState(Protocol):
    """Redis as the scheduler uses it: the lease, the limiter, the confirmed frontier."""

    def acquire_lease(self, scheduler_id: str) -> bool: ...

    def release_lease(self, scheduler_id: str) -> None: ...

    def active_run_id(self) -> str | None: ...

    def run(self, run_id: str) -> RunView | None: ...

    def plan(self, run_id: str) -> Plan | None: ...

    def judge_slo(self, run_id: str, now_ms: int, head_age_ms: int = 0) -> str: ...

    def measure_head_ages(
        self, run_queue: str, other_run_queue: str, single_queue: str
    ) -> tuple[int, int]: ...

    def release(
        self, scheduler_id: str, run_id: str, next_seq: int, want: int, ask: Ask | None = None
    ) -> Grant: ...

    def advance(self, scheduler_id: str, run_id: str, up_to: int) -> str: ...

    def scheduler_heartbeat(self, scheduler_id: str, fields: dict[str, Any]) -> None: ...

    def forget_scheduler(self, scheduler_id: str) -> None: ...


class DocumentStore(Protocol):
    """Elasticsearch as a worker uses it."""

    def ensure_index(self) -> None: ...

    def bulk_upsert(self, docs: list[dict[str, Any]]) -> BulkResult: ...


class SingleJobRecords(Protocol):
    """Single jobs' records as a worker uses them: begin, progress, lease, finish."""

    def begin(
        self, job: Job, worker_id: str, redelivered: bool, lease: str, queue: str
    ) -> Begin: ...

    def progress(self, job: Job, lease: str, percent: int, step: str, message: str) -> str: ...

    def renew(self, leases: dict[str, str]) -> int: ...

    def finish(self, job: Job, end: End) -> bool: ...


class Connection(Protocol):
    """A pika connection as the worker's loop uses it (`pika.BlockingConnection` is one)."""

    def add_callback_threadsafe(self, callback: Callable[[], None]) -> None: ...

    def process_data_events(self, time_limit: float = 0) -> Any: ...

    def close(self) -> Any: ...
