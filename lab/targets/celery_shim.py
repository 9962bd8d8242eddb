"""The shim for Celery: two lines in your app make its workers report every task lab sent.

    from lab.targets import celery_shim
    celery_shim.install(app)

It connects to Celery's `task_prerun` and `task_postrun` signals, which every task's attempt
sends on the thread that runs it: `prerun` starts the attempt (`lab.targets.shim`), `postrun`
ends it by the state Celery settled on: `SUCCESS` done, `FAILURE` failed for good (Celery
retries only through `Retry`, which ends as `RETRY`), anything else (`RETRY`, `IGNORED`,
`REJECTED`) not an end: the job's next delivery ends it, and a job that never comes back is the
verdict's `lost`. A task lab did not send (its id is no lab job id, or lab's header is missing)
costs a dictionary lookup and is not reported.

The attempt is Celery's (`request.retries + 1`); when lab released the job comes from the
message's headers (`lab_created_ms`), which Celery keeps on every retry; a retry's queue wait
counts from its `eta`.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from lab.targets.celery import CREATED, KIND
from lab.targets.shim import Attempt, job_of, shim

OUTCOMES = {"SUCCESS": "done", "FAILURE": "failed"}  # every other state: not the job's end

_running: dict[tuple[str, int], Attempt] = {}
_installed = threading.Lock()
_done = False


def install(app: Any = None) -> None:
    """Report every task this process runs (`app` is for symmetry with other shims: Celery's
    signals are the process's, whichever app sent the task). Installing twice is harmless."""
    global _done
    from celery.signals import task_postrun, task_prerun

    with _installed:
        if not _done:
            task_prerun.connect(prerun, weak=False, dispatch_uid="lab-shim-prerun")
            task_postrun.connect(postrun, weak=False, dispatch_uid="lab-shim-postrun")
            _done = True


def prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if not task_id or task is None:
        return
    request = task.request
    created = getattr(request, CREATED, None)
    if not isinstance(created, (int, float)) or job_of(task_id) is None:
        return  # not a job lab sent
    attempt = int(request.retries or 0) + 1
    released = _eta_ms(request.eta) if attempt > 1 else 0.0
    kind = getattr(request, KIND, None) or "task"
    begun = shim().started(task_id, attempt, str(kind), float(created), released)
    _running[(task_id, threading.get_ident())] = begun


def postrun(task_id: str | None = None, state: str | None = None, **_: Any) -> None:
    begun = _running.pop((task_id or "", threading.get_ident()), None)
    if begun is not None:
        shim().ended(begun, OUTCOMES.get(state or "", "retry"))


def _eta_ms(eta: Any) -> float:
    """A retry's due time (Celery's ISO 8601 `eta`) in epoch ms; 0 when it has none."""
    if not isinstance(eta, str):
        return 0.0
    try:
        return datetime.fromisoformat(eta).timestamp() * 1000
    except ValueError:
        return 0.0
