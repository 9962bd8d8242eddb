"""What `--resume` destroys is what the interrupted trial made, and nothing else: on real Redis,
RabbitMQ and real processes, the trial's own fault proxy is stopped and its namespace deleted,
while another process named by pid, a proxy started at another moment, and every other key are
left alone; through the CLI, a folder of something else and a running.json that names a
namespace this runner never makes are refused before anything is touched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from lab.config import Settings
from lab.experiment import running
from lab.ops import servers

from .helpers import wait_until

EXPERIMENT = 'name = "leftovers"\nrepetitions = 1\n[run]\nx = 10\n[factors]\nworkers = [1]\n'


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def test_resume_stops_only_the_trials_own_proxy_and_deletes_only_its_namespace(
    settings: Settings, tmp_path: Path
) -> None:
    trial = settings.with_overrides(**running.names("leftovers", running.new_tag()))
    store = redis.Redis.from_url(settings.redis_url)
    store.set(f"{trial.prefix}:probe", 1)
    store.set(f"{settings.prefix}:keep", 1)  # another namespace: the test's own
    proxy = servers.start_faults(servers.free_port(), tmp_path, [])
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    said: list[str] = []
    try:
        assert proxy.pid is not None
        behind = trial.with_overrides(faults_url=proxy.url)
        cases = [  # (pid, start time recorded): neither is the proxy this trial started
            (decoy.pid, running.start_ticks(decoy.pid)),
            (proxy.pid, (running.start_ticks(proxy.pid) or 0) + 1),
        ]
        for pid, started in cases:
            record = {**running.record(behind, pid), "faultsStartedAt": started}
            (tmp_path / "running.json").write_text(json.dumps(record))
            interrupted = running.read(tmp_path, "leftovers")
            assert interrupted is not None
            running.clean_up(interrupted, settings, said.append)
            assert alive(pid) and f"pid {pid} left alone" in said[-1]
        (tmp_path / "running.json").write_text(json.dumps(running.record(behind, proxy.pid)))
        interrupted = running.read(tmp_path, "leftovers")
        assert interrupted is not None
        running.clean_up(interrupted, settings, said.append)
        assert "fault proxy" in said[-1] and "stopped" in said[-1]
        wait_until(lambda: not alive(proxy.pid), 15, "the trial's fault proxy to end")
        assert alive(decoy.pid)
        assert not store.exists(f"{trial.prefix}:probe") and store.exists(f"{settings.prefix}:keep")
    finally:
        decoy.kill()
        decoy.wait(10)
        proxy.stop()
        store.close()


def test_the_cli_refuses_another_folder_and_a_namespace_it_never_makes(
    settings: Settings, tmp_path: Path
) -> None:
    file = tmp_path / "leftovers.toml"
    file.write_text(EXPERIMENT)
    env = {**os.environ, **settings.as_env()}

    def run(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "lab", "experiment", "run", str(file), "--out", str(folder)]
        return subprocess.run([*argv, *extra], env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    other = tmp_path / "other"
    other.mkdir()
    (other / "results.csv").write_text("name,formula\nq1,=SUM(A1)\n")
    refused = run(other)
    assert refused.returncode == 2 and str(other) in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert (other / "results.csv").read_text() == "name,formula\nq1,=SUM(A1)\n"

    ours = tmp_path / "ours"
    ours.mkdir()
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    (ours / "manifest.json").write_text(json.dumps({"name": "leftovers", "digest": digest}))
    (ours / "running.json").write_text(json.dumps({"prefix": "*", "queue": settings.queue,
                                                   "index": settings.es_index,
                                                   "apiUrl": "http://127.0.0.1:1"}))  # fmt: skip
    store = redis.Redis.from_url(settings.redis_url)
    try:
        store.set(f"{settings.prefix}:keep", 1)
        not_resumed = run(ours)
        assert not_resumed.returncode == 2 and "--resume" in not_resumed.stderr
        hostile = run(ours, "--resume")
        assert hostile.returncode == 2 and "running.json: prefix: '*'" in hostile.stderr
        assert len(hostile.stderr.strip().splitlines()) == 1
        assert store.exists(f"{settings.prefix}:keep")
        assert (ours / "running.json").exists()  # left for the user to look at
    finally:
        store.close()
