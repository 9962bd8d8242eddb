"""lab: an experiment harness and load lab for a queue pipeline.

The public API is what this module exports (`__all__`, documented in
`docs/reference/python.md`); everything else is internal and may change.

    a job kind's author       Job, JobContext (progress steps), Field, PermanentError,
                              PayloadError, JobCancelled
    a notebook or a script    LabClient (the HTTP API), Experiment (run one, watch it), load
                              (an experiment folder's results as a DataFrame)

Five names to learn it by: a *run* (X jobs at Y per minute, `lab.runtime.stores.runs`), a *job*
(`lab.runtime.messages`, handlers in `workers/`), the *scheduler* (`lab.runtime.scheduler`), the
*worker* (`lab.runtime.worker`) and the *supervisor* (`lab.ops.supervisor`). The API is
`lab.api.app`, the CLI `lab.cli`.

    lab/runtime/   what runs a pipeline: messages, keys, stores, store, broker, worker, scheduler
    lab/api/       the HTTP API over it: routes, the status snapshot, metrics, the admin page
    lab/ops/       what starts and stops it: the stack of services, the supervisor, reset, logs
    lab/measure/   what measures it: bench, load tests, drills and their reports
    lab/experiment/  experiments: factors × levels × repetitions, their results and analysis
    lab/views/     what shows it in a notebook: the control panel
    lab/cli/       the command line, one module per command
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.runtime.fields import Field
from lab.runtime.messages import Job
from lab.runtime.payload import PayloadError, PermanentError
from lab.runtime.progress import JobCancelled, JobContext
from lab.version import __version__ as __version__

if TYPE_CHECKING:
    from lab.client import LabClient
    from lab.experiment import Experiment, load

__all__ = [
    "Experiment",
    "Field",
    "Job",
    "JobCancelled",
    "JobContext",
    "LabClient",
    "PayloadError",
    "PermanentError",
    "load",
]


def __getattr__(name: str) -> Any:
    """The notebook's names load their libraries (httpx, pandas, ipywidgets) only when asked, so
    a worker that imports a kind's names stays small."""
    if name == "LabClient":
        from lab.client import LabClient

        return LabClient
    if name in ("Experiment", "load"):
        from lab import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'lab' has no attribute {name!r}")
