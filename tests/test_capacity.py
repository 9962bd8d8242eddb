"""A capacity search on real services, through the CLI as a user runs it: the `synthetic` kind
with a fixed 100 ms service time on one worker of five job threads. Its nominal capacity is
5 / 0.1 s = 50 jobs/s; what it sustains is less by what each job's own write and count take in
its thread and what feeding the threads costs (here about 42–47 jobs/s, machine load deciding).

The objectives make the knee sharp: the median queue wait sees a backlog that grows by 2 % of
the rate within a 12-second probe while ignoring the tail a shared machine adds, and the
throughput objective sees a pipeline that falls behind. The search brackets from 25 jobs/s and
bisects to within 10 %; its interval must hold the most the pipeline achieved in any step, to
within the step's noise. Nothing is left behind:
every probe ended settled, or stopped with its queue purged, and its queue empty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

import lab.capacity
from lab.config import Settings
from lab.ops.supervisor import Supervisor

from .helpers import kill_when, wait_until
from .test_experiments import left_over, queue_exists

PAYLOAD = {"serviceMs": {"dist": "fixed", "value": 100}, "cpuShare": 0}

pytestmark = pytest.mark.slow  # each test is a real search of a minute or more


def argv(folder: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "lab", "capacity", "--out", str(folder), "--kind", "synthetic",
            "--payload", json.dumps(PAYLOAD), "--slo", "throughput>0.95", "--slo",
            "queueWait.p50<100ms", "--workers", "1", "--concurrency", "5", "--start-rate", "25",
            "--repetitions", "1", "--step-seconds", "10", "--warmup-seconds", "2", "--name",
            "ci", *more]  # fmt: skip


def environment(settings: Settings) -> dict[str, str]:
    # A small prefetch: what a purge removes is what waits in the broker, not in a worker's hand.
    return {**os.environ, **settings.as_env(), "LAB_PREFETCH": "10"}


def still_running(settings: Settings, prefix: str) -> str:
    """Which of a search's processes still run, and the end of each one's log."""
    supervisor = Supervisor(settings.with_overrides(prefix=prefix))
    running = [c for c in supervisor.status() if c["running"]]
    return "\n".join(f"{c['name']} (pid {c['pid']}):\n{supervisor.tail(c['name'], 30)}"
                     for c in running)  # fmt: skip


def test_the_search_finds_the_knee_of_five_slots_of_100_ms(
    settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "capacity"
    env = environment(settings)
    argv_ = argv(folder, "--precision", "10%")
    done = subprocess.run(argv_, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    found = lab.capacity.load(folder)
    probes = found.probes
    low, high = found.low, found.high
    shown = probes[["rate", "held", "achievedPerSecond", "queueWait.p50Ms", "broke"]]
    assert low is not None and high is not None, f"{found.answer}\n{shown}"
    assert high <= low * 1.1 + 1e-9, shown
    # What the pipeline did at most in any step: the search neither claims more than that (the
    # low end held, so at least 95 % of it was achieved: `throughput>0.95`; 48.5 jobs/s at the
    # probe of 50 once) nor breaks well below it (a probe above the lowest that broke achieving
    # more would mean objectives that broke before the pipeline did). What the pipeline can do
    # moves with the machine's load from one probe to the next: on CI it achieved 49.1 jobs/s at
    # the probe of 50 and broke at 45.85 a minute later, hence 15 %.
    achieved = float(probes["achievedPerSecond"].max())
    assert 0.95 * low <= achieved * 1.03 and achieved <= high * 1.15, (
        f"{achieved} vs {low}–{high}\n{shown}"
    )
    print(f"found {low}–{high} jobs/s; achieved at most {achieved}; nominal 50")
    assert found.answer["searches"][0]["done"] and found.answer["probes"] == len(found.probes)
    assert set(probes["ended"]) <= {"settled", "stopped, queue purged"}
    assert (probes["queueAfter"] == 0).all()
    assert not probes["error"].fillna("").any()
    assert "sustains" in done.stderr + done.stdout
    assert not (folder / "running.json").exists()

    report = subprocess.run([sys.executable, "-m", "lab", "capacity", "report", str(folder)],
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    summary = json.loads(next(folder.glob("capacity-*.json")).read_text())
    assert summary["passed"] and summary["headline"]["capacity"] == found.verdict
    page = Path(summary["html"]).read_text()
    assert page.index('id="lab-verdict"') < page.index("sustains")  # the verdict comes first


def test_a_search_killed_mid_probe_resumes_from_the_probes_in_its_folder(
    settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "capacity"
    env = environment(settings)
    command = argv(folder, "--precision", "50%")  # 25 holds, 50 breaks, 35.4 holds: done
    search = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL)  # fmt: skip

    def second_probe_running() -> bool:
        rows = folder / "results.csv"
        if not rows.is_file() or len(rows.read_text().splitlines()) < 2:
            return False
        prefix = json.loads((folder / "running.json").read_text())["prefix"]
        return any(c["running"] for c in left_over(settings, prefix))

    kill_when(search, second_probe_running, 120, "the first probe's row, the second running")
    interrupted = json.loads((folder / "running.json").read_text())
    wait_until(lambda: not any(c["running"] for c in left_over(settings, interrupted["prefix"])),
               30, "the killed search's processes to end",
               lambda: still_running(settings, interrupted["prefix"]))  # fmt: skip

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True,
                             timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "cleaned up the interrupted trial" in resumed.stderr
    assert not queue_exists(settings, interrupted["queue"])
    left = redis.Redis.from_url(settings.redis_url).scan_iter(f"{interrupted['prefix']}:*")
    assert not list(left)

    found = lab.capacity.load(folder)
    probes = found.probes
    assert probes["probe"].tolist() == [1, 2, 3] and probes["trial"].is_unique
    assert probes["rate"].tolist() == [25, 50, 35.355]  # the killed probe ran again, once
    # 50 is past what 5 slots of 100 ms can do; 35.4 holds on a quiet machine (capacity near
    # 45), and may not on one whose other tests take its cores: the answer follows either way.
    third_held = bool(probes["held"].iloc[2])
    assert (found.low, found.high) == ((35.355, 50) if third_held else (25, 35.355)), probes
