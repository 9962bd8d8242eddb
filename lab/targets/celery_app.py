"""The Celery app `lab worker --target celery` runs: lab's kinds as one Celery task, with the
shim installed the way a user installs it in their own app.

`run_job` runs one attempt of a lab job (`lab.targets.tasks.run_attempt`) with Celery's
attempt count. A failure another attempt may mend (`Retryable`) goes to Celery's own retry,
`self.retry(countdown=...)`, after the step of `LAB_RETRY_LADDER_MS` for that attempt, at most
`LAB_MAX_ATTEMPTS` attempts in all; the last one's failure, and any `Permanent` one, is raised
as the task's own exception: Celery fails the task for good (`FAILURE`), with no retry.

Started by `celery -A lab.targets.celery_app worker` (`Celery.worker_argv`), it reads the
`LAB_*` settings the supervisor passes on.
"""

from __future__ import annotations

from typing import Any

from celery import Celery as App
from celery import bootsteps

from lab import config
from lab.targets import celery_shim, tasks
from lab.targets.celery import TASK, Celery, conf
from lab.targets.shim import shim

settings = config.load()
app = App("lab", set_as_current=True)
app.conf.update(conf(settings, Celery(settings).queue))
celery_shim.install(app)


class Awake(bootsteps.StartStopStep):
    """A timer each second on the worker's event loop. An idle worker's loop otherwise sleeps
    up to 10 s between looks at its shutdown flag, so a SIGTERM from lab's supervisor (a stop,
    a restart, `lab down`) took that long; jobs are not touched."""

    requires = {"celery.worker.components:Hub"}

    def start(self, worker: Any) -> None:
        shim().start()  # in /status from the start, not from its first job
        if worker.hub is not None:
            worker.hub.call_repeatedly(1.0, lambda: None)


app.steps["worker"].add(Awake)


class Failed(Exception):
    """The job failed for good: Celery records the task as failed and does not retry it."""


def countdown_s(retries: int) -> float:
    """The wait before attempt `retries + 2`: the ladder's step for it (its last step repeats)."""
    ladder = settings.retry_ladder
    return ladder[min(retries, len(ladder) - 1)] / 1000


@app.task(bind=True, name=TASK, max_retries=settings.max_attempts - 1)
def run_job(self: Any, message: str) -> dict[str, Any]:
    attempt = int(self.request.retries or 0) + 1
    try:
        return tasks.run_attempt(message, attempt, shim().worker_id)
    except tasks.Permanent as exc:
        raise Failed(str(exc)) from None
    except tasks.Retryable as exc:
        if attempt >= settings.max_attempts:
            raise Failed(f"attempt {attempt} of {settings.max_attempts}: {exc}") from None
        raise self.retry(exc=exc, countdown=countdown_s(attempt - 1)) from None
