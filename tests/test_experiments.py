"""An experiment on real services, through the CLI as a user runs it: 2 factors × 2 levels × 2
repetitions, the runner killed with SIGKILL mid-trial, `--resume` finishing it with every trial
exactly once (what the killed trial left in Redis, RabbitMQ and Elasticsearch is deleted), then
the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pika.exceptions
import pytest
import redis

from lab.config import Settings
from lab.experiment import load
from lab.ops.supervisor import Supervisor
from lab.runtime import broker

from .helpers import wait_until

EXPERIMENT = """
name = "suite"
repetitions = 2
seed = 11
warmupSeconds = 0

[run]
x = 1500
y = 6000000

[factors]
workers = [1, 2]
batch = [50, 100]
"""


@pytest.mark.slow
def test_an_experiment_runs_resumes_after_kill_9_and_reports(
    settings: Settings, tmp_path: Path
) -> None:
    file, folder = tmp_path / "suite.toml", tmp_path / "out"
    file.write_text(EXPERIMENT)
    env = {**os.environ, **settings.as_env()}
    argv = [sys.executable, "-m", "lab", "experiment", "run", str(file), "--out", str(folder)]

    plan = subprocess.run([*argv, "--dry-run", "--json"], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert len(json.loads(plan.stdout)) == 8

    runner = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        # Killed while a trial's processes run, after some trials have their rows.
        def mid_trial() -> bool:
            if len(_rows(folder)) < 2 or not (folder / "running.json").is_file():
                return False
            running = json.loads((folder / "running.json").read_text())
            return any(c["running"] for c in left_over(settings, running["prefix"]))

        wait_until(mid_trial, 180, "two trials done and a third running")
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait(30)
    rows_before = _rows(folder)
    interrupted = json.loads((folder / "running.json").read_text())
    # The trial's processes die with the runner (they are tied to it).
    wait_until(lambda: not any(c["running"] for c in left_over(settings, interrupted["prefix"])),
               30, "the killed trial's processes to end")  # fmt: skip

    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "--resume" in again.stderr  # never counted twice by accident
    resumed = subprocess.run([*argv, "--resume"], env=env, capture_output=True, text=True,
                             timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "cleaned up the interrupted trial" in resumed.stderr
    assert not (folder / "running.json").exists()
    # What it had made is deleted with its namespace.
    assert not queue_exists(settings, interrupted["queue"])
    found = redis.Redis.from_url(settings.redis_url).scan_iter(f"{interrupted['prefix']}:*")
    assert not list(found)

    frame = load(folder)
    assert len(frame) == 8 and frame["trial"].is_unique
    assert set(rows_before) <= set(frame["trial"])  # the rows written before the kill stand
    assert (frame["error"].isna() | (frame["error"] == "")).all(), frame["error"].tolist()
    assert (frame["processed"] == 1500).all() and frame["drainedPerSecond"].gt(0).all()
    assert frame.groupby(["workers", "batch"]).size().tolist() == [2, 2, 2, 2]
    assert frame["endToEnd.p99Ms"].gt(0).all() and frame["cpu.workerSecondsPer1000"].gt(0).all()
    assert len(pd.read_parquet(folder / "results.parquet")) == 8

    changed = tmp_path / "changed.toml"
    changed.write_text(EXPERIMENT.replace("seed = 11", "seed = 12"))
    refused = subprocess.run([sys.executable, "-m", "lab", "experiment", "run", str(changed),
                              "--out", str(folder), "--resume"], env=env, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2 and "another version of this file" in refused.stderr

    report = subprocess.run([sys.executable, "-m", "lab", "experiment", "report", str(folder)],
                            env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    summary = json.loads(next(folder.glob("experiment-*.json")).read_text())
    assert summary["passed"] and summary["headline"]["workers=1"].startswith("drainedPerSecond")
    assert {p["verdict"] for p in summary["figures"]["pairs"]} <= {"real", "within noise"}
    page = Path(summary["html"]).read_text()
    # The verdict comes first, then the intervals (the code is hidden).
    assert "PASSED" in page and page.index('id="lab-verdict"') < page.index('class="headline"')
    assert "analysis.by_configuration" not in page


def _rows(folder: Path) -> list[str]:
    path = folder / "results.csv"
    if not path.is_file():
        return []
    return [line.split(",")[0] for line in path.read_text().splitlines()[1:]]


def left_over(settings: Settings, prefix: str) -> list[dict]:
    return Supervisor(settings.with_overrides(prefix=prefix)).status()


def queue_exists(settings: Settings, name: str) -> bool:
    connection = broker.connect(settings.amqp_url, "lab-test-exists")
    try:
        connection.channel().queue_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return False
        raise
    finally:
        if connection.is_open:
            connection.close()


CONDITIONS = """
name = "conditions"
repetitions = 1
order = "sequential"

