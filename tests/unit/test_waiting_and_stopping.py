"""The one poll loop and the one process stopper, on real (local) processes and a fake clock's
worth of conditions: no service needed."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from lab.ops import processes
from lab.wait import poll, wait_until


def test_poll_returns_the_first_truthy_answer_or_the_last_falsy_one() -> None:
    answers = iter([0, None, "", 7, 8])
    assert poll(lambda: next(answers), 5, 0) == 7
    assert poll(lambda: [], 0.05, 0.01) == []


def test_wait_until_names_what_it_waited_for_and_what_it_saw() -> None:
    with pytest.raises(TimeoutError, match="waiting for the moon\nsaw: nothing"):
        wait_until(lambda: False, 0.05, "the moon", lambda: "saw: nothing", 0.01)


def test_terminate_stops_a_polite_process_with_sigterm() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert processes.alive(child.pid)
    # Popen returns once the child calls execve, a moment before the kernel records the new
    # argv: until then /proc/<pid>/cmdline reads empty, so wait for it rather than read once.
    argv = poll(lambda: processes.cmdline(child.pid), 10, 0.01)
    assert argv is not None and argv[1:] == ["-c", "import time; time.sleep(60)"]
    assert processes.terminate(child.send_signal, lambda: child.poll() is None, 10)
    assert child.returncode == -signal.SIGTERM
    assert not processes.alive(child.pid) and processes.cmdline(child.pid) is None


def test_terminate_kills_a_process_that_ignores_sigterm() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(1, flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline()  # its handler is set
    assert not processes.terminate(child.send_signal, lambda: child.poll() is None, 0.3)
    assert child.returncode == -signal.SIGKILL
