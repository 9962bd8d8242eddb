"""Process faults, beside the network ones: a *frozen* process (SIGSTOP: it keeps its sockets
and the messages it holds unacked, and answers nothing, not even AMQP heartbeats, until the
broker gives up on it after about twice `LAB_AMQP_HEARTBEAT_S` and hands its messages to
another worker) and a *throttled* one (SIGSTOP and SIGCONT in a duty cycle: a slow CPU). Every
way out sends SIGCONT, so no fault outlives what started it."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator


def freeze(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)


def thaw(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone meanwhile: nothing left to thaw
        os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """`pid` stopped for the block, continued after it whatever happens."""
    freeze(pid)
    try:
        yield
    finally:
        thaw(pid)


@contextlib.contextmanager
def throttled(pid: int, running_share: float, period_s: float = 0.1) -> Iterator[None]:
    """`pid` runs `running_share` of each `period_s` for the block (a CPU that slow), and
    runs freely after it."""
    if not 0 < running_share < 1:
        raise ValueError(f"the running share must be between 0 and 1, got {running_share!r}")
    done = threading.Event()

    def cycle() -> None:
        while not done.is_set():
            thaw(pid)
            done.wait(period_s * running_share)
            if done.is_set():
                break
            try:
                freeze(pid)
            except ProcessLookupError:
                return
            done.wait(period_s * (1 - running_share))

    worker = threading.Thread(target=cycle, name=f"throttle-{pid}", daemon=True)
    worker.start()
    try:
        yield
    finally:
        done.set()
        worker.join(5)
        thaw(pid)
