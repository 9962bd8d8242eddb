"""A user's own task as a run's work: the `task` pseudo-kind.

A run of kind `task` on a target other than `lab` submits the user's task by name instead of
one of lab's kinds. Its payload says which task and with what:

    {"task": "myapp.tasks.resize", "args": ["{seq}"], "kwargs": {"job": "{jobId}"}}

A string that is exactly `"{seq}"`, anywhere in `args` or `kwargs` (nested too), becomes the
job's seq (an int); exactly `"{jobId}"` becomes its id (`<runId>-<seq>`). Anything else is sent
as written. lab's metadata (when the job was released) never joins the arguments: each target
sends it where its framework carries metadata (message headers, options, job meta).

`check` is the door (`POST /run`), `call` what each target's `submit` sends. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lab.runtime.messages import Job

KIND = "task"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
MAX_NAME = 200
SEQ, JOB_ID = "{seq}", "{jobId}"
FIELDS = ("task", "args", "kwargs")


class TaskPayloadError(ValueError):
    """A `task` payload lab cannot send; `field` names the part (`task`, `args`, ...)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Call:
    """What one job of a `task` run sends: the task's name and its arguments."""

    name: str
    args: list[Any]
    kwargs: dict[str, Any]


def check(payload: Any) -> dict[str, Any]:
    """The payload with its defaults (`args` [], `kwargs` {}), or `TaskPayloadError` naming
    the field. The payload's size and depth are checked before, with every kind's."""
    if not isinstance(payload, dict):
        raise TaskPayloadError("", "must be a JSON object")
    for key in payload:
        if key not in FIELDS:
            raise TaskPayloadError(str(key)[:64], f"is not a field of a task; give {FIELDS}")
    name = payload.get("task")
    if not isinstance(name, str) or not name:
        raise TaskPayloadError("task", "give the task's dotted name, e.g. myapp.tasks.resize")
    if len(name) > MAX_NAME or not NAME.fullmatch(name):
        raise TaskPayloadError(
            "task", f"must be a dotted name of at most {MAX_NAME} letters, digits, '_' and '.'"
        )
    args = payload.get("args", [])
    if not isinstance(args, list):
        raise TaskPayloadError("args", "must be a JSON list")
    kwargs = payload.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise TaskPayloadError("kwargs", "must be a JSON object")
    return {"task": name, "args": args, "kwargs": kwargs}


def call(job: Job) -> Call:
    """The task job `job` sends, its placeholders filled."""
    payload = job.payload
    seq = job.seq if job.seq is not None else 0
    return Call(
        str(payload.get("task", "")),
        _filled(payload.get("args") or [], seq, job.jobId),
        _filled(payload.get("kwargs") or {}, seq, job.jobId),
    )


def _filled(value: Any, seq: int, job_id: str) -> Any:
    if isinstance(value, str):
        return seq if value == SEQ else job_id if value == JOB_ID else value
    if isinstance(value, list):
        return [_filled(v, seq, job_id) for v in value]
    if isinstance(value, dict):
        return {k: _filled(v, seq, job_id) for k, v in value.items()}
    return value
