"""What a drill (or a trial) shares whichever target it drives (`lab.targets`): the target's
name checked, its workers started under lab's supervisor (so kill -9, freeze and restart hit
them), its run drained, and its delivery verdict judged against the documents.

lab's own pipeline promises exactly-once effects, and its drills demand them. Another framework
may ack a job as it starts, or run it again after a stall: a drill of it reports the delivery
verdict (`lab.targets.verdict`) and checks that the verdict accounts for every job and agrees
with the documents in Elasticsearch, not that nothing was lost.
"""

from __future__ import annotations

import time
from typing import Any

from lab import targets
from lab.client import LabClient
from lab.config import Settings
from lab.measure.drill import Verdicts
from lab.ops.supervisor import Supervisor
from lab.runtime.store import Store
from lab.runtime.stores import Stores
from lab.targets import verdict
from lab.wait import wait_until

# Another target may lose jobs, so its run may never settle: it has drained once every job was
# released and nothing of it ended for this long (what `lab run verdict --drain` waits for).
QUIET_S = 10.0


def check(name: Any) -> str:
    """`name` if it is a target this machine can drive; else `TargetError` in one line, naming
    the targets (an unknown name) or what is missing (`Target.missing`)."""
    cls = targets.target_class(name)
    why = cls.missing()
    if why:
        raise targets.TargetError("target", why)
    return str(name)


def broker(name: str) -> str:
    """The service that carries the target's jobs: `rabbitmq` or `redis`."""
    return "rabbitmq" if "amqp_url" in targets.target_class(name).services else "redis"


def worker_args(name: str) -> list[str]:
    """`lab worker`'s arguments that make it the target's worker."""
    return [] if name == targets.DEFAULT else ["--target", name]


def start(supervisor: Supervisor, settings: Settings, workers: int, name: str) -> None:
    """The lab's API and scheduler and `workers` of the target's workers, under `supervisor`,
    once every worker has announced itself in `/status`."""
    supervisor.up(workers=workers, worker_args=worker_args(name), wait=False)
    supervisor.wait_api(60)  # beside a framework's workers starting, on a busy machine
    client = LabClient.of(settings)
    try:
        wait_until(lambda: len(client.status()["workers"]) >= workers, 60,
                   f"{workers} {name} workers to announce")  # fmt: skip
    finally:
        client.close()


def drained(stores: Stores, run_id: str, limit_s: float, quiet_s: float) -> Any:
    """The run once it settled, or (`quiet_s` > 0: another target, which may lose jobs) once it
    has released every job and nothing of it has ended for `quiet_s`."""
    last: list[Any] = [None, time.monotonic()]

    def done() -> Any:
        run = stores.runs.get(run_id)
        if run is None or run.settled:
            return run
        ended = (run.processed, run.failed, run.executedAgain)
        if ended != last[0]:
            last[:] = [ended, time.monotonic()]
        quiet = quiet_s > 0 and run.enqueued >= run.xTotal
        return run if quiet and time.monotonic() - last[1] >= quiet_s else None

    return wait_until(done, limit_s, "the run to settle", poll_s=0.2)


def settle(stores: Stores, run_id: str, name: str, limit_s: float, quiet_s: float = QUIET_S) -> Any:
    """The run drained as its target is: lab's until it settled, another's until nothing of it
    ended for `quiet_s` (what is missing then is lost, or comes back later than that)."""
    return drained(stores, run_id, limit_s, 0 if name == targets.DEFAULT else quiet_s)


def read(settings: Settings, run_id: str) -> dict[str, Any]:
    """The run's delivery verdict, with its documents."""
    store = Store(settings)
    try:
        return verdict.read(Stores.of(settings), store, run_id) or {}
    finally:
        store.close()


def flat(found: dict[str, Any]) -> dict[str, Any]:
    """A verdict flattened for a results row (`verdict.lost`, `verdict.submits.ok`, ...)."""
    keys = ("lost", "duplicated", "executedMoreThanOnce", "unexpected", "uncountedEffects",
            "clean")  # fmt: skip
    out = {f"verdict.{k}": found.get(k) for k in keys}
    out["verdict.indeterminate.unfinished"] = (found.get("indeterminate") or {}).get("unfinished")
    out.update({f"verdict.submits.{k}": v for k, v in (found.get("submits") or {}).items()})
    return out


def of_row(row: dict[str, Any]) -> dict[str, Any]:
    """A results row's verdict (`flat`'s columns, with the row's `processed` and `failed`) as
    the verdict `judge` and `summary` take."""
    prefix = "verdict."
    found: dict[str, Any] = {"processed": row.get("processed"), "failed": row.get("failed"),
                             "indeterminate": {}, "submits": {}}  # fmt: skip
    for column, value in row.items():
        if not column.startswith(prefix):
            continue
        name = column.removeprefix(prefix)
        group, _, key = name.partition(".")
        if key:
            found.setdefault(group, {})[key] = value
        else:
            found[name] = value
    return found


def accounted(found: dict[str, Any]) -> int:
    """The verdict's own accounting of the released jobs: each ended (processed or failed),
    lost, ran without its end counted (an uncounted effect) or is an indeterminate submit that
    never ended."""
    unfinished = (found.get("indeterminate") or {}).get("unfinished") or 0
    return sum(int(found.get(k) or 0) for k in ("processed", "failed", "lost",
                                                "uncountedEffects")) + int(unfinished)  # fmt: skip


def summary(found: dict[str, Any]) -> str:
    """The verdict in one line, for a headline."""
    unfinished = (found.get("indeterminate") or {}).get("unfinished")
    names = {"processed": "processed", "failed": "failed", "lost": "lost",
             "duplicated": "duplicated", "executedMoreThanOnce": "executed more than once",
             "unexpected": "unexpected", "uncountedEffects": "uncounted effects"}  # fmt: skip
    shown = [f"{label} {found.get(key)}" for key, label in names.items()]
    return ", ".join([*shown, f"indeterminate unfinished {unfinished}"])


def judge(
    verdicts: Verdicts, found: dict[str, Any], x: int, documents: int, distinct: int,
    label: str = "", clean: bool = False,
) -> None:  # fmt: skip
    """The checks of another target's run: every one of the `x` jobs accounted for by the
    verdict, the verdict agreeing with the `documents` (and `distinct` jobIds) Elasticsearch
    holds, and (`clean`: a run no fault hit) nothing lost, duplicated or unexpected."""
    processed, failed = int(found.get("processed") or 0), int(found.get("failed") or 0)
    uncounted = int(found.get("uncountedEffects") or 0)
    total = accounted(found)
    expected = (f"processed + failed + lost + uncounted effects + unfinished indeterminate = {x}, "
                "none unexpected")  # fmt: skip
    verdicts.check(
        f"{label}every job accounted for",
        total == x and not found.get("unexpected"),
        expected,
        f"{total}, {found.get('unexpected')} unexpected",
    )
    # Each job that ended done has its document, and so has each uncounted effect; a job that
    # failed for good may have written one before it failed.
    low, high = processed + uncounted, processed + failed + uncounted
    verdicts.check(f"{label}the verdict agrees with Elasticsearch",
                   low <= distinct <= high and documents == distinct,
                   f"{low}..{high} jobIds, one document each", f"{distinct} jobIds, {documents} "
                   "documents")  # fmt: skip
    if clean:
        verdicts.check(f"{label}nothing lost, duplicated or unexpected", bool(found.get("clean")),
                       "a clean verdict (no fault hit the run)", summary(found))  # fmt: skip
