"""What a running job's handler is given as `ctx`: progress steps to report, and a cancel it
learns of at its next step. Pure: the worker wires `report` to the job's record
(`JobRecords.progress`); a run's jobs, which have no record, get `NO_PROGRESS`.
"""

from __future__ import annotations

from collections.abc import Callable


class JobCancelled(Exception):
    """Raised inside a handler at a progress step once the job's cancel was requested."""


class JobContext:
    """What a handler's second argument offers: report progress, learn of a cancel.

    `progress` raises `JobCancelled` once a cancel was requested, so a handler stops at its next
    step without checking anything itself. For a run's jobs (no record) it does nothing.
    """

    def __init__(self, report: Callable[[int, str, str], str] | None = None):
        self._report = report
        self.steps = 0

    def progress(self, percent: float, step: str, message: str | None = None) -> None:
        if not 0 <= percent <= 100:
            raise ValueError(f"progress must be from 0 to 100, got {percent!r}")
        self.steps += 1
        if self._report is None:
            return
        answer = self._report(int(percent), step, message or step)
        if answer in ("cancel", "gone"):
            raise JobCancelled("cancel requested" if answer == "cancel" else "job moved on")


NO_PROGRESS = JobContext()
