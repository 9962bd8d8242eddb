"""`arq`: arq (asyncio, Redis as its broker) as a target.

Submitting: `submit` is called from the scheduler's thread, and arq's client is asyncio, so the
client (`ArqRedis`) lives on an event loop of its own in a thread of its own, opened once; a
batch is enqueued there with `enqueue_job`, up to `WINDOW` jobs at once (each is arq's WATCH,
EXISTS, MULTI/EXEC on a connection of its own), and `submit` waits until every job of the batch
has its answer.

- The arq job id is the lab job id (`_job_id`), so the shim finds the job from the id alone.
  arq refuses a second enqueue of an id while its job or its result exists (`enqueue_job`
  answers None): such a submit is `ok` (arq holds that job, which runs once), with its `error`
  saying it was a duplicate. After the result's `keep_result`, the same id would run again.
- lab's release time (`createdAt`) travels as the job's due time (`_defer_until`, arq's score),
  the one field of an arq job a producer sets besides the function and its arguments: the
  shim reads it back (`ctx['score']`) as when the attempt was due.
- lab's kinds run as one arq function (`LAB_TASK`, `lab.targets.arq_app`) whose one argument is
  the lab job's JSON; a run of the `task` kind enqueues the user's function by its arq name
  (`payload.task`) with `payload.args` and `payload.kwargs`, `"{seq}"` and `"{jobId}"` filled.
- Outcomes: an answer from Redis is `ok`; Redis unreachable (refused, or a connect that timed
  out) is `failed`, and the jobs not yet tried are `failed` without being tried; a command that
  timed out or a connection lost once sent is `indeterminate` (the MULTI/EXEC may have run).

Its keys: the queue (a sorted set named `self.queue`, `<LAB_QUEUE>.arq`) and `<queue>:health-
check` are this lab's own; arq's per-job keys (`arq:job:`, `arq:retry:`, `arq:in-progress:`,
`arq:result:` + job id) are global to the Redis database, named by lab job ids, and `purge`
deletes the ones whose run is this lab's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from lab.config import Settings
from lab.runtime.messages import Job
from lab.runtime.stores import Stores
from lab.targets import Backlog, Outcome, Status, Target
from lab.targets.shim import job_of

LAB_TASK = "run_lab_job"  # the arq function of lab's kinds (lab.targets.arq_app)
TASK = "task"  # the kind whose payload names a user's own function
WINDOW = 32  # enqueues in flight at once, each on a connection of its own
HEAD = 1000  # how far into the queue `backlog` looks for jobs a worker holds
# Keyword names arq's `enqueue_job` takes itself: a user's task cannot receive them through it.
RESERVED = frozenset({"function", "_job_id", "_queue_name", "_defer_until", "_defer_by",
                      "_expires", "_job_try"})  # fmt: skip


class Refused(ValueError):
    """This job cannot be enqueued as it is (its payload); the others can."""


class Arq(Target, type="arq"):
    help = (
        "arq (asyncio) workers with Redis as the broker: `arq lab.targets.arq_app.WorkerSettings`"
    )
    packages = ("arq",)
    services = ("redis_url", "es_url")

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: Any = None

    def worker_argv(self, python: str, concurrency: int) -> list[str]:
        """One arq worker process (arq's own command) running lab's app with `concurrency`
        jobs at once (`max_jobs`) on its event loop; lab's kinds run on as many threads, so the
        pid the supervisor kills or freezes is the one that holds every job it took."""
        return ["env", f"LAB_CONCURRENCY={concurrency}", python, "-m", "arq",
                "--custom-log-dict", "lab.targets.arq_app.LOGGING",
                "lab.targets.arq_app.WorkerSettings"]  # fmt: skip

    # --- submitting ---------------------------------------------------------------------------
    def open(self) -> None:
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="lab-arq-submit",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        self._loop = loop
        # Made on its loop; it connects at its first command, so opening never waits for Redis.
        self._pool = self._call(self._make_pool(), self.settings.redis_timeout_s)

    async def _make_pool(self) -> Any:
        from arq.connections import ArqRedis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        timeout = self.settings.redis_timeout_s
        # No retries of its own: a command that failed is answered as such, never sent twice.
        pool = ArqRedis.from_url(self.settings.redis_url, socket_timeout=timeout,
                                 socket_connect_timeout=timeout, max_connections=WINDOW,
                                 retry=Retry(NoBackoff(), 0))  # fmt: skip
        pool.default_queue_name = self.queue
        return pool

    def _call(self, coroutine: Any, timeout_s: float) -> Any:
        assert self._loop is not None, "open() first"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        if self._pool is not None:
            # Closing: whatever fails here, the connections go with the loop.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._pool.aclose(), loop).result(5)
            self._pool = None
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        loop.close()

    def submit(self, jobs: Sequence[Job]) -> list[Outcome]:
        if not jobs:
            return []
        self.open()
        # Each command has its own deadline (redis_timeout_s); this one only guards the loop.
        limit = 2 * self.settings.redis_timeout_s * (1 + len(jobs) / WINDOW) + 5
        try:
            return list(self._call(self._enqueue_all(jobs), limit))
        except concurrent.futures.TimeoutError:
            why = f"no answer within {limit:.0f} s"
            return [Outcome("indeterminate", error=why) for _ in jobs]

    async def _enqueue_all(self, jobs: Sequence[Job]) -> list[Outcome]:
        outcomes: list[Outcome] = [Outcome("failed")] * len(jobs)
        broken: list[str] = []  # the first error that is not a job's own
        window = asyncio.Semaphore(WINDOW)

        async def one(i: int, job: Job) -> None:
            async with window:
                if broken:
                    outcomes[i] = Outcome("failed", error=f"not tried: {broken[0]}")
                    return
                try:
                    outcomes[i] = await self._enqueue(job)
                except Refused as exc:
                    outcomes[i] = Outcome("failed", error=str(exc))
                except Exception as exc:  # noqa: BLE001 - Redis away: this job and the rest
                    broken.append(f"{type(exc).__name__}: {exc}")
                    outcomes[i] = Outcome(sent_status(exc), error=broken[-1])

        await asyncio.gather(*(one(i, job) for i, job in enumerate(jobs)))
        return outcomes

    async def _enqueue(self, job: Job) -> Outcome:
        function, args, kwargs = call_of(job)
        due = datetime.fromtimestamp(job.createdAt / 1000, UTC) if job.createdAt else None
        found = await self._pool.enqueue_job(function, *args, _job_id=job.jobId,
                                             _queue_name=self.queue, _defer_until=due,
                                             **kwargs)  # fmt: skip
        if found is None:
            return Outcome("ok", job.jobId, "duplicate: arq already holds this job id (queued, "
                           "running, or its result kept); not enqueued again")  # fmt: skip
        return Outcome("ok", job.jobId)

    # --- what the broker holds ----------------------------------------------------------------
    def _redis(self) -> Any:
        import redis

        t = self.settings.redis_timeout_s
        return redis.Redis.from_url(self.settings.redis_url, decode_responses=True,
                                    socket_timeout=t, socket_connect_timeout=t)  # fmt: skip

    def backlog(self) -> Backlog:
        """Jobs due and not taken by a worker, and how long the oldest has been due. arq keeps
        a job in its queue until it ends, holding a taken one with its in-progress key; workers
        take from the queue's head, so those are looked for among the first `HEAD`. Retries
        waiting out their delay are not due yet, and not counted."""
        from arq.constants import in_progress_key_prefix

        r = self._redis()
        try:
            now = time.time() * 1000
            pipe = r.pipeline(transaction=False)
            pipe.zcount(self.queue, "-inf", now)
            pipe.zrangebyscore(self.queue, "-inf", now, start=0, num=HEAD, withscores=True)
            due, head = pipe.execute()
            pipe = r.pipeline(transaction=False)
            for job_id, _score in head:
                pipe.exists(in_progress_key_prefix + job_id)
            taken = pipe.execute() if head else []
        finally:
            r.close()
        waiting = [score for (_id, score), held in zip(head, taken, strict=True) if not held]
        oldest = int(now - waiting[0]) if waiting else None
        return Backlog(max(0, int(due) - sum(map(bool, taken))), oldest)

    def purge(self) -> None:
        """The queue, its health-check key, and arq's keys of every job of this lab's runs."""
        from arq import constants

        prefixes = (constants.job_key_prefix, constants.retry_key_prefix,
                    constants.in_progress_key_prefix, constants.result_key_prefix)  # fmt: skip
        stores = Stores.of(self.settings)
        r = self._redis()
        try:
            runs = set(stores.redis.zrange(stores.keys.runs, 0, -1))
            doomed = [self.queue, self.queue + constants.health_check_key_suffix]
            for job_id, _score in r.zscan_iter(self.queue):
                doomed += [prefix + job_id for prefix in prefixes]
            for key in r.scan_iter(match="arq:*", count=1000):
                prefix = next((p for p in prefixes if key.startswith(p)), None)
                found = job_of(key[len(prefix) :]) if prefix else None
                if found and found[0] in runs:
                    doomed.append(key)
            for at in range(0, len(doomed), 500):
                r.delete(*doomed[at : at + 500])
        finally:
            r.close()


def call_of(job: Job) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """The arq function, arguments and keywords that run `job`. Pure."""
    if job.kind != TASK:
        return LAB_TASK, (job.to_json().decode(),), {}
    payload = job.payload
    task, args, kwargs = payload.get("task"), payload.get("args", []), payload.get("kwargs", {})
    if not isinstance(task, str) or not task:
        raise Refused("payload.task: the name of one of the app's arq functions")
    if not isinstance(args, list):
        raise Refused("payload.args: must be a list")
    if not isinstance(kwargs, dict):
        raise Refused("payload.kwargs: must be an object")
    clash = sorted(RESERVED.intersection(kwargs))
    if clash:
        raise Refused(f"payload.kwargs.{clash[0]}: arq's enqueue_job takes this name itself")
    return task, tuple(filled(args, job)), filled(kwargs, job)


def filled(value: Any, job: Job) -> Any:
    """`value` with every string `"{seq}"` replaced by the job's seq and `"{jobId}"` by its
    id, at any depth (keys stay as they are). Pure."""
    if value == "{seq}":
        return job.seq
    if value == "{jobId}":
        return job.jobId
    if isinstance(value, list):
        return [filled(v, job) for v in value]
    if isinstance(value, dict):
        return {k: filled(v, job) for k, v in value.items()}
    return value


def sent_status(exc: BaseException) -> Status:
    """`failed` when Redis was not reached (nothing was sent), else `indeterminate`: a command
    that timed out or lost its connection once sent may have run. Pure."""
    import redis

    text = str(exc)
    if isinstance(exc, redis.TimeoutError):
        return "failed" if text.startswith("Timeout connecting") else "indeterminate"
    if isinstance(exc, (redis.ConnectionError, OSError)):
        return "failed" if "connecting" in text or isinstance(exc, ConnectionRefusedError) else (
            "indeterminate")  # fmt: skip
    return "failed"
