"""What a worker has done, for its heartbeat: jobs processed, failed and dead-lettered.

A run's jobs count as the exactly-once count found them (a redelivery adds nothing), so the
workers' figures add up to the run's; single jobs count as they end. Every hook runs on the
connection's thread, so the counts need no lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.runtime.middleware.hooks import Middleware

if TYPE_CHECKING:
    from lab.runtime.batch import Outcome
    from lab.runtime.seams import WorkerSeam


class Counters(Middleware):
    def __init__(self) -> None:
        self.processed = 0
        self.failed = 0
        self.dead_lettered = 0

    def after_process(
        self, worker: WorkerSeam, outcomes: list[Outcome], counted: tuple[int, int]
    ) -> None:
        singles = [o.verdict for o in outcomes if o.job is not None and o.job.runId is None]
        self.processed += counted[0] + singles.count("written")
        self.failed += counted[1] + singles.count("dead")

    def on_dead_letter(self, worker: WorkerSeam, outcome: Outcome) -> None:
        self.dead_lettered += 1

    def on_heartbeat(self, worker: WorkerSeam) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "failed": self.failed,
            "deadLettered": self.dead_lettered,
        }
