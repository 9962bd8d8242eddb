"""One supervisor for the lab, however many notebooks: adoption, and no orphaned children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lab.config import Settings
from lab.ops.processes import cmdline
from lab.ops.supervisor import Supervisor

from .helpers import wait_until


def test_a_second_supervisor_adopts_instead_of_doubling(
    lab: Supervisor, settings: Settings
) -> None:
    lab.up(workers=2)
    first = {s["name"]: s["pid"] for s in lab.status()}
    second = Supervisor(settings, log_dir=Path(settings.home) / "logs")
    assert {s["name"]: s["pid"] for s in second.status()} == first
    assert all(s["adopted"] and s["running"] for s in second.status())
    second.up(workers=2)  # everything already runs: nothing new starts
    assert {s["name"]: s["pid"] for s in second.status()} == first
    # It reads the log of a process it did not start (a worker logs once it is connected).
    wait_until(lambda: "consuming" in second.tail("worker-1", 5), 30, "worker-1's log line")

    # The second one acts on the processes for real: a kill there is seen here.
    second.kill("worker-2")
    wait_until(lambda: not lab.children["worker-2"].running, 10, "worker-2 to be gone")
    second.up(workers=2)  # and it makes up the difference
    assert second.children["worker-2"].running and not second.children["worker-2"].adopted
    third = Supervisor(settings, log_dir=Path(settings.home) / "logs")
    assert third.pid("worker-2") == second.pid("worker-2")
    second.stop("worker-2")


def test_children_die_with_the_process_that_started_them(settings: Settings) -> None:
    """A kernel that dies (here: kill -9 of a Python process) takes its lab processes along,
    also when a worker was started from a short-lived thread, as a button callback is."""
    script = textwrap.dedent(
        """
        import sys, threading
        from lab import config
        from lab.ops.supervisor import Supervisor
        sup = Supervisor(config.load())
        sup.start("worker-1", "worker")
        t = threading.Thread(target=lambda: sup.start("worker-2", "worker"))
        t.start(); t.join()
        print(sup.pid("worker-1"), sup.pid("worker-2"), flush=True)
        sys.stdin.read()
        """
    )
    env = {**os.environ, **settings.as_env()}
    kernel = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pids = [int(p) for p in kernel.stdout.readline().split()]
        assert len(pids) == 2
        # A child's argv shows in /proc a moment after its parent sees the exec (see
        # test_terminate_stops_a_polite_process_with_sigterm), so wait for both to read.
        wait_until(lambda: all(cmdline(p) for p in pids), 10, "both workers to run")
        kernel.send_signal(signal.SIGKILL)
        kernel.wait(10)
        wait_until(lambda: not any(cmdline(p) for p in pids), 30, "the orphans to exit")
    finally:
        if kernel.poll() is None:
            kernel.kill()


def test_a_process_that_keeps_exiting_is_restarted_later_and_later(
    settings: Settings, tmp_path: Path
) -> None:
    """A worker that cannot start (its retry ladder is unusable) must not be restarted every
    second forever: the waits grow, and `status()` says when the next start is due."""
    broken = settings.with_overrides(retry_ladder_ms="5000,1000")
    supervisor = Supervisor(broken, log_dir=tmp_path / "logs")
    supervisor.start("worker-1")
    seen: list[dict] = []
    started = time.monotonic()

    def enough() -> bool:  # four failed starts (each may take seconds on a busy machine)
        seen.append(supervisor.status()[0])
        return seen[-1]["quickExits"] >= 4 or time.monotonic() - started > 120

    try:
        supervisor.watch(poll_s=0.1, until=enough)
    finally:
        supervisor.down(grace_s=5)
    last = seen[-1]
    # Without backoff each failed start is followed by the next at once, restartInSeconds 0;
    # with it the waits double (with jitter: the fourth start waits 2 to 4 s), and no start is
    # made before it is due.
    assert last["quickExits"] >= 4 and last["restarts"] <= last["quickExits"], last
    assert any((s["restartInSeconds"] or 0) > 1 for s in seen)
    assert "LAB_RETRY_LADDER_MS" in supervisor.tail("worker-1", 50)


@pytest.mark.slow
def test_lab_down_stops_a_lab_up_of_another_terminal_and_what_it_started(
    settings: Settings,
) -> None:
    """`lab down` asks a running `lab up` to stop its processes and end (it would restart them
    otherwise), and stops what it finds of this lab that no `lab up` holds."""
    env = {**os.environ, **settings.as_env()}
    up = subprocess.Popen([sys.executable, "-m", "lab", "up", "--workers", "1"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        sup = Supervisor(settings)
        wait_until(lambda: len(sup.adopt()) >= 3 or len(sup.children) >= 3, 60, "lab up's three")
        pids = [c.pid for c in sup.children.values() if c.pid]
        down = subprocess.run([sys.executable, "-m", "lab", "down"], env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert down.returncode == 0, down.stderr
        up.wait(30)  # lab up ended by itself
        wait_until(lambda: not any(cmdline(p) for p in pids), 30, "every process to stop")
    finally:
        if up.poll() is None:
            up.kill()
