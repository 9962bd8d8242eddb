"""One trial: its own namespace (keys, queues, index, API port), the lab's processes started for
its settings, its procedure, the measures, then everything of it torn down, so the next trial
starts from the same state (the Elasticsearch-API server costs more per document the more it
holds). What the trial is comes from its levels, each applied by its factor (`Spec.setup`,
lab.experiment.factors): the run's body, the processes' settings and workers, a fault proxy of
its own with a preset on (`fault`), GET /status offered a second while the run runs (`statusLoad`).

Procedures (`Spec.procedure`), one row each:

  run         one run of the configuration: throughput (released, drained after the warm-up, end
              to end), queue-wait, service and end-to-end quantiles, failures and dead letters,
              documents (one per processed job), each worker's share (Jain's fairness), CPU
              seconds per 1,000 jobs and peak RSS for each process kind, the objectives'
              verdicts, GET /status under its load
  throughput  `lab bench throughput`'s repetition (lab.measure.bench): release alone, drain,
              end to end with GET /status polled, on lab's workers or a target's, and the
              delivery verdict of its two runs added up

Both record what the Elasticsearch server held when the trial started.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from lab import targets
from lab.client import LabClient
from lab.config import Settings
from lab.experiment import running
from lab.experiment.alongside import Alongside
from lab.experiment.factors import Setup
from lab.experiment.plan import Trial
from lab.experiment.spec import Spec
from lab.experiment.statusload import StatusLoad
from lab.measure import delivery
from lab.measure.bench import Bench, Rep, cpu_seconds, peak_rss_mb
from lab.ops.reset import isolated, reset
from lab.ops.supervisor import Supervisor
from lab.runtime.jobs import STATES
from lab.runtime.store import Store
from lab.runtime.stores import Stores
from lab.wait import wait_until

Started = Callable[..., None]  # told the trial's settings (and its fault proxy's pid) first


def namespace(base: Settings, spec: Spec, trial: Trial) -> Settings:
    """The trial's settings: a namespace of its own (named by `running.names`, the form a
    resumed running.json must have) and its configuration's process settings."""
    own = running.names(spec.name, running.new_tag())
    return isolated(base, running.label(spec.name), **own, **spec.setup(trial.levels).settings)


Observe = Callable[[Settings, str, dict[str, Any]], None]


def run_trial(
    spec: Spec,
    trial: Trial,
    settings: Settings,
    started: Started | None = None,
    observe: Observe | None = None,
) -> dict[str, Any]:
    """Run the trial in `settings` (from `namespace`) and return its row; `started(settings,
    faults_pid)` is told before any process starts (the runner records it, to clean up after a
    kill); `observe(settings, run_id, row)` after a run is measured, before its keys go (a
    drill reads its latency there)."""
    setup = spec.setup(trial.levels)
    tell = started or (lambda *_: None)
    held = documents_on_server(settings.es_url)
    with fault_proxy(settings, setup.fault) as (through, proxy_pid):
        tell(through, proxy_pid)
        if spec.procedure == "throughput":
            row = _throughput(setup, through)
        else:
            row = one_run(setup, through, spec.warmup_s, observe)
    row["esDocumentsAtStart"] = held
    return row


@contextlib.contextmanager
def fault_proxy(settings: Settings, preset: str) -> Iterator[tuple[Settings, int | None]]:
    """The trial's settings through a fault proxy of its own with `preset` on (its pid, to stop
    it after a kill), or as they are for `none`."""
    if preset == "none":
        yield settings, None
        return
    from lab.ops import servers
    from lab.ops.faults import plan, presets
    from lab.ops.faults.client import FaultClient

    home = Path(tempfile.mkdtemp(prefix="lab-trial-faults-"))
    proxy = servers.start_faults(servers.free_port(), home, [])
    try:
        faults = FaultClient(proxy.url, token=settings.api_token)
        opened = faults.populate(plan.proxies_for(settings, presets.SERVICES, free=True))
        listening = {p["name"]: p["listen"] for p in opened}
        presets.apply(faults, preset)
        faults.close()
        yield (
            settings.with_overrides(
                faults_url=proxy.url, **plan.through(settings, listening, presets.SERVICES)
            ),
            proxy.pid,
        )
    finally:
        proxy.stop()
        shutil.rmtree(home, ignore_errors=True)


# A fault a drill injects while a run runs (`lab.measure.targets.kill_at`): called on a thread of
# its own with the trial's supervisor, stores and run id once the run started; it ends by itself
# (the run settled, or its deadline) and returns figures for the row.
Fault = Callable[[Supervisor, Stores, str], dict[str, Any]]


