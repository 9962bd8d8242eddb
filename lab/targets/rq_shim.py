"""The shim for RQ: a worker class, the one thing a user's RQ deployment changes to be measured.

    rq worker -w lab.targets.rq_shim.Worker QUEUE          # with the LAB_* settings in its env

`Worker` is RQ's `SimpleWorker` (each job runs in the worker's own process, so the process a
supervisor watches, kills or freezes is the one holding the job) that tells lab's shim about
every job whose id is a lab job id: `started` once RQ has marked it started, `ended` (`done`,
`retry`, or `failed` when RQ gives up on it for good) just before RQ records how it ended. A
job RQ finished therefore is always counted, even if the worker is killed a moment later: a
finished job's count goes to Redis before RQ's record of it, one script call per job (RQ works
job by job, so no batch would be durable). A `SimpleWorker` class of your own takes the hooks
from `Shimmed` (in a forking worker they would run in each job's work horse, a shim a job).

A worker killed mid-job leaves its job `started` in RQ; RQ's `StartedJobRegistry` abandons it
once its heartbeat lapses (the job's timeout + 60 s) at a worker's next maintenance, running the
job's failure callback (`abandoned`, which lab's submit sets on every job) and then retrying it
if it has retries left, or failing it for good, which `abandoned` counts.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from rq.worker import SimpleWorker

from lab.targets import rq as target
from lab.targets.shim import Attempt, Shim, job_of


class CountingShim(Shim):
    """The shim whose `flush` returns only once every job that ended before it is counted,
    whichever thread flushes (its own thread may be sending that job's count right then)."""

    def __init__(self) -> None:
        super().__init__()
        self._one_flush = threading.Lock()

    def flush(self) -> int:
        with self._one_flush:
            return super().flush()


@functools.cache
def counter() -> CountingShim:
    """This process's shim (RQ's worker is one thread), made on first use from `LAB_*`."""
    return CountingShim()


def begin(job: Any) -> Attempt | None:
    """The attempt of RQ job `job` starting now; None when it is not a lab job."""
    if job_of(job.id) is None:
        return None
    meta = job.meta if isinstance(job.meta, dict) else {}
    found = meta.get("lab")
    lab: dict[str, Any] = found if isinstance(found, dict) else {}
    attempt = target.attempt_of(meta, job.retries_left)
    created = float(lab.get("createdAt") or 0)
    released = created if attempt == 1 else target.epoch_ms(job.enqueued_at)
    return counter().started(job.id, attempt, str(lab.get("kind") or "task"), created, released)


def end(begun: Attempt | None, outcome: str, durable: bool = True) -> None:
    """`begun` ended; with `durable`, a job's end (not a retry) is counted before this returns,
    else with the next batch (within `shim.FLUSH_S`)."""
    if begun is None:
        return
    shim = counter()
    shim.ended(begun, outcome)
    if durable and outcome != "retry":
        shim.flush()


class Shimmed:
    """The hooks, for a `SimpleWorker` subclass (put it first among the bases)."""

    _lab_attempt: Attempt | None = None
    # False: ends are counted in batches, one script call per `shim.FLUSH_S` rather than per
    # job, at the price of the last batch's counts when the worker is killed (those jobs then
    # show as lost although RQ finished them).
    count_before_finish = True

    def work(self, *args: Any, **kwargs: Any) -> bool:
        counter().start()  # in /status from the start, not from its first job
        return bool(super().work(*args, **kwargs))  # type: ignore[misc]

    def prepare_job_execution(self, job: Any, *args: Any, **kwargs: Any) -> None:
        super().prepare_job_execution(job, *args, **kwargs)  # type: ignore[misc]
        self._lab_attempt = begin(job)

    def _lab_end(self, job: Any, outcome: str) -> None:
        begun, self._lab_attempt = self._lab_attempt, None
        if begun is not None and begun.job_id == job.id:
            end(begun, outcome, self.count_before_finish)

    def handle_job_success(self, job: Any, *args: Any, **kwargs: Any) -> None:
        self._lab_end(job, "done")
        super().handle_job_success(job, *args, **kwargs)  # type: ignore[misc]

    def handle_job_failure(self, job: Any, *args: Any, **kwargs: Any) -> None:
        # RQ retries what raised while the job has retries left, unless it was stopped.
        stopped = getattr(self, "_stopped_job_id", None) == job.id
        self._lab_end(job, "retry" if job.should_retry and not stopped else "failed")
        super().handle_job_failure(job, *args, **kwargs)  # type: ignore[misc]

    def handle_job_retry(self, job: Any, queue: Any, retry: Any, *args: Any, **kwargs: Any) -> None:
        # A job that returned `Retry`: RQ fails it once it has retried `retry.max` times.
        spent = bool(job.number_of_retries and job.number_of_retries >= retry.max)
        self._lab_end(job, "failed" if spent else "retry")
        super().handle_job_retry(job, queue, retry, *args, **kwargs)  # type: ignore[misc]


class Worker(Shimmed, SimpleWorker):
    """RQ's `SimpleWorker`, measured by lab."""


def abandoned(job: Any, connection: Any, exc_type: Any, *exc_info: Any) -> None:
    """RQ's failure callback (set on every job lab submits). RQ calls it for every failed
    attempt, where the worker's hooks already told lab; this counts only a job RQ abandoned
    (its worker died holding it) and will not retry: failed for good."""
    del connection, exc_info
    from rq.exceptions import AbandonedJobError

    found = job_of(job.id)
    if exc_type is not AbandonedJobError or job.should_retry or found is None:
        return
    # Whatever process runs RQ's maintenance calls this: count only into a lab that knows the
    # run (a process without lab's settings would otherwise count into the default one).
    shim = counter()
    if shim.stores.redis.exists(shim.stores.keys.run(found[0])):
        end(begin(job), "failed")
