"""`lab bench`: the reference job through the real lab processes, measured, beside the ceilings of
the path on this machine.

The reference job is the whole durable path: durable queue, persistent message, publisher
confirms, Elasticsearch upsert by id, exact Redis count, ack after the write. Three measures:

  release     the scheduler alone (no workers) publishing N jobs with confirms: jobs/s
  drain       N jobs preloaded (by that release), then W workers started; timed from 5 % to
              100 % processed, so process start-up is not counted
  end to end  an unthrottled run through scheduler and workers, POST /run to the last document

Each uses its own key prefix, queue and index, deleted afterwards; ceilings are in ceilings.py.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab import __version__
from lab.client import LabClient
from lab.config import Settings
from lab.measure.ceilings import ceilings
from lab.ops import stack
from lab.ops.reset import isolated, reset
from lab.ops.supervisor import Supervisor
from lab.runtime.state import State
from lab.runtime.store import Store
from lab.stats import percentile
from lab.wait import wait_until

UNTHROTTLED_PER_MINUTE = 60_000_000


class BenchError(RuntimeError):
    """The benchmark cannot run as asked; the message says why."""


@dataclass
class Rep:
    release_jobs_s: float
    drain_jobs_s: float
    e2e_jobs_s: float
    e2e_latency_ms_p50: float
    e2e_latency_ms_p99: float
    worker_cpu_s_per_1000: float
    worker_peak_rss_mb: float
    worker_rss_mb_at_10pct: float
    worker_rss_mb_at_end: float
    status_ms_p50: float
    status_ms_p99: float


@dataclass
class Report:
    params: dict[str, Any]
    machine: dict[str, Any]
    reps: list[Rep] = field(default_factory=list)
    ceilings: dict[str, float] = field(default_factory=dict)
    redis_bytes_per_run: int = 0
    peers: dict[str, float] = field(default_factory=dict)

    def ratios(self) -> dict[str, float]:
        """lab against the best peer configuration and against the slowest raw ceiling."""
        s = self.summary()
        out = {}
        if self.ceilings:
            out["drain_vs_slowest_ceiling"] = s["drain_jobs_s"]["median"] / min(
                self.ceilings.values()
            )
        if self.peers:
            best = max(self.peers.values())
            out["drain_vs_best_peer"] = s["drain_jobs_s"]["median"] / best
            out["e2e_vs_best_peer_drain"] = s["e2e_jobs_s"]["median"] / best
        return out

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for name in Rep.__dataclass_fields__:
            values = [getattr(r, name) for r in self.reps]
            out[name] = {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
        return out


# --- process measurements -----------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields_[11]) + int(fields_[12])
    return ticks / 100.0  # USER_HZ is 100 on Linux


def _status_mb(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmHWM:")


def rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmRSS:")


# --- the lab's own measures ---------------------------------------------------------------------
class Bench:
    def __init__(
        self, base: Settings, jobs: int, workers: int, prefetch: int, batch: int, home: Path
    ):
        self.base = base
        self.jobs = jobs
        self.workers = workers
        self.prefetch = prefetch
        self.batch = batch
        self.home = home

    def settings(self) -> Settings:
        return isolated(
            self.base,
            "labbench",
            prefetch=self.prefetch,
            batch=self.batch,
            backlog_limit=max(self.jobs, 1000),
            home=str(self.home),
        )

    def rep(self, settings: Settings | None = None) -> tuple[Rep, int]:
        """One repetition in `settings` (an experiment trial's namespace), or a namespace of
        its own."""
        settings = settings or self.settings()
        supervisor = Supervisor(settings, log_dir=self.home / "logs")
        state = State(settings)
        client = LabClient.of(settings)
        try:
            supervisor.up(workers=0)
            release_s, run_id = self._release(client, state)
            drain_s, cpu, rss, rss_10, rss_end = self._drain(supervisor, state, run_id)
            redis_bytes = state.run_bitmap_bytes(run_id)
            e2e_s, latencies, status_ms = self._end_to_end(client, state, settings)
            return Rep(
                release_jobs_s=self.jobs / release_s,
                drain_jobs_s=0.95 * self.jobs / drain_s,
                e2e_jobs_s=self.jobs / e2e_s,
                e2e_latency_ms_p50=percentile(latencies, 50),
                e2e_latency_ms_p99=percentile(latencies, 99),
                worker_cpu_s_per_1000=cpu / (self.jobs / 1000),
                worker_peak_rss_mb=rss,
                worker_rss_mb_at_10pct=rss_10,
                worker_rss_mb_at_end=rss_end,
                status_ms_p50=percentile(status_ms, 50),
                status_ms_p99=percentile(status_ms, 99),
            ), int(redis_bytes)
        finally:
            supervisor.down()
            client.close()
            cleanup(settings)

    def _release(self, client: LabClient, state: State) -> tuple[float, str]:
        """The scheduler alone: publish every job with confirms; also preloads the drain."""
        run_id = client.run(self.jobs, UNTHROTTLED_PER_MINUTE)["runId"]
        started = time.perf_counter()
        wait_until(lambda: state.known_run(run_id).enqueued >= self.jobs, 600, "the release")
        return time.perf_counter() - started, run_id

    def _drain(
        self, supervisor: Supervisor, state: State, run_id: str
    ) -> tuple[float, float, float, float, float]:
        """Seconds from 5 % to 100 %, worker CPU s, peak RSS, RSS at 10 % and at the end."""
        supervisor.stop("scheduler")
        for _ in range(self.workers):
            supervisor.add_worker()
        pids = [supervisor.pid(n) for n in supervisor.workers()]
        wait_until(
            lambda: state.known_run(run_id).processed >= 0.05 * self.jobs,
            600,
            "5 % processed",
            poll_s=0.01,
        )
        started = time.perf_counter()
        cpu_start = sum(cpu_seconds(p) for p in pids)
        wait_until(
            lambda: state.known_run(run_id).processed >= 0.10 * self.jobs,
            600,
            "10 % processed",
            poll_s=0.01,
        )
        rss_10 = max(rss_mb(p) for p in pids)
        wait_until(
            lambda: state.known_run(run_id).processed >= self.jobs, 600, "the drain", poll_s=0.01
        )
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(p) for p in pids) - cpu_start
        rss_end = max(rss_mb(p) for p in pids)
        peak = max(peak_rss_mb(p) for p in pids)
        supervisor.start("scheduler")
        return elapsed, cpu / 0.95, peak, rss_10, rss_end

    def _end_to_end(
        self, client: LabClient, state: State, settings: Settings
    ) -> tuple[float, list[float], list[float]]:
        status_ms: list[float] = []
        stop = threading.Event()

        def poll_status() -> None:
            poller = LabClient.of(settings)
            try:
                while not stop.is_set() and len(status_ms) < 1000:
                    t = time.perf_counter()
                    poller.status()
                    status_ms.append((time.perf_counter() - t) * 1000)
            finally:
                poller.close()

        started = time.perf_counter()
        run_id = client.run(self.jobs, UNTHROTTLED_PER_MINUTE)["runId"]
        poller = threading.Thread(target=poll_status, daemon=True)
        poller.start()
        wait_until(
            lambda: state.known_run(run_id).processed >= self.jobs,
            600,
            "the end-to-end run",
            poll_s=0.01,
        )
        elapsed = time.perf_counter() - started
        poller.join(timeout=120)
        stop.set()
        return elapsed, latencies_ms(settings, run_id), status_ms


def latencies_ms(settings: Settings, run_id: str, sample: int = 10_000) -> list[float]:
    """Release → document written, from the documents themselves (a sample of up to 10,000)."""
    store = Store(settings)
    try:
        store.refresh()
        docs = store.run_fields(run_id, ["createdAt", "processedAt"], limit=sample)
        return [doc["processedAt"] - doc["createdAt"] for doc in docs]
    finally:
        store.close()


def cleanup(settings: Settings) -> None:
    reset(settings)


# --- release accuracy ---------------------------------------------------------------------------
def rate_check(base: Settings, y: float, seconds: float, home: Path) -> dict[str, float]:
    """The scheduler alone at Y/min for `seconds`: released vs expected, sampled every second."""
    per_s = y / 60
    x = int(per_s * seconds * 2) + 10  # never runs out during the check
    settings = Bench(base, x, 0, base.prefetch, base.batch, home).settings()
    supervisor = Supervisor(settings, log_dir=home / "logs")
    state = State(settings)
    client = LabClient.of(settings)
    try:
        supervisor.up(workers=0)
        run_id = client.run(x, y)["runId"]
        wait_until(
            lambda: state.known_run(run_id).enqueued >= 1, 30, "the first release", poll_s=0.005
        )
        t0 = time.perf_counter()
        worst = 0.0
        for second in range(1, int(seconds) + 1):
            time.sleep(max(0.0, t0 + second - time.perf_counter()))
            expected = per_s * (time.perf_counter() - t0)
            worst = max(worst, abs(state.known_run(run_id).enqueued - expected))
        elapsed = time.perf_counter() - t0
        released = state.known_run(run_id).enqueued
        expected = per_s * elapsed
        client.stop()
        return {
            "yMinutes": y,
            "seconds": round(elapsed, 3),
            "released": released,
            "expected": round(expected, 1),
            "errorPercent": round((released - expected) / expected * 100, 3),
            "worstSampleDeviationJobs": round(worst, 1),
        }
    finally:
        supervisor.down()
        client.close()
        cleanup(settings)


# --- the command --------------------------------------------------------------------------------
def run_bench(
    base: Settings,
    jobs: int,
    workers: int,
    prefetch: int,
    batch: int,
    reps: int,
    out_dir: Path,
    peers: bool = False,
    peer_jobs: int | None = None,
) -> tuple[Report, Path]:
    if peers:  # before minutes of benchmarking, not after
        missing = [m for m in ("celery", "dramatiq") if importlib.util.find_spec(m) is None]
        if missing:
            raise BenchError(
                f"--peers needs {' and '.join(missing)}: pip install -e '.[bench]' "
                "(or run without --peers)"
            )
    stack.up(base)
    report = Report(
        params={
            "jobs": jobs,
            "workers": workers,
            "prefetch": prefetch,
            "batch": batch,
            "reps": reps,
        },
        machine={
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
            "lab": __version__,
        },
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    spec = throughput_spec(jobs, workers, prefetch or base.prefetch, batch or base.batch, reps)
    rows = run_as_experiment(base, spec, out_dir / stamp)
    report.reps = [rep_of(row) for row in rows]
    report.redis_bytes_per_run = int(rows[-1]["redisBytesPerRun"])
    report.ceilings = ceilings(base, jobs, batch)
    if peers:
        from lab.measure.peers.run import run_peers

        report.peers = run_peers(base, peer_jobs or min(jobs, 10_000), base.home_path / "bench")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stamp}.json"
    data = {**asdict(report), "summary": report.summary(), "ratios": report.ratios(), "when": stamp}
    path.write_text(json.dumps(data, indent=2))
    (out_dir / f"{stamp}.md").write_text(markdown(report))
    return report, path


def throughput_spec(jobs: int, workers: int, prefetch: int, batch: int, reps: int) -> Any:
    """`lab bench throughput` as the built-in experiment it is: one configuration, `reps`
    repetitions of the throughput procedure (lab.experiment.trial)."""
    from lab.experiment.spec import Spec

    return Spec.of({
        "name": "throughput", "procedure": "throughput", "repetitions": reps,
        "order": "sequential", "run": {"x": jobs},
        "factors": {"workers": [workers], "prefetch": [prefetch], "batch": [batch]},
    })  # fmt: skip


def run_as_experiment(base: Settings, spec: Any, folder: Path) -> list[dict[str, Any]]:
    """Run a built-in experiment's trials into `folder` (results.csv and .parquet, manifest:
    `lab experiment report` and `lab.experiment.load` read it); a trial that failed fails the
    measure, naming its error."""
    from lab.experiment.runner import Runner

    rows = Runner(spec, folder, base).run()
    failed = [row for row in rows if row.get("error")]
    if failed:
        raise BenchError(f"trial {failed[0]['trial']} failed: {failed[0]['error']}")
    return rows


def rep_of(row: dict[str, Any]) -> Rep:
    from lab.experiment.trial import rep_of as from_row

    return from_row(row)


def markdown(report: Report) -> str:
    s = report.summary()
    p = report.params

    def row(name: str, key: str, unit: str, fmt: str = ",.0f") -> str:
        v = s[key]
        return f"| {name} | {v['median']:{fmt}} {unit} | {v['min']:{fmt}}–{v['max']:{fmt}} |"

    ratios = report.ratios()
    lines = [
        f"`lab bench throughput --jobs {p['jobs']} --workers {p['workers']} "
        f"--prefetch {p['prefetch']} --batch {p['batch']} --reps {p['reps']}` "
        f"on {report.machine['cpus']} CPUs, Python {report.machine['python']}",
        "",
        "| measure | median | min–max |",
        "| --- | --- | --- |",
        row("release (scheduler alone, confirms)", "release_jobs_s", "jobs/s"),
        row(f"drain ({p['workers']} worker(s))", "drain_jobs_s", "jobs/s"),
        row("end to end (POST /run → last document)", "e2e_jobs_s", "jobs/s"),
        row("end-to-end latency p50 (release → written)", "e2e_latency_ms_p50", "ms"),
        row("end-to-end latency p99", "e2e_latency_ms_p99", "ms"),
        row("worker CPU per 1,000 jobs", "worker_cpu_s_per_1000", "s", ".3f"),
        row("worker peak RSS", "worker_peak_rss_mb", "MB", ".1f"),
        row("worker RSS at 10 % of the drain", "worker_rss_mb_at_10pct", "MB", ".1f"),
        row("worker RSS at the end of the drain", "worker_rss_mb_at_end", "MB", ".1f"),
        row("GET /status p50 during a run", "status_ms_p50", "ms", ".2f"),
        row("GET /status p99 during a run", "status_ms_p99", "ms", ".2f"),
        "",
        "| ceiling of the path on this machine | jobs/s |",
        "| --- | --- |",
        *(f"| {k} | {v:,.0f} |" for k, v in report.ceilings.items()),
        "",
        f"lab drain ÷ slowest ceiling: {ratios.get('drain_vs_slowest_ceiling', 0):.0%}",
        f"Redis memory of a run's exactly-once bitmap ({p['jobs']} jobs): "
        f"{report.redis_bytes_per_run:,} bytes",
    ]
    if report.peers:
        lines += [
            "",
            "| peer configuration (drain, same job, same services) | jobs/s |",
            "| --- | --- |",
        ]
        lines += [f"| {name} | {rate:,.0f} |" for name, rate in report.peers.items()]
        lines += [
            "",
            f"lab drain ({p['workers']} worker process(es)) ÷ best peer: "
            f"{ratios['drain_vs_best_peer']:.1f}×  ·  "
            f"lab end to end ÷ best peer drain: {ratios['e2e_vs_best_peer_drain']:.1f}×",
        ]
    return "\n".join(lines) + "\n"
