"""Test doubles shipped with `lab`, for its own tests and for tests of a user's job kinds:

    FakeClock        a clock the test moves
    StubChannel      records what would have been published, acked and nacked
    StubConnection   runs what worker threads hand back, on the test's thread
    FakeState        Redis as a worker uses it (the exactly-once count, pauses, heartbeats)
    FakeLimiter      Redis as the scheduler uses it (lease, shape clock, catch-up, frontier)
    FakeStore        Elasticsearch as a worker uses it
    FakeRecords      single jobs' records, with leases on the fake clock

Each satisfies the Protocol in `lab.runtime.seams` that the real class satisfies. A worker on
them is driven with `Worker.receive` and `Worker.drain` (run until idle); a scheduler with
`Scheduler.step` and `Scheduler.on_confirm`.
"""

from lab.testing.fakes import (
    FakeClock,
    FakeLimiter,
    FakeRecords,
    FakeState,
    FakeStore,
    Published,
    StubChannel,
    StubConnection,
    ack_frame,
    nack_frame,
)

__all__ = [
    "FakeClock",
    "FakeLimiter",
    "FakeRecords",
    "FakeState",
    "FakeStore",
    "Published",
    "StubChannel",
    "StubConnection",
    "ack_frame",
    "nack_frame",
]
