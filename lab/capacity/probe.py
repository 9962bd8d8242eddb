"""One probe on a running lab: a run at a constant rate through a warm-up and a step, judged
over the step (lab.capacity.step), then nothing of it left behind. The I/O of the search:
`LabClient` starts and stops the run, the stores read what Redis counted, the run's target
tells its backlog and purges it.

The step is bounded by two snapshots of what Redis counted (`Runs.snapshot`), the first when
Redis' clock says the warm-up is over, the second a step later; the run releases `rate` ×
(warm-up + step + 1 s) jobs, the second more so that a scheduler slow to take the run up still
releases through the whole step.

Afterwards the queue is drained before anything else runs, so one probe's backlog never fails
the next: a probe that held waits for its run to settle; one that broke (or held and does not
settle in time) is stopped and its queue purged, and then the jobs workers already hold finish.
Its documents are deleted from the index, so every probe writes into one of the same size.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lab import targets
from lab.capacity import step
from lab.client import ApiError, LabClient
from lab.config import Settings
from lab.measure.delivery import drained
from lab.runtime import shapes, slo
from lab.runtime.store import Store
from lab.runtime.stores import Stores
from lab.wait import wait_until

LEAD_S = 0.5  # POST /run, then the scheduler's first tick (at most 0.2 s), before the warm-up
SLACK_S = 1.0  # the release goes on this long past the step: a scheduler slow to start still
# releases through the whole of it
QUIET_S = 2.0  # nothing counted for this long, and no worker holding a job: drained


class ProbeError(RuntimeError):
    """A probe could not be run or judged; the message says why."""


@dataclass
class Probing:
    """What every probe of one search shares."""

    settings: Settings
    body: dict[str, Any]  # the run's kind, payload, seed and target
    objectives: list[slo.Objective]
    warmup_s: float
    step_s: int
    slots: int  # jobs the workers can run at once: workers × concurrency
    drain_s: float = field(default=0.0)  # how long a probe's run may take to settle

    @property
    def settle_s(self) -> float:
        return self.drain_s or max(60.0, 2 * (self.warmup_s + self.step_s))


class Prober:
    def __init__(self, probing: Probing):
        self.p = probing
        self.client = LabClient.of(probing.settings, timeout_s=30)
        self.stores = Stores.of(probing.settings)
        self.target_name = str(probing.body.get("target") or targets.DEFAULT)
        self.target = targets.target(self.target_name, probing.settings)
        self.planned: Callable[[float], int] = lambda _at: 0  # the run's plan, once snapshotted

    def close(self) -> None:
        self.client.close()

    def probe(self, rate: float) -> dict[str, Any]:
        """Run one probe at `rate` jobs/s; its row (the knee's figures, held or broke, why)."""
        p = self.p
        jobs = max(1, math.ceil(rate * (p.warmup_s + p.step_s + SLACK_S)))
        args = {k: v for k, v in p.body.items() if k in ("kind", "payload", "seed", "target")}
        run_id = str(self.client.run(jobs, rate * 60, **args)["runId"])
        began = time.monotonic()
        started_ms = int(self.stores.runs.snapshot(run_id)[1].get("startedAt") or 0)
        first = self._snapshot_at(run_id, started_ms + p.warmup_s * 1000)
        last = self._snapshot_at(run_id, first.at_ms + p.step_s * 1000)
        judged = step.judge(p.objectives, first, last, self.planned, p.slots)
        ended = self._finish(run_id, judged.held)
        row: dict[str, Any] = {
            "rate": rate, "runId": run_id, "jobs": jobs,
            "stepStartedAt": datetime.fromtimestamp(first.at_ms / 1000, UTC).isoformat(),
            "warmupSeconds": round((first.at_ms - started_ms) / 1000, 3),
            **judged.figures, "held": judged.held, "broke": judged.why, "slo": judged.states,
            "ended": ended, "queueAfter": self.target.backlog().depth,
            "probeSeconds": round(time.monotonic() - began, 1),
        }  # fmt: skip
        return row

    def _snapshot_at(self, run_id: str, at_ms: float) -> step.Snapshot:
        """The run's snapshot once Redis' clock has passed `at_ms`; the run must still be
        releasing or done (stopped or breached by someone else, the probe is void)."""
        while True:
            now_ms, record, timeline, counted = self.stores.runs.snapshot(run_id)
            if record.get("state") in ("stopped", "breached") or not record:
                raise ProbeError(f"run {run_id} ended before its step did "
                                 f"({record.get('state') or 'gone'}): was it stopped by someone "
                                 "else?")  # fmt: skip
            if now_ms >= at_ms:
                self.planned = shapes.planner(record)
                return step.Snapshot(now_ms, timeline, counted)
            time.sleep(min(0.25, max(0.001, (at_ms - now_ms) / 1000 - 0.002)))

    def _finish(self, run_id: str, held: bool) -> str:
        """Leave nothing behind: the run settled, or stopped with its queue purged; then its
        documents deleted. Says which."""
        ended = "stopped, queue purged"
        if held:
            quiet = 0.0 if self.target_name == targets.DEFAULT else 10.0
            with contextlib.suppress(TimeoutError):
                drained(self.stores, run_id, self.p.settle_s, quiet_s=quiet)
                ended = "settled"
        if ended != "settled":
            with contextlib.suppress(ApiError):  # not active any more: it ended meanwhile
                self.client.stop()
            self.target.purge()
        self.idle(run_id, settled=ended == "settled")
        store = Store(self.p.settings)
        try:
            store.delete_run(run_id)
        finally:
            store.close()
        return ended

    def idle(self, run_id: str, settled: bool = False) -> None:
        """Wait until the lab is idle: no run active, nothing waiting in the target's queue,
        and, unless `run_id` settled (every job it released has ended), nothing in a worker's
        hands and nothing of it counted for `QUIET_S`."""
        last: list[Any] = [None, time.monotonic()]

        def quiet() -> bool:
            if settled:
                return self.stores.runs.active_id() is None and self.target.backlog().depth == 0
            run = self.stores.runs.get(run_id)
            counted = (run.processed, run.failed) if run else None
            if counted != last[0]:
                last[:] = [counted, time.monotonic()]
            workers = self.client.status().get("workers", [])
            busy = self.stores.runs.active_id() is not None or any(
                int(w.get("inFlight") or 0) for w in workers
            )
            if busy or time.monotonic() - last[1] < QUIET_S:
                return False
            return self.target.backlog().depth == 0

        try:
            wait_until(quiet, self.p.settle_s, "the probe's queue to drain", poll_s=0.25)
        except TimeoutError:
            raise ProbeError(
                f"the queue of run {run_id} did not drain within {self.p.settle_s:.0f} s after "
                "it was stopped and purged"
            ) from None
