"""Process faults on a real process: frozen, it does nothing until thawed, whatever ends the
block; throttled, it runs about its share of the time; `lab fault freeze` and `thaw` act on a
lab process by name and leave it running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.config import Settings
from lab.ops.faults import processes
from lab.ops.supervisor import Supervisor

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
