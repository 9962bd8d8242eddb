"""Delayed single jobs: `POST /jobs` with `delaySeconds` or `runAt` records the job as queued
at once, with its `runAt`, and keeps its message back until then.

The waiting jobs are a sorted set in Redis scored by `runAt`, so they outlive every process. A
thread of each API process takes what is due a few times a second (`job_due.lua` moves it to a
"promoting" set atomically, so two API processes never both take a job) and publishes its
message, confirmed; only then is the claim removed. A process that dies holding a claim leaves
it there, and after `STALE_MS` another takes it again: at worst a message is published twice,
which the worker's record check makes harmless. "Run now" makes a waiting job due at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lab.runtime.background import BackgroundLoop
from lab.runtime.jobs import JobRecords

POLL_S = 0.25
STALE_MS = 10_000


class DelayedReleaser(BackgroundLoop):
    name = "delayed-jobs"

    def __init__(self, records: JobRecords, publish: Callable[[str], None], poll_s: float = POLL_S):
        super().__init__()
        self.records = records
        self.publish = publish
        self.poll_s = poll_s
        self.released = 0

    def step(self) -> None:
        self.release_due()
        self.stopping.wait(self.poll_s)

    def release_due(self) -> int:
        """Publish every delayed job whose time has come; returns how many were published."""
        ids = self.records.due(int(time.time() * 1000), stale_ms=STALE_MS)
        if not ids:
            return 0
        published = 0
        for job_id, (state, _kind) in self.records.states(ids).items():
            if state == "queued":
                self.publish(job_id)  # raises when RabbitMQ refuses: the claim stays, retried
                published += 1
            self.records.published(job_id)  # cancelled or deleted meanwhile: nothing to send
        self.released += published
        return published