def one_run(
    setup: Setup,
    settings: Settings,
    warmup_s: float = 0.0,
    observe: Observe | None = None,
    fault: Fault | None = None,
    quiet_s: float = delivery.QUIET_S,
    limit_s: float | None = None,
) -> dict[str, Any]:
    """One run of `setup` in `settings` (a namespace of its own, deleted after): the lab's
    processes for the run's target started, the run started, drained and measured.

    Args:
        warmup_s: seconds at the start left out of the drained rate.
        observe: told `(settings, run_id, row)` once the row is measured, before the keys go.
        fault: injected while the run runs (then CPU and the workers' shares are not measured).
        quiet_s: another target's run is drained once everything is released and nothing of
            it ended for this long (what is missing then is lost, or comes back later than that).
        limit_s: the longest the run may take to drain (default: 3 × its release, 120 s at least).
    """
    workers, body, status_load = setup.workers, setup.body, setup.status_load
    supervisor = Supervisor(settings)
    row: dict[str, Any] = {}
    try:
        target = body.get("target") or targets.DEFAULT
        delivery.start(supervisor, settings, workers, target)
        client = LabClient.of(settings)
        before = usage(supervisor)
        began = time.monotonic()
        run_id = client.run(**_client_args(body))["runId"]
        load = (
            StatusLoad(settings, run_id, status_load, estimate_run_s(body)) if status_load else None
        )
        stores = Stores.of(settings)
        faulting = None
        if fault is not None:
            faulting = Alongside("trial-fault", lambda: fault(supervisor, stores, run_id),
                                 "fault.error")  # fmt: skip
        x = int(body["x"])
        limit = limit_s or max(120.0, 3 * estimate_run_s(body))
        run = delivery.settle(stores, run_id, target, limit, quiet_s)
        wall = time.monotonic() - began
        row = measures(stores, run, x, warmup_s, wall)
        row.update(delivery.flat(delivery.read(settings, run_id)))
        row.update(documents(settings, run_id))
        if faulting is not None:  # a killed worker took its CPU seconds and share with it
            row.update(faulting.result())
        else:
            row.update(cpu_and_memory(before, usage(supervisor), x))
            row.update(shares(client, run.processed, workers))
        if load is not None:
            row.update(load.result())
        if observe is not None:
            observe(settings, run_id, row)
    finally:
        supervisor.down(grace_s=10)
        with contextlib.suppress(Exception):  # a service gone: the namespace is unique anyway
            reset(settings)
    return row


# The throughput procedure's row: `lab bench throughput`'s repetition under the names runs use.
REP_COLUMNS = {
    "release_jobs_s": "releasedPerSecond",
    "drain_jobs_s": "drainedPerSecond",
    "e2e_jobs_s": "endToEndPerSecond",
    "e2e_latency_ms_p50": "endToEnd.p50Ms",
    "e2e_latency_ms_p99": "endToEnd.p99Ms",
    "worker_cpu_s_per_1000": "cpu.workerSecondsPer1000",
    "worker_peak_rss_mb": "peakRss.workerMB",
    "worker_rss_mb_at_10pct": "rss.workerAt10PercentMB",
    "worker_rss_mb_at_end": "rss.workerAtEndMB",
    "status_ms_p50": "status.p50Ms",
    "status_ms_p99": "status.p99Ms",
}


def _throughput(setup: Setup, settings: Settings) -> dict[str, Any]:
    workers, x = setup.workers, int(setup.body["x"])
    settings = settings.with_overrides(backlog_limit=max(x, 1000))
    target = setup.body.get("target") or targets.DEFAULT
    bench = Bench(settings, x, workers, settings.prefetch, settings.batch,
                  settings.home_path / "bench", target)  # fmt: skip
    rep, redis_bytes, checked = bench.rep(settings)
    row: dict[str, Any] = {
        column: round(getattr(rep, name), 4) for name, column in REP_COLUMNS.items()
    }
    row["redisBytesPerRun"] = redis_bytes
    for key, value in checked.items():  # the two runs' jobs: `released` and `processed` 2 × x
        row[key if key in ("released", "processed", "failed") else f"verdict.{key}"] = value
    return row


def rep_of(row: dict[str, Any]) -> Rep:
    """A throughput trial's row as the bench's repetition (its report and table)."""
    return Rep(**{name: float(row[column]) for name, column in REP_COLUMNS.items()})


def _client_args(body: dict[str, Any]) -> dict[str, Any]:
    """POST /run's body as `LabClient.run`'s arguments."""
    names = {"slo": "slo", "abortOnBreach": "abort_on_breach"}
    out = {names.get(k, k): v for k, v in body.items() if k != "x"}
    return {"x": int(body["x"]), **out}


def estimate_run_s(body: dict[str, Any]) -> float:
    y = body.get("y")
    rate = float(y) / 60 if isinstance(y, (int, float)) and y > 0 else 5000.0
    return int(body.get("x", 0)) / rate


