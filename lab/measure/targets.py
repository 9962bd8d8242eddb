"""The targets drill (`lab report targets`, notebooks/targets.py): one seeded workload, one load
shape and one fault sequence on every target, each run by the experiment's trial
(`lab.experiment.trial.one_run`: its namespace, processes, run, drain and measures).

    Faults          the drill's fault sequence, injected while a run runs: kill -9 of a worker
                    through the supervisor (which starts it again), optionally a freeze
    Evidence        what the drill reads of a run before its keys go: its bitmaps, its documents,
                    its timeline
    jobs_per_second, failures_agree, lost_by_documents, target_figures, table_row
                    the table's figures and what its checks compare (pure)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lab.config import Settings
from lab.ops.faults import processes
from lab.ops.supervisor import Supervisor
from lab.runtime.store import Store
from lab.runtime.stores import Stores
from lab.targets import verdict
from lab.wait import poll

FAULT_DEADLINE_S = 600.0  # the longest a fault waits for its moment before it gives up


@dataclass(frozen=True)
class Faults:
    """kill -9 of `worker-1` once `kill_at` of the run's jobs ended (the supervisor starts it
    again at once, as `lab up` would); with `freeze_s` > 0, the last worker frozen (SIGSTOP) for
    that long once `freeze_at` of them ended, then thawed. A moment the run never reaches (it
    settled first) is skipped, and the figures say so (`fault.killedAt` None)."""

    x: int
    kill_at: float | None = 0.5
    freeze_at: float = 0.75
    freeze_s: float = 0.0

    def __call__(self, supervisor: Supervisor, stores: Stores, run_id: str) -> dict[str, Any]:
        figures: dict[str, Any] = {"fault.killedAt": None}
        if self.kill_at is not None and self._reached(stores, run_id, self.kill_at):
            figures["fault.killedAt"] = _ended(stores, run_id)
            supervisor.kill("worker-1")
            supervisor.start("worker-1")
        if self.freeze_s > 0:
            figures["fault.frozenAt"] = None
            if self._reached(stores, run_id, self.freeze_at):
                figures["fault.frozenAt"] = _ended(stores, run_id)
                self._freeze(supervisor, supervisor.workers()[-1])
        return figures

    def _reached(self, stores: Stores, run_id: str, fraction: float) -> bool:
        """Whether `fraction` of the jobs ended before the run settled."""

        def moment() -> str | None:
            run = stores.runs.get(run_id)
            if run is None or run.settled:
                return "settled"
            return "reached" if run.processed + run.failed >= fraction * self.x else None

        return poll(moment, FAULT_DEADLINE_S, poll_s=0.05) == "reached"

    def _freeze(self, supervisor: Supervisor, name: str) -> None:
        pid = supervisor.pid(name)
        processes.freeze(pid)
        try:
            poll(lambda: False, self.freeze_s, poll_s=0.1)  # the fault's length, nothing to await
        finally:
            processes.thaw(pid)


def _ended(stores: Stores, run_id: str) -> int:
    run = stores.runs.get(run_id)
    return run.processed + run.failed if run else 0


@dataclass(frozen=True)
class Evidence:
    """A run as its bitmaps, its documents and its timeline show it (read before its keys go)."""

    maps: verdict.Bitmaps
    docs: verdict.Documents
    points: list[dict[str, Any]]

    @classmethod
    def read(cls, settings: Settings, run_id: str, target: str) -> Evidence:
        stores, store = Stores.of(settings), Store(settings)
        try:
            maps = verdict.bitmaps(stores, run_id, submitted=target != "lab")
            docs = verdict.documents(store, run_id)
        finally:
            store.close()
        points = (stores.runs.timeline(run_id) or {}).get("points", [])
        return cls(maps, docs, points)


def jobs_per_second(points: list[dict[str, Any]]) -> float | None:
    """Jobs ended a second, from the run's first second to the end of the second its last job
    ended: the quiet time a drain waits after a lossy run is not in it."""
    ended = [p["t"] for p in points if p.get("processed") or p.get("failed")]
    if not points or not ended:
        return None
    total = sum(int(p.get("processed") or 0) + int(p.get("failed") or 0) for p in points)
    return round(total / (max(ended) + 1 - points[0]["t"]), 1)


def failures_agree(maps: verdict.Bitmaps, expected: int) -> dict[str, Any]:
    """The jobs that failed for good against `expected` (bit `seq` set: those the run's seed
    fails, `workers.synthetic.fails_for_good`), over the jobs that ended exactly once: a job
    the fault touched so that it never ended (lost) or ended twice is left out, and counted. A
    permanent failure is drawn before any work, so a job killed mid-work was not one."""
    once = (maps.done | maps.failed) & ~maps.again
    observed = maps.failed & ~maps.done & once
    wanted = expected & once
    return {
        "agree": observed == wanted,
        "expected": wanted.bit_count(),
        "observed": observed.bit_count(),
        "differ": (observed ^ wanted).bit_count(),
        "leftOut": (expected & ~once).bit_count(),
    }


def lost_by_documents(x: int, maps: verdict.Bitmaps, docs: verdict.Documents) -> int:
    """Jobs with no document that did not fail for good: what the documents say was lost (a
    job counted done without its document counts here too, and then disagrees with the
    verdict, as it should)."""
    return (((1 << x) - 1) & ~docs.found & ~maps.failed).bit_count()


VERDICT = ("lost", "duplicated", "executedMoreThanOnce", "unexpected", "uncountedEffects")
LATENCIES = ("queueWait", "service", "endToEnd")


def target_figures(row: dict[str, Any], evidence: Evidence | None) -> dict[str, Any]:
    """One target's figures in the summary, from its trial's row and its evidence: named as
    `lab report compare` knows them (`lost`, `jobsPerSecond`, `p99Ms`, ...)."""
    out: dict[str, Any] = {name: row.get(f"verdict.{name}") for name in VERDICT}
    out["submits"] = {k: row.get(f"verdict.submits.{k}") for k in ("ok", "failed", "indeterminate")}
    # Submits that timed out and never ended: neither lost nor processed (docs/concepts.md).
    out["indeterminateUnfinished"] = row.get("verdict.indeterminate.unfinished") or 0
    out.update({"processed": row.get("processed"), "failed": row.get("failed")})
    out["jobsPerSecond"] = jobs_per_second(evidence.points) if evidence else None
    for metric in LATENCIES:
        out[metric] = {f"{s}Ms": _ms(row.get(f"{metric}.{s}Ms")) for s in ("p50", "p99")}
    out["killedAt"] = row.get("fault.killedAt")
    return out


def table_row(target: str, figures: dict[str, Any]) -> dict[str, Any]:
    """One target's line of the drill's table (`target_figures` as a reader reads them): the
    delivery verdict first, then the counts, the rate and the latencies."""
    out: dict[str, Any] = {"target": target}
    out.update({_words(name): figures[name] for name in VERDICT})
    out["submits ok/failed/indeterminate"] = "/".join(map(str, figures["submits"].values()))
    out.update({"processed": figures["processed"], "failed": figures["failed"]})
    out["jobs/s"] = figures["jobsPerSecond"]
    for metric in LATENCIES:
        out.update({f"{metric} {s} ms": figures[metric][f"{s}Ms"] for s in ("p50", "p99")})
    out["killed at"] = figures["killedAt"]
    return out


def _words(name: str) -> str:
    """`executedMoreThanOnce` → `executed more than once`."""
    return "".join(f" {c.lower()}" if c.isupper() else c for c in name)


def _ms(value: Any) -> float | None:
    return round(float(value), 1) if isinstance(value, (int, float)) else None
