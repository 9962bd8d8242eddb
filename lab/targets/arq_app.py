"""lab's arq app: lab's job kinds as one arq function, measured by lab's shim installed the way a
user installs it. `lab up --target arq` runs it with arq's own command:

    arq --custom-log-dict lab.targets.arq_app.LOGGING lab.targets.arq_app.WorkerSettings

What it chooses, and why:

- One process, `max_jobs` = `LAB_CONCURRENCY`: arq runs that many jobs at once on its event
  loop. lab's kinds are blocking code (sleeps, CPU, the Elasticsearch client), so each attempt
  runs on a thread of a pool as large; the process lab supervises holds every job it took.
- `Retryable` → `arq.Retry(defer=…)` after the step of `LAB_RETRY_LADDER_MS` for that attempt,
  up to `LAB_MAX_ATTEMPTS` tries (arq's `max_tries`, counted by arq's `ctx['job_try']`, which
  is the attempt); `Permanent` is raised as it is: arq retries only `Retry`, so any other
  exception fails the job for good.
- `job_timeout` = `LAB_ARQ_JOB_TIMEOUT_S` (300 s): arq cancels a job at it (a thread cannot be
  stopped, so an attempt past it may still write its document) and holds a taken job for it
  plus 10 s, so a killed worker's jobs run again only that long after they were taken.
- `keep_result` = `KEEP_RESULT_S`: while a result is kept arq refuses to enqueue its id again,
  so a job a restarted scheduler submits twice runs once; short, so results do not pile up
  in Redis. A job's result is None (a synthetic document's padding stays out of Redis).
- `poll_delay` = `POLL_DELAY_S`: after starting what it can, a worker sleeps `poll_delay`
  (arq's default 0.5 s), so with jobs of a few ms or more it starts at most `max_jobs` of them
  per poll; arq's default would cap a worker of 5 slots near 10 jobs a second.
- a read timeout on its Redis connections (`LAB_REDIS_TIMEOUT_S`), which arq's own pool lacks.
- arq's log at WARNING (`LOGGING`): at INFO it writes two lines for every job.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from arq import Retry
from arq.connections import ArqRedis
from arq.logs import default_log_config
from arq.worker import func

from lab import config
from lab.runtime.retry import Budget
from lab.targets import arq_shim
from lab.targets.arq import LAB_TASK, Arq
from lab.targets.shim import shim
from lab.targets.tasks import Retryable, run_attempt

KEEP_RESULT_S = 60
POLL_DELAY_S = 0.05

SETTINGS = config.load()
_threads = ThreadPoolExecutor(SETTINGS.concurrency, thread_name_prefix="lab-arq-job")

LOGGING: dict[str, Any] = default_log_config(False)
LOGGING["loggers"]["arq"]["level"] = "WARNING"
LOGGING["loggers"]["lab"] = {"handlers": ["arq.standard"], "level": "WARNING"}


async def run_lab_job(ctx: dict[str, Any], message: str) -> None:
    """One attempt of a lab job (its JSON), attempt `ctx['job_try']`."""
    attempt = int(ctx["job_try"])
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(_threads, run_attempt, message, attempt, shim().worker_id)
    except Retryable as exc:
        ladder = SETTINGS.retry_ladder
        delay_ms = Budget.of_run_job(SETTINGS.max_attempts).delay_ms(ladder, attempt)
        raise Retry(defer=delay_ms / 1000) from exc


async def startup(_ctx: dict[str, Any]) -> None:
    shim().start()  # in /status from the start, not from its first job


class WorkerSettings:
    functions = [func(run_lab_job, name=LAB_TASK)]
    queue_name = Arq(SETTINGS).queue
    # arq's own pool (from `redis_settings`) sets a connect timeout only: a Redis that went
    # silent (a blackholed link) would hold a read forever. With a read timeout the worker
    # fails and its supervisor starts a new one, which waits for Redis as any worker does.
    redis_pool = ArqRedis.from_url(
        SETTINGS.redis_url,
        socket_timeout=max(SETTINGS.redis_timeout_s, 2 * POLL_DELAY_S),
        socket_connect_timeout=SETTINGS.redis_timeout_s,
    )
    max_jobs = SETTINGS.concurrency
    max_tries = SETTINGS.max_attempts
    job_timeout = SETTINGS.arq_job_timeout_s
    keep_result = KEEP_RESULT_S
    poll_delay = POLL_DELAY_S
    on_startup = startup


arq_shim.install(WorkerSettings)
