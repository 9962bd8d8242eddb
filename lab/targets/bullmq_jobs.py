"""Single jobs on BullMQ: `POST /jobs {"target": "bullmq"}` and what is done to such a job after.

A single job's record is lab's wherever it runs (`lab.runtime.jobs`: its states, log, events
and SSE stream). For a job on BullMQ the record is made first (`target: bullmq`), then the job
is added to BullMQ's queue (`<LAB_QUEUE>.bullmq`) under the record's id, with the record's
budget of attempts, lab's ladder as its backoff and its priority as BullMQ's (high 1, normal 2,
low 3). From then on BullMQ's own events move the record (`lab.targets.bullmq_relay`, in the
API). What a user does maps to BullMQ's operations:

    cancel   a queued job: its record is cancelled and BullMQ's job removed; a running one is
             flagged, and lab's Node worker stops it at its next step (an `UnrecoverableError`,
             which the relay records as `cancelled`)
    retry    the record goes back to `queued` with attempt + 1 and a fresh budget; BullMQ's
             failed job is removed and the job added anew, its attempts counted from there
    delete   the record goes (as for any job), and BullMQ's job with it

Only lab's kinds that lab's Node worker runs (`KINDS`) can go to BullMQ, and at once (no
`delaySeconds` or `runAt`).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from lab.config import Settings
from lab.runtime.jobs import JobRecords
from lab.targets.bullmq import Bullmq, added

KINDS = ("sleep", "index", "synthetic", "agent")  # targets/bullmq/lib/kinds.js
PRIORITIES = {"high": 1, "normal": 2, "low": 3}  # BullMQ: the lowest number goes first


class SubmitError(RuntimeError):
    """BullMQ's Redis did not take the job; the message says why."""


def refusal(kind: str, delayed: bool) -> tuple[str, str] | None:
    """(field, why) when a job cannot go to BullMQ; None when it can. Pure."""
    if importlib.util.find_spec("bullmq") is None:
        return "target", "the bullmq target needs the Python package 'bullmq' (make setup)"
    if kind not in KINDS:
        return "kind", f"the bullmq target runs lab's kinds {', '.join(KINDS)}"
    if delayed:
        return "runAt", "a job on the bullmq target runs at once (no delaySeconds or runAt)"
    return None


class SingleJobs:
    """The API's side of single jobs on BullMQ (one per API process)."""

    def __init__(self, settings: Settings, records: JobRecords):
        self.settings = settings
        self.records = records
        self.bull = Bullmq(settings)

    def submit(self, kind: str, payload: dict[str, Any], attempts: int, priority: str) -> str:
        """A new job on BullMQ, as one outcome: its record and BullMQ's job, or neither
        (`SubmitError`)."""
        self.relay_from_now()
        job_id, _ = self.records.create(kind, payload, attempts, 0, priority, target="bullmq")
        try:
            self.send(job_id)
        except SubmitError:
            self.records.delete(job_id)
            raise
        return job_id

    def relay_from_now(self) -> None:
        """The relay's cursor, the first time a single job goes to BullMQ: the events before
        now are other jobs' (a run's)."""
        key = self.records.keys.bullmq_relay
        if not self.records.redis.exists(key):
            self.records.redis.set(key, self.bull.last_event(), nx=True)

    def send(self, job_id: str) -> None:
        """Add the record's current attempt to BullMQ."""
        out = self.records.message(job_id)
        h = self.records.redis.hmget(self.records.keys.job(job_id), "attempts")
        item = added(out.job, self.settings, attempt_base=out.job.attempt - 1)
        item["opts"]["attempts"] = int(h[0] or self.settings.max_attempts)
        item["opts"]["priority"] = PRIORITIES.get(out.priority, PRIORITIES["normal"])
        status, error = self.bull.send([item])
        if status != "ok":
            raise SubmitError(f"BullMQ's Redis did not take it ({status}: {error})")

    def requeue(self, job_id: str) -> None:
        """A failed or cancelled job back to `queued` with attempt + 1, and to BullMQ."""
        attempt = self.records.retry(job_id)
        try:
            self.removed(job_id)
            if self.bull.has(job_id):
                raise SubmitError("BullMQ still runs its last attempt; retry it once it ended")
            self.send(job_id)
        except SubmitError as exc:
            self.records.unqueue(job_id, attempt, f"could not be queued: {exc}")
            raise

    def removed(self, job_id: str) -> bool:
        """BullMQ's job gone (after a cancel or a delete of its record); False when a worker
        holds it (it stops at its next step, or ends as it would have)."""
        return self.bull.remove(job_id)

    def close(self) -> None:
        self.bull.close()
