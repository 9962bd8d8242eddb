"""`rq`: RQ (2.x and 3.x) as the system under test, with Redis (`LAB_REDIS_URL`) as its broker.

A run's job is an RQ job whose id is the lab job id (`enqueue(..., job_id=...)`; RQ takes ids of
letters, digits, `_` and `-`, which every run's `<runId>-<seq>` is), enqueued on `self.queue`
(`<LAB_QUEUE>.rq`), never on lab's own queues. lab's kinds run `lab.targets.rq_app.run` with the
job's JSON as its one argument and `Retry(max=LAB_MAX_ATTEMPTS - 1, interval=[...])` (the retry
ladder, in RQ's whole seconds); the `task` pseudo-kind runs the user's function named by
`payload["task"]`, with its args, and no `Retry` (RQ's default: an exception fails it for good).
lab's metadata (`createdAt`, kind, retries) rides in the job's `meta["lab"]`, never in its args.

A batch is one MULTI/EXEC: `ok` when Redis answered it; `failed` when Redis could not be reached
(a PING first: nothing was sent), `indeterminate` when the transaction was sent and no answer
came. RQ runs one job at a time per worker process (`lab up --target rq --workers N`: N jobs at
once); its worker (`rq worker -w lab.targets.rq_app.Worker`) runs jobs in its own process, so
a kill -9 of the process lab supervises kills the job it held (`docs/guides/your-pipeline.md`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from lab.runtime.messages import Job
from lab.runtime.patience import brief
from lab.targets import Backlog, Outcome, Status, Target, usertask

RUN = "lab.targets.rq_app.run"  # the task that runs a lab kind's job
ABANDONED = "lab.targets.rq_shim.abandoned"  # told when RQ gives up on a job a worker held
# RQ's own rule for an id chosen by the producer (rq.job.JOB_ID_PATTERN).
RQ_ID = re.compile(r"[A-Za-z0-9_-]+")


def intervals(ladder_ms: Sequence[int], retries: int) -> list[int]:
    """RQ's retry intervals (whole seconds, at least 1) for `retries` retries from lab's ladder
    (ms; its last step repeats). Pure."""
    steps = list(ladder_ms) or [1000]
    return [max(1, math.ceil(steps[min(i, len(steps) - 1)] / 1000)) for i in range(retries)]


def meta_of(job: Job, retries: int) -> dict[str, Any]:
    """What an RQ job carries for lab beside its args. Pure."""
    return {"lab": {"createdAt": job.createdAt, "kind": job.kind, "retries": retries}}


def attempt_of(meta: dict[str, Any] | None, retries_left: int | None) -> int:
    """The attempt RQ runs now, from the retries it was given (`meta["lab"]["retries"]`) and
    those it has left (RQ counts down; it keeps no attempt count). Pure."""
    lab = (meta or {}).get("lab") or {}
    retries = lab.get("retries") if isinstance(lab, dict) else 0
    if not isinstance(retries, int) or retries_left is None:
        return 1
    return max(1, 1 + retries - retries_left)


def epoch_ms(when: datetime | None) -> float:
    """An RQ time (UTC, aware) as epoch ms; 0 when RQ has none."""
    return when.timestamp() * 1000 if when is not None else 0.0


class Rq(Target, type="rq"):
    help = "RQ: jobs in Redis, run by `rq worker` one at a time per process (--workers N)"
    packages = ("rq",)
    services = ("redis_url", "es_url")

    def worker_argv(self, python: str, concurrency: int) -> list[str]:
        """RQ's own worker command. `concurrency` cannot apply: an RQ worker runs one job at a
        time (its default class forks a work horse per job; lab's runs the job in the process
        it supervises, `rq_app.Worker`), so N jobs at once are N workers (`--workers N`). The
        Redis URL comes from `rq_app`'s settings (`-c`), never on the command line."""
        del concurrency
        return [python, "-m", "rq.cli", "worker", "-c", "lab.targets.rq_app",
                "-w", "lab.targets.rq_app.Worker", "--logging_level", "WARNING",
                "--disable-job-desc-logging", self.queue]  # fmt: skip

    def connection(self) -> Any:
        """A client RQ can use (replies as bytes), with lab's deadlines and no silent retry
        (a retried transaction could enqueue twice)."""
        import redis

        s = self.settings
        return redis.Redis.from_url(s.redis_url, socket_timeout=s.redis_timeout_s,
                                    socket_connect_timeout=s.redis_timeout_s)  # fmt: skip

    _redis: Any = None  # made by `open`, closed by `close`

    def open(self) -> None:
        if self._redis is None:
            self._redis = self.connection()

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    def _enqueued(self, job: Job) -> Any:
        """The RQ job data of a lab job; ValueError when RQ cannot take it (its own fault)."""
        from rq import Callback, Queue, Retry

        if not RQ_ID.fullmatch(job.jobId):
            raise ValueError(f"RQ takes ids of letters, digits, _ and - only: {job.jobId!r}")
        # Failed jobs stay as long as lab keeps a run; a finished one, RQ's result_ttl.
        common: dict[str, Any] = {"job_id": job.jobId, "on_failure": Callback(ABANDONED),
                                  "failure_ttl": int(self.settings.run_retention_s)}  # fmt: skip
        if job.kind == "task":
            sent = usertask.call(job)  # its placeholders filled
            if not sent.name:
                raise ValueError("payload.task: must name the task to run")
            return Queue.prepare_data(sent.name, args=sent.args, kwargs=sent.kwargs,
                                      meta=meta_of(job, 0), **common)  # fmt: skip
        retries = max(0, self.settings.max_attempts - 1)
        ladder = intervals(self.settings.retry_ladder, retries)
        retry = Retry(max=retries, interval=ladder) if retries else None
        return Queue.prepare_data(
            RUN, args=(job.to_json().decode(),), meta=meta_of(job, retries), retry=retry, **common
        )

    def submit(self, jobs: Sequence[Job]) -> list[Outcome]:
        """One transaction for the batch (see the module's docstring for the outcomes)."""
        import redis
        from rq import Queue

        self.open()
        outcomes: list[Outcome | None] = [None] * len(jobs)
        datas, taken = [], []
        for i, job in enumerate(jobs):
            try:
                datas.append(self._enqueued(job))
                taken.append(i)
            except ValueError as exc:
                outcomes[i] = Outcome("failed", error=str(exc))
        if not datas:
            return [o or Outcome("failed") for o in outcomes]
        status: Status = "ok"
        error = ""
        try:
            self._redis.ping()  # reached: what fails from here on may have been applied
        except redis.RedisError as exc:
            status, error = "failed", brief(exc)
        if status == "ok":
            try:
                with self._redis.pipeline() as pipe:
                    Queue(self.queue, connection=self._redis).enqueue_many(datas, pipeline=pipe)
                    pipe.execute()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                status, error = "indeterminate", brief(exc)
            except redis.RedisError as exc:  # refused (out of memory, read-only): not applied
                status, error = "failed", brief(exc)
        for i in taken:
            outcomes[i] = Outcome(status, jobs[i].jobId if status == "ok" else "", error)
        return [o or Outcome("failed") for o in outcomes]

    def backlog(self) -> Backlog:
        """Jobs in the queue (not those RQ holds for a retry's delay), and how long ago the one
        at its head was enqueued (RQ writes `enqueued_at` on each job)."""
        from rq import Queue
        from rq.job import Job as RqJob
        from rq.utils import utcparse

        self.open()
        queue = Queue(self.queue, connection=self._redis)
        pipe = self._redis.pipeline(transaction=False)
        pipe.llen(queue.key)
        pipe.lindex(queue.key, 0)
        depth, head = pipe.execute()
        if not head:
            return Backlog(int(depth))
        when = self._redis.hget(RqJob.key_for(head.decode()), "enqueued_at")
        if not when:
            return Backlog(int(depth))
        age = time.time() * 1000 - epoch_ms(utcparse(when.decode()))
        return Backlog(int(depth), max(0, int(age)))

    def purge(self) -> None:
        """Every job this target's queue knows (waiting, running, done, failed, scheduled) with
        its results and executions, the queue's own keys, and its workers' registrations (call
        it once they have stopped). RQ's keys of other queues are left alone."""
        self.open()
        purge(self._redis, self.queue)


