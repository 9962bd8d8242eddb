"""lab's RQ app: the task that runs lab's kinds on RQ, the worker `lab up --target rq` starts, and
the settings module its command reads (`rq worker -c lab.targets.rq_app`: `REDIS_URL` from
`LAB_REDIS_URL`, so the URL is never on a command line).

`run` runs one attempt of a lab job (`lab.targets.tasks.run_attempt`) with RQ's attempt count.
A `Retryable` failure raises, and RQ retries it as the job's `Retry` says (lab's submit gives
`LAB_MAX_ATTEMPTS - 1` retries on the ladder); a `Permanent` one takes the job's remaining
retries away first, so RQ fails it for good at once (RQ retries whatever raises; it has no
exception that says "never again").

`Worker` is the shim's worker (`lab.targets.rq_shim.Worker`, as a user's app would use it) that
also runs RQ's scheduler, which moves a retry back to the queue when its delay is over, on a
thread of its own: RQ's `--with-scheduler` forks it into a process of its own, which a kill -9
of the worker would leave behind. Every worker tries each second to hold the queue's scheduler
lock; one holds it (RQ's lock lasts a minute past its holder's last refresh, so after a kill
the retries wait up to a minute for another worker to take it).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import redis
from rq import get_current_job
from rq.scheduler import RQScheduler

from lab import config
from lab.targets import rq as target
from lab.targets import rq_shim
from lab.targets.tasks import Permanent, run_attempt

log = logging.getLogger("lab.targets.rq_app")

REDIS_URL = config.load().redis_url  # read by `rq worker -c lab.targets.rq_app`


def run(message: str) -> dict[str, Any]:
    """One attempt of lab job `message` (its JSON)."""
    job = get_current_job()
    attempt = target.attempt_of(job.meta, job.retries_left) if job is not None else 1
    try:
        return run_attempt(message, attempt, (job.worker_name or "") if job else "")
    except Permanent:
        if job is not None:
            job.retries_left = 0
        raise


class Worker(rq_shim.Worker):
    """The shim's worker, with RQ's scheduler on a thread (see the module's docstring)."""

    def work(self, *args: Any, **kwargs: Any) -> bool:
        kwargs["with_scheduler"] = False  # never forked: see the module's docstring
        concurrency = config.load().concurrency
        if concurrency > 1:
            log.warning("lab: an RQ worker runs one job at a time; LAB_CONCURRENCY=%d does "
                        "not apply (start more workers: --workers N)", concurrency)  # fmt: skip
        stop = threading.Event()
        thread = threading.Thread(target=self._schedule, args=(stop,), name="rq-scheduler",
                                  daemon=True)  # fmt: skip
        thread.start()
        try:
            return bool(super().work(*args, **kwargs))
        finally:
            stop.set()
            thread.join(timeout=5)

    def _schedule(self, stop: threading.Event) -> None:
        scheduler = RQScheduler(self.queues, connection=self.connection,
                                serializer=self.serializer)  # fmt: skip
        while not stop.wait(scheduler.interval):
            try:
                if scheduler.acquire_locks():
                    scheduler.enqueue_scheduled_jobs()
            except redis.RedisError as exc:
                log.warning("lab: RQ's scheduler: %s", exc)
        with contextlib.suppress(redis.RedisError):  # else the lock expires by itself
            scheduler.release_locks()
