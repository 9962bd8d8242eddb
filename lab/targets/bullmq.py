"""`bullmq`: BullMQ, the Node job queue on Redis (`LAB_REDIS_URL`), as the system under test.

lab submits with the official Python client (`bullmq` on PyPI, its Lua scripts the same as the
npm package's that the Node worker runs: `targets/bullmq/package.json` pins the pair, and a test
compares the scripts). A run's job is a BullMQ job on queue `self.queue` (`<LAB_QUEUE>.bullmq`,
keys `bull:<queue>:*`, BullMQ's default prefix, so a user's worker needs no option) whose id is
the lab job id, so a second add of a job is BullMQ's own no-op, never a second job. Its data
carries lab's job message and, beside it, lab's metadata (`data.lab`: `createdAt`, kind, the
retry ladder); a seed above 2^53 - 1 travels as text, since JavaScript would round the number.
lab's kinds get `attempts` = `LAB_MAX_ATTEMPTS` and a `{type: 'lab'}` backoff that lab's worker
turns into `LAB_RETRY_LADDER_MS`; a kind's permanent failure is BullMQ's `UnrecoverableError`
(no retry). A `task` run sends the user's job by name (`payload.task`) with `{args, kwargs,
lab}` as its data and no attempts (BullMQ's default: a throw fails it for good).

A batch is one MULTI/EXEC of BullMQ's add script: `ok` when Redis answered it, `failed` when
Redis could not be reached (a PING first: nothing was sent) or refused it, `indeterminate` when
the transaction was sent and no answer came. The worker (`lab up --target bullmq`) is one Node
process running `LAB_CONCURRENCY` jobs at once on its event loop (targets/bullmq/worker.js), so
the pid lab's supervisor freezes or kills is the one holding the jobs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from lab.config import Settings
from lab.runtime.messages import Job
from lab.runtime.patience import brief
from lab.targets import Backlog, Outcome, Status, Target, usertask

HOME = Path(__file__).resolve().parents[2] / "targets" / "bullmq"  # lab's Node package
WORKER = HOME / "worker.js"
PREFIX = "bull"  # BullMQ's default key prefix
MAX_SAFE = 2**53 - 1  # above this a JSON number is not exact in JavaScript
DONE_TTL_S = 3600  # completed jobs stay this long (a second add of one within it is a no-op)
T = TypeVar("T")


def job_id_problem(job_id: str) -> str:
    """Why BullMQ cannot take `job_id` as a custom id ('' when it can). Pure."""
    if job_id.isdigit():
        return "BullMQ takes no custom id that is a whole number"
    if ":" in job_id:
        return "BullMQ takes no custom id with ':'"
    return ""


def message_of(job: Job) -> dict[str, Any]:
    """lab's job message as the Node worker reads it: a seed JavaScript cannot hold as a number
    (above 2^53 - 1) as its decimal text (docs/reference/portable-random.md). Pure."""
    message: dict[str, Any] = json.loads(job.to_json())
    seed = message["payload"].get("seed") if isinstance(message["payload"], dict) else None
    if isinstance(seed, int) and not isinstance(seed, bool) and seed > MAX_SAFE:
        message["payload"] = {**message["payload"], "seed": str(seed)}
    return message


def added(job: Job, settings: Settings, attempt_base: int = 0) -> dict[str, Any]:
    """What `Queue.addBulk` takes for `job`: its name, data and options; ValueError when
    BullMQ cannot take it (the job's own fault). Pure."""
    problem = job_id_problem(job.jobId)
    if problem:
        raise ValueError(f"{problem}: {job.jobId!r}")
    lab: dict[str, Any] = {"createdAt": job.createdAt, "kind": job.kind}
    opts: dict[str, Any] = {"jobId": job.jobId, "removeOnComplete": {"age": DONE_TTL_S},
                            "removeOnFail": {"age": int(settings.run_retention_s)}}  # fmt: skip
    if job.kind == usertask.KIND:
        sent = usertask.call(job)
        if not sent.name:
            raise ValueError("payload.task: must name the job to run")
        return {"name": sent.name, "data": {"args": sent.args, "kwargs": sent.kwargs, "lab": lab},
                "opts": opts}  # fmt: skip
    ladder = list(settings.retry_ladder)
    lab.update(ladder=ladder, attemptBase=attempt_base, single=job.runId is None)
    opts.update(attempts=max(1, settings.max_attempts), backoff={"type": "lab", "delay": ladder[0]})
    return {"name": job.kind, "data": {"message": message_of(job), "lab": lab}, "opts": opts}


class Bullmq(Target, type="bullmq"):
    help = "BullMQ: jobs in Redis, run by a Node worker with LAB_CONCURRENCY slots"
    packages = ("bullmq",)
    programs = ("node",)
    services = ("redis_url", "es_url")

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # one caller at a time drives the loop
        self._queue: Any = None

    @classmethod
    def missing(cls) -> str | None:
        found = super().missing()
        if found is None and not (HOME / "node_modules" / "bullmq").is_dir():
            return (f"the bullmq target needs its npm packages in {HOME}: make setup (it runs "
                    "npm ci there)")  # fmt: skip
        return found

    def worker_argv(self, python: str, concurrency: int) -> list[str]:
        """One Node process (BullMQ runs `concurrency` jobs at once on its event loop); the
        Redis URL and the rest come from the `LAB_*` environment, never the command line."""
        del python
        node = shutil.which("node") or "node"
        return [node, str(WORKER), "--concurrency", str(concurrency)]

    # --- the client ---------------------------------------------------------------------------
    def _run(self, work: Awaitable[T]) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(work)

    def _queue_now(self) -> Any:
        """BullMQ's `Queue` on a client with lab's deadlines and no silent retry (made on the
        loop that drives it)."""
        if self._queue is None:
            import redis.asyncio
            from bullmq import Queue

            s = self.settings
            client = redis.asyncio.Redis.from_url(
                s.redis_url, decode_responses=True, socket_timeout=s.redis_timeout_s,
                socket_connect_timeout=s.redis_timeout_s)  # fmt: skip
            self._queue = Queue(self.queue, {"connection": client, "prefix": PREFIX})
        return self._queue

    def open(self) -> None:
        """Check the queue's name, and publish lab's counting script (its SHA under
        `<LAB_PREFIX>:scripts`), so the shim of any worker, lab's or a user's, calls it by SHA
        without lab's Lua files at hand."""
        from lab.runtime.stores import Stores

        if ":" in self.queue:
            raise ValueError(f"BullMQ takes no queue name with ':' ({self.queue!r}): set LAB_QUEUE")
        Stores.of(self.settings).counting.script("record")

    def close(self) -> None:
        with self._lock:
            if self._loop is None:
                return
            if self._queue is not None:  # its client is lab's: closed here (BullMQ's close is
                self._loop.run_until_complete(self._queue.client.aclose())  # deprecated)
            self._loop.close()
            self._loop, self._queue = None, None

    # --- submits ------------------------------------------------------------------------------
    def submit(self, jobs: Sequence[Job]) -> list[Outcome]:
        """One transaction for the batch (see the module's docstring for the outcomes)."""
        outcomes: list[Outcome | None] = [None] * len(jobs)
        items, taken = [], []
        for i, job in enumerate(jobs):
            try:
                items.append(added(job, self.settings))
                taken.append(i)
            except ValueError as exc:
                outcomes[i] = Outcome("failed", error=str(exc))
        if items:
            status, error = self._run(self.add(items))
            for i in taken:
                outcomes[i] = Outcome(status, jobs[i].jobId if status == "ok" else "", error)
        return [o or Outcome("failed") for o in outcomes]

    async def add(self, items: list[dict[str, Any]]) -> tuple[Status, str]:
        import redis

        queue = self._queue_now()
        try:
            await queue.client.ping()  # reached: what fails from here on may have been applied
        except redis.RedisError as exc:
            return "failed", brief(exc)
        try:
            await queue.addBulk(items)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            return "indeterminate", brief(exc)
        except redis.RedisError as exc:  # refused (out of memory, read-only): not applied
            return "failed", brief(exc)
        return "ok", ""

    def send(self, items: list[dict[str, Any]]) -> tuple[Status, str]:
        """Add `added(...)` items in one transaction: (`ok` | `failed` | `indeterminate`, why)."""
        return self._run(self.add(items))

    def remove(self, job_id: str) -> bool:
        """Remove BullMQ's job `job_id` (waiting, delayed, done or failed); False when it
        holds a lock (a worker runs it) and stays."""
        queue = self._queue_now()
        return bool(self._run(queue.remove(job_id)))

    def has(self, job_id: str) -> bool:
        queue = self._queue_now()
        return bool(self._run(queue.client.exists(queue.toKey(job_id))))

    def last_event(self) -> str:
        """The id of the newest entry of the queue's event stream ("0-0" when it has none)."""
        queue = self._queue_now()
        found = self._run(queue.client.xrevrange(queue.keys["events"], count=1))
        return str(found[0][0]) if found else "0-0"

    # --- the queue ----------------------------------------------------------------------------
    def backlog(self) -> Backlog:
        """Jobs waiting (not those delayed for a retry's backoff, nor those a worker holds),
        and how long ago the one that waited longest was added (BullMQ's `timestamp`)."""
        return self._run(self._backlog())

    async def _backlog(self) -> Backlog:
        queue = self._queue_now()
        keys, client = queue.keys, queue.client
        pipe = client.pipeline(transaction=False)
        pipe.llen(keys["wait"])
        pipe.llen(keys["paused"])
        pipe.zcard(keys["prioritized"])
        pipe.lindex(keys["wait"], -1)  # BullMQ pushes on the left and takes from the right
        pipe.time()
        wait, paused, prioritized, oldest, now = await pipe.execute()
        depth = int(wait) + int(paused) + int(prioritized)
        if not oldest:
            return Backlog(depth)
        added_ms = await client.hget(queue.toKey(oldest), "timestamp")
        if not added_ms:
            return Backlog(depth)
        now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
        return Backlog(depth, max(0, now_ms - int(added_ms)))

    def purge(self) -> None:
        """Everything BullMQ keeps of this target's queue (BullMQ's `obliterate`, forced, then
        any key of the queue it leaves, such as its marker); no other key of the Redis. Call it
        once the workers have stopped."""
        self._run(self._purge())

    async def _purge(self) -> None:
        queue = self._queue_now()
        # `Queue.obliterate(force=True)` as BullMQ's own, with `force` as text: this client's
        # sends a bool, which redis-py refuses (fixed in its 2.18.3).
        await queue.pause()
        while await queue.scripts.obliterate(1000, "1") not in (0, "0", None):
            pass
        pattern = f"{queue.toKey('')}*"  # `bull:<queue>:`: the queue's name holds no `:`
        async for found in queue.client.scan_iter(match=pattern, count=1000):
            await queue.client.unlink(found)
