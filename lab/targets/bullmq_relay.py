"""The relay: BullMQ's own events about a single job, recorded in the job's lab record.

BullMQ writes what happens to each job of a queue to the queue's event stream (what its
`QueueEvents` reads: `bull:<LAB_QUEUE>.bullmq:events`). A thread of the API reads it and, for
each job whose record says it runs on BullMQ (`lab.targets.bullmq_jobs`), calls the same record
scripts a lab worker calls, so its states, log, progress, SSE stream (`GET /jobs/{id}/stream`,
`lab job watch`) and the admin page follow a BullMQ job as they follow a lab one:

    active                      job_begin    (the worker: BullMQ's `processedBy`)
    progress {percent, step, message}   job_progress
    completed {returnvalue}     job_finish completed
    delayed (after active)      job_finish retry (BullMQ retries it after its backoff)
    failed {failedReason}       job_finish failed, or cancelled when a cancel was asked for

The relay owns every transition of such a record after its creation, one event at a time in the
stream's order. It keeps where it is in Redis (`<prefix>:bullmq-relay`, made when the first
single job goes to BullMQ) and one API process relays at a time (a lease), so a restarted API,
or another one, resumes after the last batch of events recorded: nothing is skipped, and at
most one batch (200 events) is seen twice, most of which the record scripts refuse as stale (a
record moves on only from the state an event expects; a step seen twice is logged twice).
Events BullMQ trimmed from its stream (it keeps about 10,000) before any relay read them are
not recorded.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

from lab.config import Settings
from lab.runtime.attempts import End
from lab.runtime.background import BackgroundLoop
from lab.runtime.connections import redis_client
from lab.runtime.jobs import JobRecords
from lab.runtime.messages import Job, is_id
from lab.targets.bullmq import PREFIX

LEASE = "bullmq"  # the lease token of every BullMQ attempt: the relay is its one writer
LEASE_MS = 5000  # renewed every BLOCK_MS: another API takes over this long after a kill
BLOCK_MS = 1000
IDLE_S = 2.0  # how often a relay that does not lead (or has nothing to follow) looks again
BATCH = 200
SINGLE = "job-"  # how every single job's id starts (lab.runtime.jobs.new_job_id)


def percent_of(value: Any) -> int:
    """A step's percentage as lab's record keeps it: a whole number from 0 to 100. Pure."""
    try:
        return max(0, min(100, int(float(value))))
    except (TypeError, ValueError):
        return 0


class Relay(BackgroundLoop):
    name = "bullmq-relay"

    def __init__(self, settings: Settings, records: JobRecords):
        super().__init__()
        self.settings = settings
        self.records = records
        self.keys = records.keys
        self.me = f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self.base = f"{PREFIX}:{settings.queue}.bullmq:"  # BullMQ's keys of lab's queue
        self.redis: Any = None
        self.relayed = 0
        self.woken = threading.Event()

    def wake(self) -> None:
        """Look now, not after the idle wait: a job just went to BullMQ."""
        self.woken.set()

    def prepare(self) -> None:
        if self.redis is None:  # its own client: its reads block for up to BLOCK_MS
            self.redis = redis_client(self.settings, waits_s=BLOCK_MS / 1000)

    def step(self) -> None:
        cursor = self.redis.get(self.keys.bullmq_relay)
        if cursor is None or not self.lead():
            self.woken.wait(IDLE_S)
            self.woken.clear()
            return
        found = self.redis.xread({self.base + "events": cursor}, count=BATCH, block=BLOCK_MS)
        for _stream, entries in found or []:
            for _entry_id, fields in entries:
                self.apply(fields)
            self.redis.set(self.keys.bullmq_relay, entries[-1][0])
            self.relayed += len(entries)

    def lead(self) -> bool:
        """Take or keep the lease; True while this process holds it."""
        key = self.keys.bullmq_relay_lease
        if self.redis.set(key, self.me, nx=True, px=LEASE_MS):
            return True
        if self.redis.get(key) == self.me:
            self.redis.pexpire(key, LEASE_MS)
            return True
        return False

    def stop(self) -> None:
        super().stop()
        self.woken.set()
        if self.redis is not None and self.redis.get(self.keys.bullmq_relay_lease) == self.me:
            self.redis.delete(self.keys.bullmq_relay_lease)  # the next one need not wait

    # --- one event ----------------------------------------------------------------------------
    def apply(self, fields: dict[str, str]) -> None:
        event, job_id = fields.get("event"), fields.get("jobId") or ""
        if event not in ("active", "progress", "completed", "failed", "delayed"):
            return
        if not job_id.startswith(SINGLE) or not is_id(job_id):
            return  # a run's job (`<runId>-<seq>`): nothing to record
        state, attempt, target, cancel = self.redis.hmget(
            self.keys.job(job_id), "state", "attempt", "target", "cancelRequested"
        )
        if target != "bullmq" or attempt is None:
            return  # not a single job of BullMQ's (a run's job has no record)
        job = Job(job_id, None, None, "", int(attempt))
        if event == "active":
            worker = self.redis.hget(self.base + job_id, "pb") or "bullmq"
            self.records.begin(job, worker, False, LEASE, self.settings.queue + ".bullmq")
        elif event == "progress":
            step = _json(fields.get("data"))
            if isinstance(step, dict):
                percent = percent_of(step.get("percent"))
                said = str(step.get("step") or "")
                self.records.progress(job, LEASE, percent, said, str(step.get("message") or said))
        elif event == "completed":
            result = _json(fields.get("returnvalue"))
            result = result if isinstance(result, dict) else {"result": result}
            done = f"attempt {attempt} completed"
            self.records.finish(job, End("completed", LEASE, result=result, message=done))
        elif event == "failed":
            error = fields.get("failedReason") or "failed"
            cancelled = cancel == "1" and error.startswith("cancelled")
            ending = "cancelled" if cancelled else "failed"
            message = (f"attempt {attempt} cancelled" if cancelled else
                       f"attempt {attempt} failed, no attempts left: {error}")  # fmt: skip
            self.records.finish(job, End(ending, LEASE, None if cancelled else error,
                                         message=message))  # fmt: skip
        elif state == "active":  # delayed after it ran: BullMQ retries it after its backoff
            error = self.redis.hget(self.base + job_id, "failedReason") or "failed"
            self.records.finish(job, End("retry", LEASE, error, message=(
                f"attempt {attempt} failed: {error}; attempt {int(attempt) + 1} after "
                "BullMQ's backoff")))  # fmt: skip


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
