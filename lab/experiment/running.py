"""`running.json`: the trial in progress, written before any of its processes start, so that
`--resume` can stop what a kill left running and delete the trial's namespace.

It is read back like a request, because what it names is destroyed: the namespace must have
exactly the form `names` makes for this experiment (so a reset purges `exp-<name>-<8 hex>:*`
and nothing else), every field has its type, and the fault proxy's pid is signalled only when
/proc shows the `lab fault serve` this trial started (its port and its start time): a reused
pid, an edited file or another proxy is left alone. The runner reads it only under `--resume`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.config import Settings
from lab.experiment.results import RUNNING, ResultsError, read_object

TAG = re.compile(r"[0-9a-f]{8}")
LOOPBACK = re.compile(r"http://127\.0\.0\.1:([0-9]{1,5})")  # what `isolated` and the proxy use
MAX_PID = 2**22  # the largest pid_max Linux allows
MAX_TICKS = 2**63 - 1
FIELDS = ("prefix", "queue", "index", "apiUrl", "faultsPid", "faultsUrl", "faultsStartedAt")
# How servers.start_faults starts the proxy: `<python> -m lab fault serve --port PORT …`.
PROXY_ARGV = (b"-m", b"lab", b"fault", b"serve", b"--port")


def label(name: str) -> str:
    return f"exp-{name}".lower().replace("_", "-")[:40]


def names(name: str, tag: str) -> dict[str, str]:
    """The namespace of a trial of experiment `name` (tag: 8 hex digits): the one place trial
    names are made, and the only form a running.json may name."""
    base = label(name)
    return {"prefix": f"{base}-{tag}", "queue": f"{base}.{tag}", "es_index": f"{base}-{tag}"}


def new_tag() -> str:
    return secrets.token_hex(4)


@dataclass(frozen=True)
class Running:
    prefix: str
    queue: str
    index: str
    api_url: str
    faults_pid: int | None = None
    faults_url: str | None = None
    faults_started: int | None = None  # the proxy's start, in clock ticks since boot (/proc)


def record(settings: Settings, faults_pid: int | None) -> dict[str, Any]:
    """running.json for a trial in `settings`, behind the fault proxy `faults_pid` if any."""
    started = start_ticks(faults_pid) if faults_pid else None
    return {"prefix": settings.prefix, "queue": settings.queue, "index": settings.es_index,
            "apiUrl": settings.api_url, "faultsPid": faults_pid,
            "faultsUrl": settings.faults_url if faults_pid else None,
            "faultsStartedAt": started}  # fmt: skip


def read(folder: Path, name: str) -> Running | None:
    """The folder's running.json, checked field by field against experiment `name`; None if
    there is none. `ResultsError` (one line naming the file and the field) otherwise: nothing
    is stopped or deleted on the word of a file that is not what this runner writes."""
    path = folder / RUNNING
    data = read_object(path, 64 * 1024)
    if data is None:
        return None

    def bad(problem: str) -> ResultsError:
        return ResultsError(f"{path}: {problem}; nothing was stopped or deleted (check that "
                            "nothing of it runs, then delete the file to go on)")  # fmt: skip

    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise bad(f"{unknown[0][:40]!r} is not a field of running.json")
    prefix = data.get("prefix")
    tag = prefix.rpartition("-")[2] if isinstance(prefix, str) else ""
    expected = names(name, tag)
    if not TAG.fullmatch(tag) or prefix != expected["prefix"]:
        raise bad(f"prefix: {str(prefix)[:60]!r} is not a namespace of this experiment "
                  f"({label(name)}-<8 hex digits>)")  # fmt: skip
    for key, setting in (("queue", "queue"), ("index", "es_index")):
        if data.get(key) != expected[setting]:
            raise bad(f"{key}: not {expected[setting]!r}, the {key} of that namespace")
    api_url = _loopback(data.get("apiUrl"))
    if api_url is None:
        raise bad("apiUrl: not http://127.0.0.1:<port>")
    pid = data.get("faultsPid")
    if pid is not None and not _whole(pid, 1, MAX_PID):
        raise bad(f"faultsPid: not a process id (1 to {MAX_PID})")
    faults_url = data.get("faultsUrl")
    if faults_url is not None and _loopback(faults_url) is None:
        raise bad("faultsUrl: not http://127.0.0.1:<port>")
    started = data.get("faultsStartedAt")
    if started is not None and not _whole(started, 0, MAX_TICKS):
        raise bad("faultsStartedAt: not a start time in clock ticks")
    return Running(prefix, expected["queue"], expected["es_index"], api_url, pid, faults_url,
                   started)  # fmt: skip


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _loopback(url: Any) -> str | None:
    found = LOOPBACK.fullmatch(url) if isinstance(url, str) else None
    return url if found and 1 <= int(found[1]) <= 65535 else None


def clean_up(running: Running, base: Settings, say: Callable[[str], None]) -> None:
    """Stop what the interrupted trial left running and delete its namespace."""
    from lab.ops.reset import reset
    from lab.ops.supervisor import Supervisor

    settings = base.with_overrides(prefix=running.prefix, queue=running.queue,
                                   es_index=running.index, api_url=running.api_url)  # fmt: skip
    stopped = Supervisor(settings).down(grace_s=5)
    proxy = ""
    if running.faults_pid is not None:
        proxy = (
            f"; its fault proxy (pid {running.faults_pid}) stopped"
            if stop_fault_proxy(running)
            else f"; pid {running.faults_pid} left alone: /proc does not show its fault proxy"
        )
    reset(settings)
    say(f"lab: cleaned up the interrupted trial ({len(stopped)} processes stopped{proxy})")


def stop_fault_proxy(running: Running) -> bool:
    """SIGTERM the interrupted trial's fault proxy if the pid is still that process."""
    pid, url, started = running.faults_pid, running.faults_url, running.faults_started
    if pid is None or url is None or started is None:
        return False  # an older running.json: nothing proves what the pid is now
    if not is_fault_proxy(pid, int(url.rsplit(":", 1)[1]), started):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    return True


def is_fault_proxy(pid: int, port: int, started: int) -> bool:
    """/proc shows `pid` is `lab fault serve --port <port>`, started at `started`."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    wanted = (*PROXY_ARGV, str(port).encode())
    return tuple(argv[1 : 1 + len(wanted)]) == wanted and start_ticks(pid) == started


def start_ticks(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot (/proc/PID/stat, field 22); None if gone."""
    try:
        after_name = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
        return int(after_name[19])
    except (OSError, IndexError, ValueError):
        return None
