"""Test doubles shipped with `lab`, for its own tests and for tests of a user's job kinds:

    FakeClock           a clock the test moves
    StubChannel         records what would have been published, acked and nacked
    StubConnection      runs what worker threads hand back, on the test's thread
    FakeWorkerStores    the stores a worker uses: FakeCounting (the exactly-once count),
                        FakePauses, FakeHeartbeats
    FakeLimiter         the stores a scheduler uses: one run, its lease, shape clock,
                        catch-up and frontier (`limiter.stores()` for `Scheduler(stores=...)`)
    FakeStore           Elasticsearch as a worker uses it
    FakeRecords         single jobs' records, with leases on the fake clock

Each satisfies the Protocol in `lab.runtime.seams` that the real class satisfies, and
`tests/contracts/` runs the same tests on the stand-in and on the real thing. A worker on them is
driven with `Worker.receive` and `Worker.drain` (run until idle); a scheduler with
`Scheduler.step` and `Scheduler.on_confirm`.
"""

from typing import TYPE_CHECKING

from lab.testing.fakes import (
    FakeClock,
    FakeRecords,
    FakeStore,
    Published,
    StubChannel,
    StubConnection,
    ack_frame,
    nack_frame,
)
from lab.testing.limiter import FakeLimiter, FakeSchedulerStores
from lab.testing.stores import FakeCounting, FakeHeartbeats, FakePauses, FakeWorkerStores

if TYPE_CHECKING:
    import pika

    from lab.runtime.jobs import JobRecords
    from lab.runtime.seams import (
        Connection,
        DocumentStore,
        SchedulerStores,
        SingleJobRecords,
        WorkerStores,
    )
    from lab.runtime.store import Store
    from lab.runtime.stores import Stores

__all__ = [
    "FakeClock",
    "FakeCounting",
    "FakeHeartbeats",
    "FakeLimiter",
    "FakePauses",
    "FakeRecords",
    "FakeSchedulerStores",
    "FakeStore",
    "FakeWorkerStores",
    "Published",
    "StubChannel",
    "StubConnection",
    "ack_frame",
    "nack_frame",
]


if TYPE_CHECKING:

    def _every_stand_in_fits_its_seam(
        stores: Stores,
        store: Store,
        records: JobRecords,
        connection: pika.BlockingConnection,
        limiter: FakeLimiter,
    ) -> None:
        """Never called: mypy checks that the real classes and the stand-ins both satisfy the
        same Protocols, so a change to one that the other lacks fails `make lint`."""
        for worker_stores in (stores, FakeWorkerStores()):
            _w: WorkerStores = worker_stores
        for scheduler_stores in (stores, FakeSchedulerStores(limiter)):
            _s: SchedulerStores = scheduler_stores
        for document_store in (store, FakeStore()):
            _d: DocumentStore = document_store
        for job_records in (records, FakeRecords()):
            _r: SingleJobRecords = job_records
        for conn in (connection, StubConnection()):
            _c: Connection = conn
