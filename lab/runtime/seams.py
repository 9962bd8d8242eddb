"""What the worker and the scheduler ask of the services: the seams, as Protocols.

`lab.runtime.stores`, `Store` and `JobRecords` satisfy them against Redis and Elasticsearch;
`lab.testing`'s in-memory stand-ins satisfy them too, and mypy (`make lint`) holds both to them
(the contract suites in `tests/contracts/` hold their behaviour to the same answers). Each names
only what its user calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from lab.runtime.attempts import Begin, End
    from lab.runtime.broker import Topology
    from lab.runtime.headage import HeadAge
    from lab.runtime.keys import Keys
    from lab.runtime.messages import Job
    from lab.runtime.patience import Patience
    from lab.runtime.shapes import Plan
    from lab.runtime.status import RunView
    from lab.runtime.store import BulkResult
    from lab.runtime.stores.counting import Counted, Outcomes, Timed
    from lab.runtime.stores.release import Ask, Grant


class CountingSeam(Protocol):
    """Counting (`lab.runtime.stores.counting`) as a worker uses it: the exactly-once count and
    dead letters."""

    keys: Keys

    def record(
        self, outcomes: Outcomes, counts: Counted | None, timings: Timed | None, call_id: str
    ) -> tuple[int, int]: ...

    def dead_letter(self, run_id: str | None = None) -> None: ...


class PausesSeam(Protocol):
    def is_paused(self, queue: str) -> bool: ...

    def paused(self) -> set[str]: ...


class HeartbeatsSeam(Protocol):
    def worker(self, worker_id: str, fields: dict[str, Any]) -> None: ...

    def forget_worker(self, worker_id: str) -> None: ...

    def scheduler(self, scheduler_id: str, fields: dict[str, Any]) -> None: ...

    def forget_scheduler(self, scheduler_id: str) -> None: ...


class WorkerStores(Protocol):
    """The stores a worker uses (`lab.runtime.stores.Stores` has them all)."""

    @property
    def counting(self) -> CountingSeam: ...

    @property
    def pauses(self) -> PausesSeam: ...

    @property
    def heartbeats(self) -> HeartbeatsSeam: ...


class WorkerSeam(Protocol):
    """The worker as its middleware and its one-job runner see it (`lab.runtime.worker.Worker`
    is one): what they may read and ask of it, nothing of how it consumes. They are typed
    against this, not the class, so they stay below the worker that imports them."""

    id: str
    stores: WorkerStores
    records: SingleJobRecords
    topology: Topology
    patiently: Patience
    active_jobs: dict[str, str]  # job id → the lease of a single job's attempt ("": a run's job)
    paused: set[str]  # queues paused for every worker

    def follow_pauses(self, paused: set[str]) -> None: ...


class RunsSeam(Protocol):
    """Runs as the scheduler reads them."""

    def active_id(self) -> str | None: ...

    def get(self, run_id: str) -> RunView | None: ...

    def plan(self, run_id: str) -> Plan | None: ...


class ReleaseSeam(Protocol):
    """The lease, the shape's grant and the confirmed frontier."""

    def acquire_lease(self, scheduler_id: str) -> bool: ...

    def release_lease(self, scheduler_id: str) -> None: ...

    def grant(
        self, scheduler_id: str, run_id: str, next_seq: int, want: int, ask: Ask | None = None
    ) -> Grant: ...

    def advance(self, scheduler_id: str, run_id: str, up_to: int) -> str: ...

    def submitted(self, run_id: str, outcomes: dict[str, list[int]]) -> None: ...


class ObjectivesSeam(Protocol):
    def judge(self, run_id: str, head: HeadAge) -> str: ...


class HeadAgesSeam(Protocol):
    def measure(self, run_queue: str, other_run_queue: str, single_queue: str) -> HeadAge: ...


class SchedulerStores(Protocol):
    """The stores a scheduler uses."""

    @property
    def runs(self) -> RunsSeam: ...

    @property
    def release(self) -> ReleaseSeam: ...

    @property
    def heartbeats(self) -> HeartbeatsSeam: ...

    @property
    def objectives(self) -> ObjectivesSeam: ...

    @property
    def head_ages(self) -> HeadAgesSeam: ...


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
