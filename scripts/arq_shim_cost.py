"""What lab's shim costs an arq worker: its throughput with and without the shim, interleaved.

    .venv/bin/python scripts/arq_shim_cost.py [--rounds 5] [--jobs 3000] [--concurrency 10]
                                              [--task-ms 0]

Each trial enqueues `--jobs` jobs of a task that does nothing (the worst case for the shim: a
real task's own time dilutes it) or waits `--task-ms`, through the arq target's `submit`, then
starts one arq worker (`arq --burst`, `max_jobs` = `--concurrency`, lab's `poll_delay`, arq's
log at WARNING) and times its drain from the parent: from the first job taken off the queue to
the last. Each round
runs the bare app (`Plain`), the same app with `arq_shim.install` (`Shimmed`: every job's end
counted by lab's counting script before arq finishes it) and with `install(durable=False)`
(`Loose`: counted by the shim's thread within 50 ms), in an order that rotates. Prints each
round, the median of the per-round ratios (shimmed / plain, also of CPU a job), and how fast
`submit` enqueues (its event loop kept in a thread vs `asyncio.run` per batch). Runs in a
namespace of its own on the configured Redis, removed after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from arq.connections import RedisSettings

from lab import config
from lab.targets import arq_shim
from lab.targets.arq import Arq

HERE = Path(__file__).resolve().parent
LOGGING: dict[str, Any] = {
    "version": 1, "disable_existing_loggers": False,
    "handlers": {"plain": {"class": "logging.StreamHandler", "level": "WARNING"}},
    "loggers": {"arq": {"handlers": ["plain"], "level": "WARNING"},
                "lab": {"handlers": ["plain"], "level": "WARNING"}},
}  # fmt: skip


async def work(ctx: dict[str, Any], job_id: str) -> None:
    """The task: nothing, or a wait of `ARQ_COST_TASK_MS`."""
    if TASK_S:
        await asyncio.sleep(TASK_S)


def _app(name: str) -> type:
    settings = config.load()
    return type(name, (), {
        "functions": [work], "queue_name": Arq(settings).queue, "poll_delay": 0.05,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url), "keep_result": 0,
        "max_jobs": int(os.environ.get("ARQ_COST_MAX_JOBS", "10")),
    })  # fmt: skip


TASK_S = float(os.environ.get("ARQ_COST_TASK_MS", "0")) / 1000
Plain = _app("Plain")
Shimmed = arq_shim.install(_app("Shimmed"))
Loose = arq_shim.install(_app("Loose"), durable=False)
APPS = ("Plain", "Shimmed", "Loose")


def worker(
    settings: Any, app: str, concurrency: int, task_ms: float = 0
) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.as_env(), "ARQ_COST_MAX_JOBS": str(concurrency),
           "ARQ_COST_TASK_MS": str(task_ms)}  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "arq", "--burst", "--custom-log-dict",
                             "arq_shim_cost.LOGGING", f"arq_shim_cost.{app}"], cwd=HERE,
                            env=env)  # fmt: skip


def cpu_of(process: subprocess.Popen[bytes]) -> float:
    """The CPU seconds (user + system) the process used, once it has exited."""
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def trial(
    settings: Any, app: str, jobs: int, concurrency: int, task_ms: float
) -> tuple[float, float]:
    """Jobs a second one worker of `app` drains, and the CPU seconds it used in all."""
    from lab.runtime.messages import run_job
    from lab.runtime.stores import Stores

    stores = Stores.of(settings)
    payload = {"task": "work", "args": ["{jobId}"]}
    run_id = stores.runs.start(jobs, 600, kind="task", payload=payload, target="arq")
    target = Arq(settings)
    try:
        outcomes = target.submit([run_job(run_id, seq, "task", payload) for seq in range(jobs)])
    finally:
        target.close()
    assert all(o.status == "ok" for o in outcomes), outcomes[:3]
    process = worker(settings, app, concurrency, task_ms)
    first = last = None
    while last is None:
        left = stores.redis.zcard(target.queue)
        now = time.perf_counter()
        if first is None and left < jobs:
            first = now
        if left == 0:
            last = now
        elif process.poll() is not None:
            raise RuntimeError(f"the {app} worker exited with {process.returncode}")
        time.sleep(0.005)
    cpu_s = cpu_of(process)
    stores.runs.stop()
    if app != "Plain":
        run = stores.runs.known(run_id)
        assert run.processed == jobs, f"the shim counted {run.processed} of {jobs}"
    assert first is not None
    return (jobs - 1) / (last - first), cpu_s


def submit_rates(settings: Any, batches: int = 10, size: int = 500) -> dict[str, float]:
    """Jobs a second `submit` enqueues in batches of `size`: on its loop in a thread, opened
    once, and with `asyncio.run` (a new loop and connections) per batch."""
    from lab.runtime.messages import run_job

    jobs = [[run_job(f"{settings.prefix}-s{b}", s, "task", {"task": "work"}) for s in range(size)]
            for b in range(2 * batches)]  # fmt: skip
    target = Arq(settings)
    began = time.perf_counter()
    for batch in jobs[:batches]:
        target.submit(batch)
    kept = batches * size / (time.perf_counter() - began)
    target.close()

    async def fresh(batch: list[Any]) -> None:
        target._pool = await target._make_pool()
        try:
            await target._enqueue_all(batch)
        finally:
            await target._pool.aclose()

    began = time.perf_counter()
    for batch in jobs[batches:]:
        asyncio.run(fresh(batch))
    per_batch = batches * size / (time.perf_counter() - began)
    return {"loop in a thread": kept, "asyncio.run per batch": per_batch}


def main() -> int:
    from lab.ops.reset import isolated
    from lab.runtime.stores import Stores

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--task-ms", type=float, default=0, help="each job waits this long")
    args = parser.parse_args()
    settings = isolated(config.load(), "arqcost")
    ratios: dict[str, list[float]] = {"Shimmed": [], "Loose": []}
    cpu_ratios: dict[str, list[float]] = {"Shimmed": [], "Loose": []}
    try:
        # What starting and stopping a worker costs, taken off each trial's CPU.
        idle = {app: statistics.median(cpu_of(worker(settings, app, 1)) for _ in range(3))
                for app in APPS}  # fmt: skip
        for round_ in range(args.rounds):
            order = APPS[round_ % 3 :] + APPS[: round_ % 3]
            rate, per_job = {}, {}
            for app in order:
                rate[app], cpu_s = trial(settings, app, args.jobs, args.concurrency, args.task_ms)
                per_job[app] = (cpu_s - idle[app]) / args.jobs * 1e6
            for app in ratios:
                ratios[app].append(rate[app] / rate["Plain"])
                cpu_ratios[app].append(per_job[app] / per_job["Plain"])
            print(f"round {round_ + 1}: " + "; ".join(
                f"{app} {rate[app]:,.0f}/s {per_job[app]:,.0f} µs CPU a job" for app in APPS),
                flush=True)  # fmt: skip
        print(f"{args.jobs} jobs of {args.task_ms:g} ms, max_jobs {args.concurrency}, one worker:")
        for app, what in (("Shimmed", "the shim"), ("Loose", "the shim, durable=False")):
            median = statistics.median(ratios[app])
            print(f"  {what}: median throughput ratio {median:.3f} (costs "
                  f"{100 * (1 - median):.1f} %), median CPU-a-job ratio "
                  f"{statistics.median(cpu_ratios[app]):.3f}")  # fmt: skip
        for how, rate in submit_rates(settings).items():
            print(f"submit, {how}: {rate:,.0f} jobs/s")
    finally:
        Arq(settings).purge()  # the queue (with the submit test's jobs) and arq's keys
        Stores.of(settings).retention.purge()
    return 0


if __name__ == "__main__":
    sys.exit(main())
