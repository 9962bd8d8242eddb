"""The drill reports run end to end in CI with small parameters; their JSON verdicts must pass.
And Locust, headless, through `lab loadtest`: figures out, thresholds enforced by exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from lab.config import Settings
from lab.supervisor import Supervisor


def lab_report(settings: Settings, out: Path, name: str, **parameters: object) -> dict:
    argv = [sys.executable, "-m", "lab", "report", name, "--out", str(out)]
    for key, value in parameters.items():
        argv += ["-p", key, json.dumps(value)]
    done = subprocess.run(
        argv,
        env={**os.environ, **settings.as_env()},
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    summaries = sorted(out.glob(f"{name}-*.json"))
    assert summaries, done.stdout + done.stderr
    summary = json.loads(summaries[-1].read_text())
    assert done.returncode == 0 and summary["passed"], json.dumps(summary, indent=1)[-4000:]
    assert Path(summary["html"]).is_file() and "<img" in Path(summary["html"]).read_text()
    assert summary["versions"]["services"]["redis"] and summary["machine"]["cpus"]
    assert summary["parameters"] == {**parameters, "SUMMARY_PATH": str(summaries[-1])}
    return summary


def test_latency_report(settings: Settings, tmp_path: Path) -> None:
    summary = lab_report(
        settings, tmp_path, "latency", OFFERED_STEPS=[50, 200], STEP_SECONDS=5, P95_MS=200.0,
        TARGET_RPS=100, RUN_Y=30_000,
    )  # fmt: skip
    figures = summary["figures"]
    steps = figures["steps"]
    assert [s["offeredPerSecond"] for s in steps] == [50, 200]
    assert all(s["requests"] > 0 and s["drainPerSecond"] > 0 for s in steps)
    assert figures["kneePerSecond"] == steps[-1]["answeredPerSecond"] >= 100


def test_scaleout_report(settings: Settings, tmp_path: Path) -> None:
    summary = lab_report(
        settings, tmp_path, "scaleout", WORKER_COUNTS=[1, 2], FAST_JOBS=2000, AGENT_JOBS=20,
        AGENT_SECONDS=1.0,
    )  # fmt: skip
    agent = summary["figures"]["agent"]
    assert [r["workers"] for r in agent] == [1, 2] and agent[1]["jobsPerSecond"] > 0


@pytest.mark.slow
def test_hostile_report(settings: Settings, tmp_path: Path) -> None:
    summary = lab_report(
        settings, tmp_path, "hostile", X=6000, Y=24000, OUTAGE_SECONDS=2, SETTLE_SECONDS=1
    )
    figures = summary["figures"]
    assert (
        figures["serverErrors"] == 0 and figures["wrongAnswers"] == 0 and figures["requests"] > 60
    )
    assert figures["workerRestarts"] == 0 and figures["streamCuts"] == 0
    assert [o["service"] for o in figures["outages"]] == ["Redis", "Elasticsearch", "RabbitMQ"]
    assert figures["processed"] == figures["documents"] == figures["distinct"] == 6000
    # Credentials never reach a report, and the drill leaves no folder behind.
    text = Path(summary["html"]).read_text() + json.dumps(summary)
    assert "guest:guest" not in text
    assert not list(Path(tempfile.gettempdir()).glob("lab-hostile-*"))


@pytest.mark.slow
def test_resilience_report(settings: Settings, tmp_path: Path) -> None:
    summary = lab_report(
        settings, tmp_path, "resilience", X=30000, Y=60000, SETTLE_SECONDS=2, ES_DOWN_SECONDS=3
    )
    figures = summary["figures"]
    assert figures["documents"] == figures["distinct"] == figures["processed"] == 30000
    assert len(figures["faults"]) == 5
    assert all(f["recoverySeconds"] is not None for f in figures["faults"])


@pytest.mark.slow
def test_cluster_report(settings: Settings, tmp_path: Path) -> None:
    """Three private RabbitMQ nodes, quorum queues, the leader killed and a follower stopped:
    nothing lost, nothing doubled, and the one-node classic run beside it."""
    x = 45000  # at 1,000 a second: long enough that work is left when the follower stops
    summary = lab_report(
        settings, tmp_path, "cluster", X=x, Y=60000, DOWN_SECONDS=3, SETTLE_SECONDS=2
    )
    figures = summary["figures"]
    assert figures["documents"] == figures["distinct"] == figures["processed"] == x
    assert [f["jobsLeft"] > 0 for f in figures["faults"]] == [True, True, True]
    assert figures["single"]["jobsPerSecond"] > 0 and figures["throughput"]["after"] > 0
    assert not list(Path(tempfile.gettempdir()).glob("lab-cluster-*"))


def test_bad_report_input_is_named(settings: Settings, tmp_path: Path) -> None:
    for args, message in [
        (["report", "nosuch"], "no report 'nosuch'"),
        (["report", "latency", "-p", "not-a-name", "1"], "not a Python name"),
        (["loadtest", "--max-fail-ratio", "2"], "--max-fail-ratio must be from 0 to 1"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "lab", *args],
            env={**os.environ, **settings.as_env()},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)


def test_loadtest_reports_figures_and_enforces_its_threshold(
    lab: Supervisor, settings: Settings, tmp_path: Path
) -> None:
    lab.start("api")
    lab.wait_api()
    env = {**os.environ, **settings.as_env()}
    base = [sys.executable, "-m", "lab", "loadtest", "--users", "5", "--duration", "3",
            "--out", str(tmp_path)]  # fmt: skip
    ok = subprocess.run(base, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "/status" in ok.stdout and "thresholds passed" in ok.stderr
    stats = (tmp_path / "status-5u_stats.csv").read_text()
    assert "Aggregated" in stats
    strict = subprocess.run(
        [*base, "--scenario", "mixed", "--p95-ms", "0.001"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert strict.returncode == 1 and "thresholds FAILED" in strict.stderr, strict.stderr
    # Each mixed user opens the admin page (the job list) first: there whatever the timing.
    assert "/jobs?limit=20" in (tmp_path / "mixed-5u_stats.csv").read_text()
