"""One trial: its own namespace (keys, queues, index, API port), the lab's processes started for
its settings, one run of its configuration, the measures, then everything of it torn down, so
the next trial starts from the same state (the Elasticsearch-API server costs more per document
the more it holds).

Measures (one row): throughput (released, drained after the warm-up, end to end), queue-wait and
end-to-end quantiles, failures and dead letters, CPU seconds per 1,000 jobs and peak RSS for
each process kind, the objectives' verdicts, and what the Elasticsearch server held at the start.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime
from typing import Any

import httpx

from lab.client import LabClient
from lab.config import Settings
from lab.experiment.plan import Trial
from lab.experiment.spec import Spec
from lab.measure.bench import cpu_seconds, peak_rss_mb
from lab.ops.reset import isolated, reset
from lab.ops.supervisor import Supervisor
from lab.runtime.jobs import STATES
from lab.runtime.state import State
from lab.wait import wait_until


def namespace(base: Settings, spec: Spec, trial: Trial) -> Settings:
    """The trial's settings: a namespace of its own and its configuration's process settings."""
    _workers, overrides = spec.process_settings(trial.levels)
    label = f"exp-{spec.name}".lower().replace("_", "-")[:40]
    return isolated(base, label, **overrides)


def run_trial(spec: Spec, trial: Trial, settings: Settings, started: Any = None) -> dict[str, Any]:
    """Run the trial in `settings` (from `namespace`) and return its row; `started(settings)`
    is told before any process starts (the runner records it, to clean up after a kill)."""
    workers, _ = spec.process_settings(trial.levels)
    body = spec.body(trial.levels)
    if started is not None:
        started(settings)
    supervisor = Supervisor(settings)
    row: dict[str, Any] = {}
    try:
        held = documents_on_server(settings.es_url)
        supervisor.up(workers=workers)
        supervisor.wait_api()
        client = LabClient.of(settings)
        wait_until(lambda: len(client.status()["workers"]) >= workers, 60,
                   f"{workers} workers to announce")  # fmt: skip
        before = usage(supervisor)
        began = time.monotonic()
        run_id = client.run(**_client_args(body))["runId"]
        state = State(settings)
        x = int(body["x"])
        limit = max(120.0, 3 * estimate_run_s(body))
        run = wait_until(lambda: (r := state.run(run_id)) and r.settled and r, limit,
                         "the trial's run to settle", poll_s=0.2)  # fmt: skip
        wall = time.monotonic() - began
        after = usage(supervisor)
        row = measures(state, run, x, spec.warmup_s, wall)
        row.update(cpu_and_memory(before, after, x))
        row["esDocumentsAtStart"] = held
    finally:
        supervisor.down(grace_s=10)
        with contextlib.suppress(Exception):  # a service gone: the namespace is unique anyway
            reset(settings)
    return row


def _client_args(body: dict[str, Any]) -> dict[str, Any]:
    """POST /run's body as `LabClient.run`'s arguments."""
    names = {"slo": "slo", "abortOnBreach": "abort_on_breach"}
    out = {names.get(k, k): v for k, v in body.items() if k != "x"}
    return {"x": int(body["x"]), **out}


def estimate_run_s(body: dict[str, Any]) -> float:
    y = body.get("y")
    rate = float(y) / 60 if isinstance(y, (int, float)) and y > 0 else 5000.0
    return int(body.get("x", 0)) / rate


def measures(state: State, run: Any, x: int, warmup_s: float, wall_s: float) -> dict[str, Any]:
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
    points = (state.timeline(run.runId) or {}).get("points", [])
    cut = started + warmup_s
    early = sum((p["processed"] + p["failed"]) * min(1.0, max(0.0, cut - p["t"]))
                for p in points) if warmup_s else 0.0  # fmt: skip
    after_s = seconds - warmup_s
    settled = run.processed + run.failed
    out["drainedPerSecond"] = round((settled - early) / after_s, 1) if after_s > 0 else None
    out["endToEndPerSecond"] = round(x / seconds, 1) if seconds else None
    timing = state.latency(run.runId, windows=False) or {}
    for metric in ("queueWait", "service", "endToEnd"):
        for stat in ("p50Ms", "p99Ms"):
            out[f"{metric}.{stat.removesuffix('Ms')}Ms"] = timing.get(metric, {}).get(stat)
    out["deadLettered"] = state.counters(run.runId, STATES).run_dead
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


def documents_on_server(es_url: str) -> int | None:
    """How many documents the Elasticsearch server holds in every index (None if it cannot say)."""
    try:
        answer = httpx.get(f"{es_url.split(',')[0].rstrip('/')}/_count", timeout=5)
        return int(answer.json()["count"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
