"""One job on its own, under the worker's concurrency limit: single jobs (`POST /jobs`, with a
record in Redis) and run jobs of kinds that declare `BATCHABLE = False`. Each delivery in hand
has a thread; `concurrency` of them run a job at once (the slots), and a job's document and
count are written after its slot is free.

A single job's record decides whether a delivery runs (`JobRecords.begin`: cancelled, deleted,
superseded, paused, or owned by another worker's live lease), takes its progress steps, and
takes its outcome, each through a script that writes nothing unless this worker still holds the
attempt's lease. That is why the record is not a middleware: it decides whether a delivery runs
at all and what becomes of its message, not only what is counted about it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lab.runtime.attempts import Begin, End
from lab.runtime.batch import Delivery, Outcome, Result, budget_of, execute, prepare
from lab.runtime.patience import Stopping
from lab.runtime.progress import NO_PROGRESS, JobContext

if TYPE_CHECKING:
    from lab.runtime.forward import Forwarder
    from lab.runtime.middleware.stack import Stack
    from lab.runtime.recording import Recorder
    from lab.runtime.retry import Budget
    from lab.runtime.seams import WorkerSeam

log = logging.getLogger("lab.runtime.worker")


class SingleRunner:
    """Runs one delivery at a time for `worker`, with the worker's middleware, recorder and
    forwarder; `run_budget` is the attempts a run's job has unless its kind says otherwise."""

    def __init__(
        self,
        worker: WorkerSeam,
        middleware: Stack,
        recorder: Recorder,
        forwarder: Forwarder,
        run_budget: Budget,
        slots: int,
    ):
        self.worker = worker
        self.middleware, self.recorder, self.forwarder = middleware, recorder, forwarder
        self.run_budget = run_budget
        # A job holds a slot while it runs, not while its document and count are written: a
        # worker of N slots runs N jobs of 100 ms at 10 × N a second, as its users reckon.
        self._slots = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.running = 0  # jobs in a slot now

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        with self._slots:
            with self._lock:
                self.running += 1
            try:
                yield
            finally:
                with self._lock:
                    self.running -= 1

    def run(self, deliveries: list[Delivery]) -> Result | None:
        """Ask the record whether to run, run with progress, write, finish the record; None
        when stopping during an outage (the delivery stays unacked)."""
        w = self.worker
        (delivery,) = deliveries
        outcome, handler = prepare(delivery)
        budget = budget_of(handler, self.run_budget) if handler is not None else self.run_budget
        job = outcome.job
        try:
            if handler is not None and job is not None:
                with self._slot():  # taken before the record says "running"
                    ctx = NO_PROGRESS
                    if job.runId is None:
                        begin = w.patiently(lambda: self._begin(outcome), "Redis")
                        if not begin.run:
                            return [self._not_now(outcome, begin)], (0, 0)
                        if begin.tracked:
                            outcome.tracked = True
                            budget = begin.budget or budget
                            ctx = JobContext(
                                functools.partial(w.records.progress, job, outcome.lease)
                            )
                    elif self.middleware.before_process(w, [delivery]) == "requeue":
                        outcome.verdict = "requeued"
                        return [outcome], (0, 0)
                    w.active_jobs[job.jobId] = outcome.lease
                    try:
                        execute(outcome, handler, w.id, budget, ctx)
                    finally:
                        w.active_jobs.pop(job.jobId, None)
                if outcome.tracked and not self._still_owned(outcome):
                    return [outcome], (0, 0)
            counted = self.recorder.write_isolating([outcome], budget)
            if outcome.tracked and outcome.verdict != "retry":
                # A retry is recorded after its message is published (Worker.done).
                w.patiently(lambda: self.finish_record(outcome), "Redis")
        except Stopping:
            return None
        except Exception as exc:  # its record's script failed: this job fails, the worker goes on
            log.exception("job %s failed inside the worker", job.jobId if job else "?")
            if outcome.verdict not in ("dead", "skipped"):
                outcome.fail(f"internal error: {exc!r}", budget)
            return [outcome], (0, 0)
        return [outcome], counted

    def _begin(self, outcome: Outcome) -> Begin:
        """Ask the job's record whether this delivery runs; if it does, the attempt is owned by
        a fresh lease token, kept on the outcome for its progress steps and its finish."""
        w = self.worker
        job = outcome.job
        assert job is not None
        lease = f"{w.id}/{uuid.uuid4().hex[:12]}"
        delivery = outcome.delivery
        begin = w.records.begin(job, w.id, delivery.redelivered, lease, delivery.queue)
        if begin.run and begin.tracked:
            outcome.lease = lease
        return begin

    @staticmethod
    def _not_now(outcome: Outcome, begin: Begin) -> Outcome:
        """A single job that does not run on this delivery, and what becomes of the message."""
        job = outcome.job
        assert job is not None
        if begin.paused:
            outcome.verdict = "requeued"
        elif begin.busy_ms:
            outcome.verdict, outcome.defer_ms = "deferred", begin.busy_ms
            log.info("job %s attempt %d is %s; looking again later", job.jobId, job.attempt,
                     begin.reason)  # fmt: skip
        else:
            outcome.verdict = "skipped"
            log.info("skipping job %s: %s", job.jobId, begin.reason)
        return outcome

    def _still_owned(self, outcome: Outcome) -> bool:
        """After the handler: is the attempt still this worker's? If another took it over (this
        one was frozen or cut off past its lease), the attempt writes nothing at all."""
        w = self.worker
        job = outcome.job
        assert job is not None
        if w.patiently(lambda: w.records.renew({job.jobId: outcome.lease}), "Redis"):
            return True
        log.warning("job %s attempt %d was taken over by another worker; writing nothing",
                    job.jobId, job.attempt)  # fmt: skip
        outcome.verdict = "skipped"
        return False

    def finish_record(self, outcome: Outcome) -> None:
        """End the attempt in its record; the script writes nothing if the lease is not ours."""
        w = self.worker
        job = outcome.job
        assert job is not None
        lease = outcome.lease

        def end(kind: str, error: str | None = None, **fields: Any) -> None:
            w.records.finish(job, End(kind, lease, error, **fields))

        if outcome.verdict == "written":
            assert outcome.doc is not None
            result = outcome.doc["result"]
            end("completed", result=result, message=f"attempt {job.attempt} completed")
        elif outcome.verdict == "cancelled":
            end("cancelled", message=f"attempt {job.attempt} cancelled")
        elif outcome.verdict == "dead":
            message = f"attempt {job.attempt} failed, no attempts left: {outcome.error}"
            end("failed", error=outcome.error, message=message)
        elif outcome.verdict == "retry":
            delay = self.forwarder.retry_delay(outcome)
            message = (f"attempt {job.attempt} failed: {outcome.error}; "
                       f"attempt {job.attempt + 1} in {delay} ms")  # fmt: skip
            end("retry", error=outcome.error, message=message)