[run]
x = 400
y = 60000

[factors]
fault = ["none", "es-slow"]
statusLoad = [40]
"""


@pytest.mark.slow
def test_a_trial_runs_behind_its_fault_preset_under_its_status_load(
    settings: Settings, tmp_path: Path
) -> None:
    file, folder = tmp_path / "conditions.toml", tmp_path / "out"
    file.write_text(CONDITIONS)
    env = {**os.environ, **settings.as_env()}
    done = subprocess.run([sys.executable, "-m", "lab", "experiment", "run", str(file), "--out",
                           str(folder)], env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    frame = load(folder).set_index("fault")
    assert (frame["error"].isna() | (frame["error"] == "")).all(), frame["error"].tolist()
    assert (frame["processed"] == 400).all() and (frame["documents"] == 400).all()
    assert (frame["distinctDocuments"] == 400).all()
    # Every bulk write went through Elasticsearch 50 ms (± 10) later, and a job's service time
    # holds its batch's write: no job of the faulted trial can take less than 40 ms, however
    # busy the machine (a busy one slows both trials alike, so their difference proves less).
    assert frame.loc["es-slow", "service.p50Ms"] >= 40, frame[["service.p50Ms", "service.p99Ms"]]
    # GET /status was offered and answered while each run ran, without a failure.
    assert (frame["status.offeredPerSecond"] == 40).all()
    assert frame["status.answeredPerSecond"].gt(0).all() and (frame["status.failures"] == 0).all()
    # The trial's own fault proxy is gone with it.
    assert not (folder / "running.json").exists()
    assert not fault_proxies(settings.prefix)


def fault_proxies(prefix: str) -> set[int]:
    """The pids of `lab fault serve` processes started for this test's namespace: they inherit
    its `LAB_PREFIX` (other tests, in parallel, run proxies of their own)."""
    found = subprocess.run(["pgrep", "-f", "lab fault serve"], capture_output=True, text=True)
    mine = set()
    for pid in map(int, found.stdout.split()):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if f"LAB_PREFIX={prefix}".encode() in environ:
            mine.add(pid)
    return mine


@pytest.mark.slow
def test_every_shipped_example_runs_in_a_reduced_form(settings: Settings, tmp_path: Path) -> None:
    # Each file of experiments/ as written, made small: one repetition, at most 300 jobs, its
    # first factor's first two levels and every other factor's first level.
    import tomllib

    from lab.experiment import Spec
    from lab.experiment.runner import Runner

    examples = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))
    assert [p.stem for p in examples] == ["degraded", "scaling", "shapes"]
    for path in examples:
        data = tomllib.loads(path.read_text())
        Spec.from_file(path)  # as shipped, it is a valid experiment
        data["repetitions"] = 1
        data["run"]["x"] = min(data["run"]["x"], 300)
        factors = list(data["factors"].items())
        data["factors"] = {k: levels[: 2 if i == 0 else 1] for i, (k, levels) in enumerate(factors)}
        rows = Runner(Spec.of(data), tmp_path / path.stem, settings).run()
        assert len(rows) == 2, path.name
        for row in rows:
            assert not row["error"], (path.name, row["error"])
            assert row["processed"] + row["failed"] == 300 == row["documents"] + row["failed"]