def purge(connection: Any, name: str) -> None:
    """Delete what RQ keeps of queue `name` (see `Rq.purge`) in a few round trips."""
    from rq import Queue
    from rq.defaults import RQ_KEY_PREFIX
    from rq.job import parse_job_id
    from rq.scheduler import RQScheduler
    from rq.worker_registration import REDIS_WORKER_KEYS, WORKERS_BY_QUEUE_KEY

    queue = Queue(name, connection=connection)
    registries = [queue.started_job_registry, queue.finished_job_registry,
                  queue.failed_job_registry, queue.deferred_job_registry,
                  queue.ready_job_registry, queue.scheduled_job_registry,
                  queue.canceled_job_registry]  # fmt: skip
    workers_key = WORKERS_BY_QUEUE_KEY % name
    pipe = connection.pipeline(transaction=False)
    pipe.lrange(queue.key, 0, -1)
    pipe.lrange(queue.intermediate_queue_key, 0, -1)
    for registry in registries:
        pipe.zrange(registry.key, 0, -1)
    pipe.smembers(workers_key)
    *listed, workers = pipe.execute()
    entries = {e.decode() for found in listed for e in found}  # ids, or `<id>:<execution id>`
    keys = [queue.key, queue.intermediate_queue_key, queue.registry_cleaning_key, workers_key,
            RQScheduler.get_locking_key(name), *(r.key for r in registries)]  # fmt: skip
    # A job's keys, as rq names them (job.py, results.py, executions.py), and its executions,
    # which outlive the registries' entries (one a worker died holding, say) until their TTL.
    ids = sorted({parse_job_id(e) for e in entries})
    pipe = connection.pipeline(transaction=False)
    for job_id in ids:
        pipe.zrange(f"{RQ_KEY_PREFIX}:executions:{job_id}", 0, -1)
    for job_id, executions in zip(ids, pipe.execute() if ids else [], strict=True):
        keys += [f"{RQ_KEY_PREFIX}:execution:{job_id}:{e.decode()}" for e in executions]
        keys += [f"{RQ_KEY_PREFIX}:{part}" for part in (
            f"job:{job_id}", f"job:{job_id}:dependents", f"job:{job_id}:dependencies",
            f"results:{job_id}", f"executions:{job_id}")]  # fmt: skip
    pipe = connection.pipeline(transaction=False)
    for start in range(0, len(keys), 1000):
        pipe.unlink(*keys[start : start + 1000])
    pipe.srem(f"{RQ_KEY_PREFIX}:queues", queue.key)
    if workers:  # a worker killed -9 stays listed (and its keys live out their TTL)
        pipe.srem(REDIS_WORKER_KEYS, *workers)
        pipe.unlink(*workers, *(w + b":executions" for w in workers))
    pipe.execute()
