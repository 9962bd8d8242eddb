"""`lab bench`: the reference job through the real lab processes, measured, beside the ceilings of
the path on this machine.

The reference job is the whole durable path: durable queue, persistent message, publisher
confirms, Elasticsearch upsert by id, exact Redis count, ack after the write. Three measures:

  release     the scheduler alone (no workers) publishing N jobs with confirms: jobs/s
  drain       N jobs preloaded (by that release), then W workers started; timed from 5 % to
              100 % processed, so process start-up is not counted
  end to end  an unthrottled run through scheduler and workers, POST /run to the last document

The same three measure any target (`Bench(target=...)`: Celery's, Dramatiq's, ... workers drain
what lab's scheduler released to their broker), each run's delivery verdict beside them.

Each uses its own key prefix, queue and index, deleted afterwards; ceilings are in ceilings.py.
`lab bench throughput` runs `Bench.rep` as the trials of a built-in experiment
(lab.experiment.throughput; with `--peers`, one over targets): lab.experiment uses these
instruments, never the reverse.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import targets
from lab.client import LabClient
from lab.config import Settings
from lab.measure import delivery
from lab.ops.reset import isolated, reset
from lab.ops.supervisor import Supervisor
from lab.runtime.store import Store
from lab.runtime.stores import Stores
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
    # With --peers (lab.experiment.peers): each target's figures with their intervals, the best
    # peer, and lab's ratio to it.
    peers: dict[str, Any] = field(default_factory=dict)

    def ratios(self) -> dict[str, float]:
        """lab against the slowest raw ceiling, and against the best peer (same experiment)."""
        s = self.summary()
        out = {}
        if self.ceilings:
            out["drain_vs_slowest_ceiling"] = s["drain_jobs_s"]["median"] / min(
                self.ceilings.values()
            )
        for measure, ratio in self.peers.get("labVsBest", {}).items():
            out[f"{measure}_vs_best_peer"] = ratio["ratio"]
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
        self,
        base: Settings,
        jobs: int,
        workers: int,
        prefetch: int,
        batch: int,
        home: Path,
        target: str = targets.DEFAULT,
    ):
        self.base = base
        self.jobs = jobs
        self.workers = workers
        self.prefetch = prefetch
        self.batch = batch
        self.home = home
        self.target = target
        # Whose workers drain, and where the scheduler releases to (None: lab's own).
        self.worker_args = delivery.worker_args(target)
        self.run_target = None if target == targets.DEFAULT else target

    def settings(self) -> Settings:
        return isolated(
            self.base,
            "labbench",
            prefetch=self.prefetch,
            batch=self.batch,
            backlog_limit=max(self.jobs, 1000),
            home=str(self.home),
        )

    def rep(self, settings: Settings | None = None) -> tuple[Rep, int, dict[str, Any]]:
        """One repetition in `settings` (an experiment trial's namespace), or a namespace of
        its own: its figures, the Redis bytes of a run's bitmap, and the delivery verdict of its
        two runs (`delivered`)."""
        settings = settings or self.settings()
        supervisor = Supervisor(settings, log_dir=self.home / "logs")
        stores = Stores.of(settings)
        client = LabClient.of(settings)
        try:
            supervisor.up(workers=0)
            release_s, run_id = self._release(client, stores)
            drain_s, cpu, rss, rss_10, rss_end = self._drain(supervisor, stores, run_id)
            redis_bytes = stores.counting.bitmap_bytes(run_id)
            e2e_s, latencies, status_ms, e2e_id = self._end_to_end(client, stores, settings)
            checked = delivered(settings, [run_id, e2e_id])
            rep = Rep(
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
            )
            return rep, int(redis_bytes), checked
        finally:
            supervisor.down()
            client.close()
            cleanup(settings)

    def _release(self, client: LabClient, stores: Stores) -> tuple[float, str]:
        """The scheduler alone: publish every job with confirms; also preloads the drain."""
        run_id = client.run(self.jobs, UNTHROTTLED_PER_MINUTE, target=self.run_target)["runId"]
        started = time.perf_counter()
        wait_until(lambda: stores.runs.known(run_id).enqueued >= self.jobs, 600, "the release")
        return time.perf_counter() - started, run_id

    def _drain(
        self, supervisor: Supervisor, stores: Stores, run_id: str
    ) -> tuple[float, float, float, float, float]:
        """Seconds from 5 % to 100 %, worker CPU s, peak RSS, RSS at 10 % and at the end."""
        supervisor.stop("scheduler")
        for _ in range(self.workers):
            supervisor.add_worker(self.worker_args)
        pids = [supervisor.pid(n) for n in supervisor.workers()]
        wait_until(
            lambda: stores.runs.known(run_id).processed >= 0.05 * self.jobs,
            600,
            "5 % processed",
            poll_s=0.01,
        )
        started = time.perf_counter()
        cpu_start = sum(cpu_seconds(p) for p in pids)
        wait_until(
            lambda: stores.runs.known(run_id).processed >= 0.10 * self.jobs,
            600,
            "10 % processed",
            poll_s=0.01,
        )
        rss_10 = max(rss_mb(p) for p in pids)
        wait_until(
            lambda: stores.runs.known(run_id).processed >= self.jobs, 600, "the drain", poll_s=0.01
        )
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(p) for p in pids) - cpu_start
        rss_end = max(rss_mb(p) for p in pids)
        peak = max(peak_rss_mb(p) for p in pids)
        supervisor.start("scheduler")
        return elapsed, cpu / 0.95, peak, rss_10, rss_end

    def _end_to_end(
        self, client: LabClient, stores: Stores, settings: Settings
    ) -> tuple[float, list[float], list[float], str]:
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
        run_id = client.run(self.jobs, UNTHROTTLED_PER_MINUTE, target=self.run_target)["runId"]
        poller = threading.Thread(target=poll_status, daemon=True)
        poller.start()
        wait_until(
            lambda: stores.runs.known(run_id).processed >= self.jobs,
            600,
            "the end-to-end run",
            poll_s=0.01,
        )
        elapsed = time.perf_counter() - started
        poller.join(timeout=120)
        stop.set()
        return elapsed, latencies_ms(settings, run_id), status_ms, run_id


def delivered(settings: Settings, run_ids: list[str]) -> dict[str, Any]:
    """The delivery verdict of the runs, added up: jobs they released and processed, lost,
    duplicated, executed more than once, unexpected, and clean when every one of them is."""
    found = [delivery.read(settings, run_id) for run_id in run_ids]
    counts = ("released", "processed", "failed", "lost", "duplicated", "executedMoreThanOnce",
              "unexpected", "uncountedEffects")  # fmt: skip
    out: dict[str, Any] = {k: sum(int(v.get(k) or 0) for v in found) for k in counts}
    out["clean"] = all(v.get("clean") for v in found)
    return out


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
    stores = Stores.of(settings)
    client = LabClient.of(settings)
    try:
        supervisor.up(workers=0)
        run_id = client.run(x, y)["runId"]
        wait_until(
            lambda: stores.runs.known(run_id).enqueued >= 1, 30, "the first release", poll_s=0.005
        )
        t0 = time.perf_counter()
        worst = 0.0
        for second in range(1, int(seconds) + 1):
            time.sleep(max(0.0, t0 + second - time.perf_counter()))
            expected = per_s * (time.perf_counter() - t0)
            worst = max(worst, abs(stores.runs.known(run_id).enqueued - expected))
        elapsed = time.perf_counter() - t0
        released = stores.runs.known(run_id).enqueued
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
