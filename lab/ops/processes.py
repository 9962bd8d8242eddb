"""Processes by pid, on Linux: whether one is alive, what it runs, and stopping one politely.

The supervisor stops lab's own processes this way and the stack the services it started: SIGTERM,
a grace period, then SIGKILL. A zombie (exited, not yet reaped by its parent) counts as dead.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from lab.wait import poll


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, …)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat(pid)
    return fields is not None and bool(fields) and fields[0] != "Z"


def group_alive(pgid: int) -> bool:
    """Some process of the group still runs."""
    return bool(group_members(pgid))


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(stat.parent.name)
        if fields and len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def threads_named(pgid: int, name: str) -> list[int]:
    """The ids of every thread called `name` (its `comm`) in the process group."""
    found = []
    for pid in group_members(pgid):
        for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
            try:
                if (task / "comm").read_text().strip() == name:
                    found.append(int(task.name))
            except OSError:  # gone meanwhile
                continue
    return found


def idle_threads(pgid: int, name: str) -> list[int]:
    """Put every thread called `name` in the process group on SCHED_IDLE, Linux's policy for
    work that may run only when a core has nothing else to do; the threads' ids."""
    done = []
    for tid in threads_named(pgid, name):
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except OSError:  # gone meanwhile, or not ours to change
            continue
        done.append(tid)
    return done


def started(pid: int) -> int | None:
    """When a live process started (clock ticks since boot, /proc/PID/stat's 22nd field): with
    its pid, it names one process, where a pid alone may since name another."""
    fields = _stat(pid)
    if not fields or len(fields) < 20 or fields[0] == "Z" or not fields[19].isdigit():
        return None
    return int(fields[19])


def cmdline(pid: int) -> list[str] | None:
    """The argv of a live process; None when there is none."""
    fields = _stat(pid)
    if not fields or fields[0] == "Z":
        return None
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return None


def terminate(
    send: Callable[[int], None], running: Callable[[], bool], grace_s: float, kill_wait_s: float = 5
) -> bool:
    """SIGTERM through `send`, wait up to `grace_s` for `running()` to turn false, then SIGKILL
    and wait `kill_wait_s` more. True when it ended by itself within the grace period."""
    if not running():
        return True
    send(signal.SIGTERM)
    if poll(lambda: not running(), grace_s, 0.05):
        return True
    send(signal.SIGKILL)
    poll(lambda: not running(), kill_wait_s, 0.05)
    return False
