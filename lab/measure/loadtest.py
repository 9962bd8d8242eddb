"""`lab loadtest`: Locust headless against the API, with the thresholds of the locustfile.

The same `loadtests/locustfile.py` runs with its web UI (`locust -f loadtests/locustfile.py
--host …`); this wraps the headless form so the CLI, the latency report and CI share one way to
run it and read its figures (Locust's CSV stats).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.config import project_root
from lab.extras import require

SCENARIOS = {"status": "StatusUser", "mixed": "MixedUser", "rate": "StatusRateUser"}
# What a load test's objectives may name (`http.p95<200ms`), from Locust's Aggregated row.
HTTP_MEASURES = {"p50": "p50Ms", "p90": "p90Ms", "p95": "p95Ms", "p99": "p99Ms",
                 "p99.9": "p999Ms", "max": "maxMs"}  # fmt: skip


@dataclass
class LoadtestResult:
    exit_code: int
    users: int
    scenario: str
    requests: int = 0
    failures: int = 0
    rps: float = 0.0
    # Every request's latency, as Locust's "Aggregated" row gives it: p50Ms … p999Ms, maxMs.
    latency_ms: dict[str, float] = field(default_factory=dict)
    per_endpoint: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def measures(self) -> dict[str, float | None]:
        """What objectives judge a load test by (`lab.runtime.slo`, scope `loadtest`): every
        request's latency in ms, and the share that failed; none when nothing was answered."""
        if not self.requests:
            return {}
        judged = {f"http.{name}": self.ms(key) for name, key in HTTP_MEASURES.items()}
        return {**judged, "failedRatio": self.failures / self.requests}

    def ms(self, key: str) -> float:
        """One of `latency_ms` (`p95Ms`), 0 when nothing was answered."""
        return self.latency_ms.get(key, 0.0)

    def summary(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.pop("output")
        out["passed"] = self.passed
        return out


def locust_command() -> list[str]:
    require("locust", "load", "Load generation")
    return [sys.executable, "-m", "locust", "-f", str(locustfile())]


def run_worker(master_host: str, scenario: str, token: str = "", master_port: int = 5557) -> int:
    """A Locust worker for a master on another host (`lab loadtest --master` there)."""
    argv = [*locust_command(), "--worker", "--master-host", master_host,
            "--master-port", str(master_port), SCENARIOS[scenario]]  # fmt: skip
    return subprocess.call(argv, env={**os.environ, "LAB_API_TOKEN": token})


def locustfile() -> Path:
    path = project_root(Path(__file__).parent) / "loadtests" / "locustfile.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run from a checkout of lab")
    return path


def run_locust(
    host: str,
    users: int,
    spawn_rate: float,
    duration_s: float,
    out_dir: Path,
    scenario: str = "status",
    p95_ms: float = 200.0,
    p99_ms: float = 0.0,
    max_fail_ratio: float = 0.0,
    processes: int = 1,
    user_rps: float = 10.0,
    token: str = "",
    expect_remote_workers: int = 0,
    in_step: bool = False,
) -> LoadtestResult:
    """Locust headless; with `processes` > 1 in its distributed mode (a master and that many
    worker processes here), and with `expect_remote_workers` as a master that waits for workers
    started elsewhere (`lab loadtest --worker HOST`). `in_step`: the rate scenario's users all
    on one beat, one burst a period (loadtests/locustfile.py, StatusRateUser)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / f"{scenario}-{users}u"
    options = ["--p95-ms", str(p95_ms), "--p99-ms", str(p99_ms),
               "--max-fail-ratio", str(max_fail_ratio), "--user-rps", str(user_rps),
               *(["--in-step"] if in_step else [])]  # fmt: skip
    argv = [
        *locust_command(), "--headless",
        "--host", host, "-u", str(users), "-r", str(spawn_rate), "-t", f"{duration_s:g}s",
        "--csv", str(prefix), "--only-summary", "--stop-timeout", "5", *options,
    ]  # fmt: skip
    # The locustfile sends the token only to this host (LAB_API_URL), whatever a UI names.
    env = {**os.environ, "LAB_API_TOKEN": token, "LAB_API_URL": host}
    local_workers: list[subprocess.Popen[bytes]] = []
    if processes > 1 or expect_remote_workers:
        from lab.ops.servers import free_port

        port = 5557 if expect_remote_workers else free_port()
        argv += ["--master", "--master-bind-port", str(port),
                 "--expect-workers", str(expect_remote_workers or processes)]  # fmt: skip
        if not expect_remote_workers:
            argv += ["--master-bind-host", "127.0.0.1"]
            local_workers = [
                subprocess.Popen(
                    [
                        *locust_command(),
                        "--worker",
                        "--master-host",
                        "127.0.0.1",
                        "--master-port",
                        str(port),
                        *options,
                        SCENARIOS[scenario],
                    ],  # fmt: skip
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(processes)
            ]
    argv.append(SCENARIOS[scenario])
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=duration_s + 180,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    finally:
        for worker in local_workers:  # they quit with their master; never leave one behind
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    result = LoadtestResult(done.returncode, users, scenario, output=done.stderr + done.stdout)
    stats = Path(f"{prefix}_stats.csv")
    if not stats.is_file():
        return result
    with stats.open() as f:
        for row in csv.DictReader(f):
            entry: dict[str, Any] = {
                "name": row["Name"],
                "method": row["Type"],
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50Ms": float(row["50%"] or 0),
                "p90Ms": float(row["90%"] or 0),
                "p999Ms": float(row["99.9%"] or 0),
                "p95Ms": float(row["95%"] or 0),
                "p99Ms": float(row["99%"] or 0),
                "maxMs": float(row["Max Response Time"] or 0),
                "rps": float(row["Requests/s"] or 0),
            }
            if row["Name"] == "Aggregated":
                result.requests, result.failures = entry["requests"], entry["failures"]
                result.rps = entry["rps"]
                result.latency_ms = {k: entry[k] for k in HTTP_MEASURES.values()}
            else:
                result.per_endpoint.append(entry)
    return result