def measures(stores: Stores, run: Any, x: int, warmup_s: float, wall_s: float) -> dict[str, Any]:
    """Throughput, latency, failures and objectives of a settled run."""
    out: dict[str, Any] = {"runId": run.runId, "state": run.state, "processed": run.processed,
                           "failed": run.failed, "seconds": run.durationSeconds}  # fmt: skip
    started = datetime.fromisoformat(run.startedAt).timestamp()
    if run.releasedAt:
        span = datetime.fromisoformat(run.releasedAt).timestamp() - started
        out["releasedPerSecond"] = round(run.enqueued / span, 1) if span > 0 else None
    seconds = run.durationSeconds or wall_s
    # Settled per second from the warm-up's end to the run's end (the timeline says how many
    # settled in the warm-up's seconds; the second it ends in counts by its share).
    points = (stores.runs.timeline(run.runId) or {}).get("points", [])
    cut = started + warmup_s
    early = sum((p["processed"] + p["failed"]) * min(1.0, max(0.0, cut - p["t"]))
                for p in points) if warmup_s else 0.0  # fmt: skip
    after_s = seconds - warmup_s
    settled = run.processed + run.failed
    out["drainedPerSecond"] = round((settled - early) / after_s, 1) if after_s > 0 else None
    out["endToEndPerSecond"] = round(x / seconds, 1) if seconds else None
    timing = stores.runs.latency(run.runId, windows=False) or {}
    for metric in ("queueWait", "service", "endToEnd"):
        for stat in ("p50Ms", "p99Ms"):
            out[f"{metric}.{stat.removesuffix('Ms')}Ms"] = timing.get(metric, {}).get(stat)
    out["deadLettered"] = stores.overview.counters(run.runId, STATES).run_dead
    objectives = run.slo or []
    out["sloBreached"] = any(o.get("state") == "breached" for o in objectives)
    out["slo"] = [{"text": o.get("text"), "state": o.get("state"), "value": o.get("value")}
                  for o in objectives]  # fmt: skip
    return out


def usage(supervisor: Supervisor) -> dict[str, tuple[str, float, float]]:
    """Each live child's role, CPU seconds so far and peak RSS (MB), from /proc."""
    out = {}
    for child in supervisor.status():
        pid = child.get("pid")
        if not child.get("running") or pid is None:
            continue
        try:
            out[child["name"]] = (child["role"], cpu_seconds(pid), peak_rss_mb(pid))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return out


def cpu_and_memory(
    before: dict[str, tuple[str, float, float]], after: dict[str, tuple[str, float, float]], x: int
) -> dict[str, Any]:
    """CPU seconds per 1,000 jobs and peak RSS (MB), per process kind (workers summed)."""
    cpu: dict[str, float] = {}
    peak: dict[str, float] = {}
    for name, (role, seconds, rss) in after.items():
        spent = seconds - before.get(name, (role, 0.0, 0))[1]
        cpu[role] = cpu.get(role, 0.0) + spent
        peak[role] = max(peak.get(role, 0), rss)
    out: dict[str, Any] = {}
    for role in sorted(cpu):
        out[f"cpu.{role}SecondsPer1000"] = round(cpu[role] / x * 1000, 4) if x else None
        out[f"peakRss.{role}MB"] = round(peak[role], 1)
    return out


def documents(settings: Settings, run_id: str) -> dict[str, Any]:
    """The run's documents and distinct job ids: one per processed job, or the trial is wrong."""
    store = Store(settings)
    try:
        store.refresh()
        return {
            "documents": store.count(run_id),
            "distinctDocuments": store.distinct_job_ids(run_id),
        }
    finally:
        store.close()


def jain(counts: list[int]) -> float | None:
    """Jain's fairness of the workers' shares: 1.0 even, 1/n one worker did everything."""
    total = sum(counts)
    return round(total**2 / (len(counts) * sum(c * c for c in counts)), 3) if total else None


def shares(client: LabClient, processed: int, workers: int) -> dict[str, Any]:
    """Each worker's share of the run's processed jobs, from their heartbeats (which report
    every LAB_HEARTBEAT_S: waited for until they add up, briefly)."""

    def counts() -> list[int] | None:
        found = [int(w.get("processed") or 0) for w in client.status()["workers"]]
        return found if len(found) >= workers and sum(found) >= processed else None

    try:
        found = wait_until(counts, 15, "the workers' heartbeats to report every job", poll_s=0.25)
    except TimeoutError:
        return {"perWorker": None, "jain": None}
    return {"perWorker": sorted(found, reverse=True), "jain": jain(found)}


def documents_on_server(es_url: str) -> int | None:
    """How many documents the Elasticsearch server holds in every index (None if it cannot say)."""
    try:
        answer = httpx.get(f"{es_url.split(',')[0].rstrip('/')}/_count", timeout=5)
        return int(answer.json()["count"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
