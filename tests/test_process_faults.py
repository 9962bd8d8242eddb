"""Process faults on a real process: frozen, it does nothing until thawed, whatever ends the
block; throttled, it runs about its share of the time; `lab fault freeze` and `thaw` act on a
lab process by name and leave it running."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.config import Settings
from lab.ops.faults import processes
from lab.ops.supervisor import Supervisor
from lab.runtime.connections import redis_client
from lab.runtime.keys import Keys

from .conftest import BASE
from .helpers import wait_until

# Written whole (a rename), so a reader never sees the file half written while it is stopped.
COUNTER = """
import os, sys, time
n = 0
while True:
    n += 1
    open(sys.argv[1] + ".tmp", "w").write(str(n))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(0.001)
"""


def count(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (OSError, ValueError):
        return 0


def test_a_frozen_process_stands_still_and_a_throttled_one_slows(tmp_path: Path) -> None:
    path = tmp_path / "n"
    process = subprocess.Popen([sys.executable, "-c", COUNTER, str(path)])
    try:
        wait_until(lambda: count(path) > 50, 10, "the counter to run")
        with pytest.raises(RuntimeError), processes.frozen(process.pid):
            time.sleep(0.2)  # let it stop
            before = count(path)
            time.sleep(0.5)
            assert count(path) == before
            raise RuntimeError("the block fails: the process is thawed all the same")
        grown = count(path)
        wait_until(lambda: count(path) > grown + 50, 10, "the counter to run again")

        began, at = time.monotonic(), count(path)
        time.sleep(1.0)
        free = (count(path) - at) / (time.monotonic() - began)
        with processes.throttled(process.pid, 0.2):
            began, at = time.monotonic(), count(path)
            time.sleep(1.5)
            slow = (count(path) - at) / (time.monotonic() - began)
        assert slow < 0.6 * free, (slow, free)  # generous: about 20 % of the free rate
        with (
            pytest.raises(ValueError, match="between 0 and 1"),
            processes.throttled(process.pid, 1.5),
        ):
            pass
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_lab_fault_freezes_and_thaws_a_lab_process_by_name(
    lab: Supervisor, settings: Settings
) -> None:
    lab.up(workers=1)
    pid = lab.pid("worker-1")
    env = {**os.environ, **settings.as_env()}

    def fault(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lab", "fault", *args], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    frozen = fault("freeze", "worker-1")
    assert frozen.returncode == 0 and "frozen" in frozen.stderr, frozen.stderr
    wait_until(lambda: _state(pid) == "T", 10, "the worker to stop")
    assert fault("thaw", "worker-1").returncode == 0
    wait_until(lambda: _state(pid) in ("S", "R"), 10, "the worker to run again")
    assert fault("freeze", "worker-1", "--seconds", "0.5").returncode == 0
    assert _state(pid) in ("S", "R") and lab.pid("worker-1") == pid
    missing = fault("freeze", "worker-9")
    assert missing.returncode == 1 and "worker-9" in missing.stderr
    assert fault("throttle", "worker-1", "--share", "2").returncode == 2


def _state(pid: int) -> str:
    """The process's state letter in /proc (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


SLEEPER = "import time\nwhile True: time.sleep(0.05)\n"


@pytest.fixture
def adopted(tmp_path: Path) -> Iterator[tuple[Settings, subprocess.Popen[bytes]]]:
    """A real sleeping child registered as this lab's `worker-1` (as `lab up` registers its
    processes), so `lab fault` finds it by name without a whole lab running."""
    settings = BASE.with_overrides(prefix=f"labtest-{uuid.uuid4().hex[:8]}", home=str(tmp_path))
    argv = [sys.executable, "-c", SLEEPER]
    child = subprocess.Popen(argv)
    registry = Keys(settings.prefix).processes
    entry = {"pid": child.pid, "host": socket.gethostname(), "role": "worker", "argv": argv,
             "log": str(tmp_path / "w.log"), "startedAt": time.time(), "extraArgs": []}  # fmt: skip
    store = redis_client(settings)
    store.hset(registry, "worker-1", json.dumps(entry))
    try:
        yield settings, child
    finally:
        child.kill()
        child.wait()
        store.delete(registry)


def _fault(settings: Settings, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "lab", "fault", *args],
                            env={**os.environ, **settings.as_env()}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "ending"),
    [(("freeze", "worker-1", "--seconds", "60"), signal.SIGTERM),
     (("throttle", "worker-1", "--share", "0.1", "--seconds", "60"), signal.SIGHUP),
     (("freeze", "worker-1", "--seconds", "60"), signal.SIGINT)],
)  # fmt: skip
def test_a_fault_never_outlives_its_command(
    adopted: tuple[Settings, subprocess.Popen[bytes]], args: tuple[str, ...], ending: int
) -> None:
    settings, child = adopted
    command = _fault(settings, *args)
    record = processes.folder(settings.home_path) / f"{child.pid}.json"
    wait_until(lambda: record.exists() and _state(child.pid) == "T", 20, "the fault to begin",
               lambda: command.stderr.read() if command.poll() is not None else "")  # fmt: skip
    command.send_signal(ending)
    _out, err = command.communicate(timeout=30)
    assert command.returncode == 130 and "runs freely again" in err, err
    for _ in range(20):  # and stays running: no throttle cycle is left behind
        assert _state(child.pid) != "T"
        time.sleep(0.02)
    assert not record.exists()


def test_thaw_all_and_stopping_the_lab_continue_what_a_killed_fault_left_stopped(
    adopted: tuple[Settings, subprocess.Popen[bytes]],
) -> None:
    settings, child = adopted
    command = _fault(settings, "freeze", "worker-1", "--seconds", "60")
    wait_until(lambda: _state(child.pid) == "T", 20, "the freeze to begin")
    command.kill()  # kill -9: no handler runs, the record stays
    command.wait(10)
    assert _state(child.pid) == "T"
    thawed = _fault(settings, "thaw", "--all")
    assert thawed.wait(30) == 0 and "worker-1" in thawed.stderr.read()
    wait_until(lambda: _state(child.pid) != "T", 10, "the child to run again")
    assert list(processes.folder(settings.home_path).iterdir()) == []

    frozen = _fault(settings, "freeze", "worker-1")  # frozen until thawed: recorded
    assert frozen.wait(30) == 0 and _state(child.pid) == "T"
    Supervisor(settings).down(grace_s=10)  # what `lab up` does when it ends
    assert child.wait(5) == -signal.SIGTERM  # continued first, so SIGTERM ended it, not SIGKILL
