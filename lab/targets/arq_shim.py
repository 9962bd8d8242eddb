"""lab's shim in an arq worker: what a user adds to their app to be measured.

    from lab.targets import arq_shim

    class WorkerSettings:
        functions = [resize]
        queue_name = arq_shim.queue()  # where lab submits: <LAB_QUEUE>.arq
    arq_shim.install(WorkerSettings)   # after the class: it reads its functions and limits

`install` sets `on_job_start` and `on_job_end` (keeping the app's own, which still run) and
wraps each function so the exception it raised is seen: arq's hooks get the job's `ctx` only,
never its result. Per attempt, `on_job_start` calls `shim().started` with arq's attempt
(`ctx['job_try']`), and `on_job_end` calls `shim().ended` with the outcome arq is about to
record (`outcome_of`), then waits until that end is counted in Redis (`Shim.counted`, one
flush shared by the jobs ending meanwhile). arq records the job's end (`finish_job`) only after
`on_job_end` returns, so a worker killed in between runs the job again ("executed more than
once") rather than losing a count; `after_job_end`, which comes after arq's record, is not used.

Times: lab enqueues a job due at its release (`_defer_until` = createdAt, `lab.targets.arq`),
so `ctx['score']` is when the attempt was due (a retry's score is its own due time), and the
first release is the earlier of that and arq's enqueue time. The kind is the run's (read once
per run). A job whose id is not a lab job id, and a cron job, is left alone.

What arq ends without running a function calls no hook, so the shim cannot report it: a job
whose function is not in the app, one that expired, and one picked up again past `max_tries`
(a job whose last attempt was killed): each shows as lost in the verdict.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import time
from dataclasses import dataclass
from typing import Any

from lab import config
from lab.targets.shim import Attempt, job_of, shim

log = logging.getLogger("lab.targets.arq_shim")

BEGUN = "lab_attempt"  # ctx keys the shim sets: the attempt, what the function raised, its limits
RAISED = "lab_raised"
LIMITS = "lab_limits"
COUNT_RETRY_S = 1.0  # Redis away while counting: try again after this, holding the job
_kinds: dict[str, str] = {}  # run id → its kind, read once per run
_counting: asyncio.Lock | None = None


@dataclass(frozen=True)
class Limits:
    """What decides whether arq runs a job again: its function's (else the worker's)."""

    max_tries: int
    timeout_s: float
    retry_jobs: bool = True


def queue() -> str:
    """The queue lab submits to (`<LAB_QUEUE>.arq`): a user's app's `queue_name`."""
    from lab.targets.arq import Arq

    return Arq(config.load()).queue


def install(app: Any, durable: bool = True) -> Any:
    """Add lab's shim to an arq app (a `WorkerSettings` class or dict); returns it.

    `durable`: each job's end is counted in Redis before arq finishes the job (the jobs ending
    meanwhile share one count). False: ends are counted by the shim's thread within 50 ms and
    the job is not held for it, which costs less, but a worker killed in that window loses
    those counts: the verdict then calls jobs lost that ran."""
    from arq.utils import to_seconds
    from arq.worker import Worker, func

    own = app if isinstance(app, dict) else vars(app)  # what arq reads (`get_kwargs`)

    def put(name: str, value: Any) -> None:
        if isinstance(app, dict):
            app[name] = value
        else:
            setattr(app, name, value)

    if own.get("lab_shim"):
        return app
    defaults = inspect.signature(Worker).parameters

    def setting(name: str) -> Any:
        return own[name] if own.get(name) is not None else defaults[name].default

    functions = []
    for function in (func(f) for f in own.get("functions") or ()):
        timeout = setting("job_timeout") if function.timeout_s is None else function.timeout_s
        tries = setting("max_tries") if function.max_tries is None else function.max_tries
        limits = Limits(tries, float(to_seconds(timeout) or 0), bool(setting("retry_jobs")))
        functions.append(dataclasses.replace(function, coroutine=watched(function, limits)))
    put("functions", functions)
    put("on_job_start", starting(own.get("on_job_start")))
    put("on_job_end", ending(own.get("on_job_end"), durable))
    put("lab_shim", True)
    return app


def watched(function: Any, limits: Limits) -> Any:
    """`function`'s coroutine, keeping what it raised (and its limits) in the job's `ctx`."""
    inner = function.coroutine

    async def run(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> Any:
        ctx[LIMITS] = limits
        try:
            return await inner(ctx, *args, **kwargs)
        except BaseException as exc:
            ctx[RAISED] = exc
            raise

    run.__qualname__ = getattr(inner, "__qualname__", function.name)
    return run


def starting(own: Any) -> Any:
    async def on_job_start(ctx: dict[Any, Any]) -> None:
        await begin(ctx)
        if own is not None:
            await own(ctx)

    return on_job_start


def ending(own: Any, durable: bool = True) -> Any:
    async def on_job_end(ctx: dict[Any, Any]) -> None:
        try:
            if own is not None:
                await own(ctx)
        finally:
            await end(ctx, durable)

    return on_job_end


async def begin(ctx: dict[Any, Any]) -> None:
    found = job_of(str(ctx.get("job_id", "")))
    if found is None:
        return
    due_ms = float(ctx.get("score") or 0)
    enqueued = ctx.get("enqueue_time")
    enqueued_ms = enqueued.timestamp() * 1000 if enqueued is not None else due_ms
    created_ms = min(enqueued_ms, due_ms) if due_ms else enqueued_ms
    kind = await kind_of(ctx, found[0])
    ctx[BEGUN] = shim().started(ctx["job_id"], int(ctx.get("job_try") or 1), kind, created_ms,
                                due_ms or created_ms)  # fmt: skip


async def end(ctx: dict[Any, Any], durable: bool = True) -> None:
    begun: Attempt | None = ctx.pop(BEGUN, None)
    if begun is None:
        return
    limits: Limits | None = ctx.get(LIMITS)
    took_s = time.monotonic() - begun.started_mono
    # No limits: the function never started (cancelled at once, by a shutdown): arq runs it again.
    outcome = "retry" if limits is None else outcome_of(ctx.get(RAISED), begun.attempt, limits,
                                                        took_s)  # fmt: skip
    number = shim().ended(begun, outcome)
    if number and durable:
        await counted(number)


def outcome_of(raised: BaseException | None, job_try: int, limits: Limits, took_s: float) -> str:
    """What arq does with the attempt that raised `raised` after `took_s`, as the shim's
    outcome: `done`; `retry` (`Retry`, or cancelled by the worker's shutdown: run again); else
    `failed` for good: any other exception, a timeout (arq cancels the job at its `timeout_s`),
    and a retry past `max_tries` (arq fails it when it comes up again, without a hook). Pure."""
    from arq.worker import Retry, RetryJob

    if raised is None:
        return "done"
    cancelled = isinstance(raised, asyncio.CancelledError)
    again = isinstance(raised, (Retry, RetryJob)) or (cancelled and took_s < limits.timeout_s)
    if limits.retry_jobs and again and job_try < limits.max_tries:
        return "retry"
    return "failed"


async def kind_of(ctx: dict[Any, Any], run_id: str) -> str:
    """The run's kind (`synthetic`, or `task` for a user's own task), read once per run."""
    kind = _kinds.get(run_id)
    if kind is None:
        try:
            raw = await ctx["redis"].hget(shim().stores.keys.run(run_id), "kind")
        except Exception as exc:  # noqa: BLE001 - the job runs whatever the shim can read
            log.warning("lab shim: the kind of run %s: %s", run_id, exc)
            return "unknown"
        kind = raw.decode() if isinstance(raw, bytes) else str(raw or "unknown")
        if len(_kinds) >= 1000:
            _kinds.clear()
        _kinds[run_id] = kind
    return kind


async def counted(number: int) -> None:
    """Until end `number` is counted: one flush at a time on this loop, whose count holds
    every end before it, so the jobs that end meanwhile share the next one."""
    global _counting
    if _counting is None:
        _counting = asyncio.Lock()
    reporter = shim()
    loop = asyncio.get_running_loop()
    while not reporter.counted(number):
        async with _counting:
            if not reporter.counted(number):
                await loop.run_in_executor(None, reporter.flush)
        if not reporter.counted(number):
            await asyncio.sleep(COUNT_RETRY_S)
