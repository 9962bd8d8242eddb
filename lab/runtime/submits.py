"""What the scheduler asks of a target that is not lab's own pipeline: submit a batch of jobs
and say how each went (`lab.targets` implements it per framework). Pure: no I/O here.

`ok`: the broker took the job. `failed`: it refused it, or could not be reached; the scheduler
releases the job again. `indeterminate`: the publish timed out, so the broker may or may not
have it (Jepsen's indeterminate operation): it counts as released, and the delivery verdict
keeps it apart from the jobs known taken.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from lab.runtime.messages import Job
from lab.runtime.patience import brief

log = logging.getLogger("lab.runtime.scheduler")

Status = Literal["ok", "failed", "indeterminate"]
STATUSES: tuple[Status, ...] = ("ok", "failed", "indeterminate")


@dataclass(frozen=True)
class Outcome:
    """What a submit of one job came to."""

    status: Status
    broker_id: str = ""
    error: str = ""


class Submitter(Protocol):
    """A target's submitting side, as the scheduler uses it. `submit` answers one `Outcome`
    per job, in order, and stops trying at the first error that is not the job's own (a broker
    away): the rest are `failed` without being tried, so a tick never waits once per job."""

    def open(self) -> None: ...

    def submit(self, jobs: Sequence[Job]) -> list[Outcome]: ...


def by_status(jobs: Sequence[Job], outcomes: Sequence[Outcome]) -> dict[str, list[int]]:
    """The jobs' seqs by outcome; a job without an answer counts as failed."""
    out: dict[str, list[int]] = {status: [] for status in STATUSES}
    for i, job in enumerate(jobs):
        status = outcomes[i].status if i < len(outcomes) else "failed"
        if job.seq is not None:
            out[status if status in out else "failed"].append(job.seq)
    return out


# A tick submits what its target takes in about this long: a submit of a thousand jobs to a
# framework that takes a hundred a second would hold the tick past the scheduler's lease, and
# the lease lost, the jobs released again from the last one recorded (run twice).
TICK_SUBMIT_S = 0.5
FIRST_RATE = 100.0  # jobs/s assumed of a target before its first submit is timed


@dataclass
class Submissions:
    """The scheduler's side of another target: a client per target (made by `make`, opened
    once), the jobs a tick released, submitted together when it ends, and how fast the target
    has taken them (so a tick asks for no more than it can submit in `TICK_SUBMIT_S`)."""

    make: Callable[[str], Submitter] | None
    made: dict[str, Submitter] = field(default_factory=dict)
    batch: list[Job] = field(default_factory=list)
    rate: float = FIRST_RATE
    clock: Callable[[], float] = time.monotonic

    def budget(self) -> int:
        """How many jobs one tick may release to the target."""
        return max(1, int(self.rate * TICK_SUBMIT_S))

    def client(self, target: str) -> Submitter:
        if target not in self.made:
            if self.make is None:
                raise RuntimeError(f"this scheduler cannot release runs of target {target!r}")
            made = self.make(target)
            made.open()
            self.made[target] = made
        return self.made[target]

    def submit(self, client: Submitter) -> dict[str, list[int]]:
        """Submit the batch; its seqs by outcome (what failed is to be released again)."""
        jobs, self.batch = self.batch, []
        began = self.clock()
        try:
            outcomes = client.submit(jobs)
        except Exception as exc:  # noqa: BLE001 - a client that raises refused every job
            log.warning("submitting %d jobs failed: %s", len(jobs), brief(exc))
            outcomes = []
        self._timed(sum(o.status != "failed" for o in outcomes), self.clock() - began)
        return by_status(jobs, outcomes)

    def _timed(self, answered: int, took_s: float) -> None:
        """Follow the target's submit rate (half the last measure, half the ones before; at
        most doubled a submit, as a few jobs taken fast say little of a thousand), from submits
        that answered, so a broker away does not make it look fast."""
        if answered and took_s > 0:
            self.rate = max(1.0, min(2 * self.rate, (self.rate + answered / took_s) / 2))
