"""The one supervisor: starts, stops, kills and restarts lab's processes as children.

`lab up`, `lab demo`, the notebooks, the drills and the tests all use this class, so a process
started from a notebook is the same command, environment and log file as one started by CI.

    sup = Supervisor(settings)
    sup.up(workers=2)              # api + scheduler + worker-1, worker-2
    sup.kill("worker-1")           # SIGKILL, as in a crash
    sup.start("worker-3", "worker")
    sup.status()                   # [{name, role, pid, running, uptimeSeconds, exitCode}, ...]
    sup.tail("scheduler", 20)
    sup.down()                     # SIGTERM, then SIGKILL after a grace period

Children never outlive their starter by accident: each gets SIGTERM when the process (strictly,
the thread) that started it dies, e.g. a notebook kernel that is shut down or crashes. Each start
is also registered in Redis (`<prefix>:processes`), so a second supervisor of the same lab — a
second notebook, or `lab up` in a terminal — adopts the live ones instead of starting them twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import redis

from lab.config import Settings
from lab.ops import processes
from lab.ops.child import Child
from lab.ops.faults.processes import thaw_recorded
from lab.runtime.connections import TextRedis, redis_client
from lab.runtime.keys import Keys
from lab.wait import wait_until

ROLES = ("api", "scheduler", "worker")
QUICK_EXIT_S = 30.0
_PR_SET_PDEATHSIG = 1


class SupervisorError(RuntimeError):
    """A process could not be started, found or stopped."""


# Linux delivers PDEATHSIG when the *thread* that forked the child ends, not the process. Forking
# from one long-lived thread ties children to the process, whichever thread asks for a start (a
# notebook button's callback thread ends right after its click).
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-spawner")


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the process that started it dies, even by kill -9."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        log_dir: Path | None = None,
        tie_to_parent: bool = True,
        python: str = sys.executable,
    ):
        self.settings = settings
        self.log_dir = log_dir or settings.home_path / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.tie_to_parent = tie_to_parent
        self.python = python
        self.children: dict[str, Child] = {}
        # `watch` may run on a thread of its own (a drill) while other calls stop and start.
        self._lock = threading.RLock()
        self._registry_key = Keys(settings.prefix).processes
        self._redis: TextRedis = redis_client(settings)
        self.adopt()

    # --- the registry: one lab, however many supervisors ---------------------------------------
    def adopt(self) -> list[str]:
        """Take over the live processes another supervisor of this lab started on this host."""
        try:
            entries = self._redis.hgetall(self._registry_key)
        except redis.RedisError:
            return []  # Redis is not up yet: nothing can be running against it
        adopted = []
        host = socket.gethostname()
        for name, raw in entries.items():
            entry = json.loads(raw)
            if entry.get("host") != host or (name in self.children and self.children[name].running):
                continue
            child = Child(
                name,
                entry["role"],
                entry["argv"],
                Path(entry["log"]),
                started_at=entry["startedAt"],
                extra_args=entry.get("extraArgs", []),
                adopted=entry["pid"],
                start_ticks=entry.get("startTicks"),
            )
            if child.running:
                self.children[name] = child
                adopted.append(name)
            else:
                self._unregister(name, entry["pid"])
        return adopted

    def _register(self, child: Child) -> None:
        entry = {
            "pid": child.pid,
            "host": socket.gethostname(),
            "role": child.role,
            "argv": child.argv,
            "log": str(child.log_path),
            "startedAt": child.started_at,
            "extraArgs": child.extra_args,
            "startTicks": processes.started(child.pid) if child.pid else None,
        }
        # Without Redis the process runs all the same; only a second supervisor won't see it.
        with contextlib.suppress(redis.RedisError):
            self._redis.hset(self._registry_key, child.name, json.dumps(entry))

    def _unregister(self, name: str, pid: int | None) -> None:
        """Forget `name`, unless the registry already names a newer process for it."""
        try:
            raw = self._redis.hget(self._registry_key, name)
            if raw and json.loads(raw).get("pid") == pid:
                self._redis.hdel(self._registry_key, name)
        except redis.RedisError:
            pass

    # --- one process --------------------------------------------------------------------------
    def start(self, name: str, role: str | None = None, args: list[str] | None = None) -> Child:
        """Start (or restart, if it exited) the process `name` running `lab <role> [args]`."""
        with self._lock:
            return self._start(name, role, args)

    def _start(self, name: str, role: str | None, args: list[str] | None) -> Child:
        role = role or (name.split("-")[0] if name.split("-")[0] in ROLES else name)
        if role not in ROLES:
            raise SupervisorError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        child = self.children.get(name)
        if child and child.running:
            raise SupervisorError(f"{name} is already running (pid {child.pid})")
        log_path = child.log_path if child else self.log_dir / f"{name}.log"
        argv = [
            self.python,
            "-m",
            "lab",
            "--log-file",
            str(log_path),
            role,
            *(args if args is not None else (child.extra_args if child else [])),
        ]
        if child is None:
            child = Child(name, role, argv, log_path, extra_args=args or [])
            self.children[name] = child
        else:
            child.restarts += 1
            child.argv = argv
            child.adopted = None
        env = {**os.environ, **self.settings.as_env(), "PYTHONUNBUFFERED": "1"}
        with open(child.log_path, "ab") as log_file:
            child.process = _spawner.submit(
                subprocess.Popen,
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_die_with_parent if self.tie_to_parent else None,
            ).result()
        child.started_at = time.time()
        child.stopped_on_purpose = False
        self._register(child)
        return child

    def stop(self, name: str, grace_s: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace_s`; returns the exit code."""
        child = self._get(name)
        child.stopped_on_purpose = True
        pid = child.pid
        processes.terminate(child.signal, lambda: child.running, grace_s)
        self._unregister(name, pid)
        return child.exit_code

    def kill(self, name: str) -> int | None:
        """SIGKILL: a crash, as a drill wants it."""
        child = self._get(name)
        pid = child.pid
        if child.running:
            child.signal(signal.SIGKILL)
        child.wait(10)
        self._unregister(name, pid)
        return child.exit_code

    def restart(self, name: str, grace_s: float = 15.0) -> Child:
        with self._lock:
            self.stop(name, grace_s)
            return self.start(name)

    def pid(self, name: str) -> int:
        child = self._get(name)
        if not child.running or child.pid is None:
            raise SupervisorError(f"{name} is not running")
        return child.pid

    def tail(self, name: str, lines: int = 20) -> str:
        path = self._get(name).log_path
        if not path.exists():
            return ""
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # --- the whole lab ------------------------------------------------------------------------
    def up(
        self,
        workers: int = 1,
        worker_args: list[str] | None = None,
        api: bool = True,
        scheduler: bool = True,
        wait: bool = True,
        api_args: list[str] | None = None,
    ) -> None:
        """Make the lab run: the API, the scheduler and `workers` workers. What already runs
        (started here or by another supervisor of this lab) is kept, not started twice."""
        self.adopt()
        for name, wanted, args in (("api", api, api_args), ("scheduler", scheduler, None)):
            if wanted and not (name in self.children and self.children[name].running):
                self.start(name, args=args)
        for _ in range(workers - len(self.workers())):
            self.add_worker(worker_args)
        if wait and api:
            self.wait_api()

    def add_worker(self, args: list[str] | None = None) -> Child:
        n = 1
        while f"worker-{n}" in self.children and self.children[f"worker-{n}"].running:
            n += 1
        return self.start(f"worker-{n}", "worker", args)

    def remove_worker(self) -> str | None:
        """Gracefully stop the newest running worker; returns its name."""
        running = [c for c in self.children.values() if c.role == "worker" and c.running]
        if not running:
            return None
        newest = max(running, key=lambda c: c.started_at)
        self.stop(newest.name)
        return newest.name

    def workers(self) -> list[str]:
        return [c.name for c in self.children.values() if c.role == "worker" and c.running]

    def down(self, grace_s: float = 15.0, adopted: bool = True) -> dict[str, int | None]:
        """Stop every child: workers last, so what the scheduler released still gets done.

        `adopted=False` leaves the processes another supervisor started running (`lab demo`
        borrows a running lab without ending it)."""
        order = sorted(
            (c for c in self.children.values() if adopted or c.adopted is None),
            key=lambda c: ROLES.index(c.role),
        )
        # A process `lab fault freeze` left stopped would hold SIGTERM until it is killed.
        thaw_recorded(self.settings.home_path, [c.pid for c in order if c.pid])
        for child in order:
            if child.running:
                child.signal(signal.SIGTERM)
        return {child.name: self.stop(child.name, grace_s) for child in order}

    def status(self) -> list[dict[str, Any]]:
        return [c.describe() for c in self.children.values()]

    def wait_api(self, timeout_s: float = 30.0) -> None:
        child = self.children.get("api")
        wait_until(
            lambda: api_healthy(self.settings.api_url),
            timeout_s,
            "the API to answer /healthz",
            lambda: self.tail("api", 30) if child else "",
        )

    def request_down(self, ttl_s: float = 30.0) -> None:
        """Ask every `lab up` of this lab to stop (`watch` sees it within a poll)."""
        self._redis.set(Keys(self.settings.prefix).down_requested, "1", px=int(ttl_s * 1000))

    def clear_down(self) -> None:
        """A new `lab up`: an old `lab down`'s request is not for it."""
        self._redis.delete(Keys(self.settings.prefix).down_requested)

    def down_requested(self) -> bool:
        try:
            return bool(self._redis.exists(Keys(self.settings.prefix).down_requested))
        except redis.RedisError:
            return False

    def watch(
        self, restart: bool = True, poll_s: float = 1.0, until: Callable[[], bool] = lambda: False
    ) -> None:
        """Foreground loop of `lab up`: restart children that exit unexpectedly.

        A child that exits within `QUICK_EXIT_S` of its start is restarted after a growing,
        jittered delay (up to a minute) instead of every second, and each such exit is reported
        once with its log, so a process that cannot start does not spin."""
        while not until():
            with self._lock:
                for child in list(self.children.values()):
                    down = child.process is not None and not child.running
                    if restart and down and not child.stopped_on_purpose:
                        self._restart_later(child)
            time.sleep(poll_s)

    def _restart_later(self, child: Child) -> None:
        now = time.monotonic()
        if child.restart_at is None:
            ran_s = time.time() - child.started_at
            if ran_s < QUICK_EXIT_S:
                child.quick_exits += 1
                delay = child.backoff.next() if child.quick_exits > 1 else 0.0
            else:
                child.quick_exits = 0
                child.backoff.reset()
                delay = 0.0
            child.restart_at = now + delay
            again = f" ({child.quick_exits} quick exits in a row)" if child.quick_exits > 1 else ""
            print(
                f"lab: {child.name} exited with {child.exit_code} after {ran_s:.1f} s{again}; "
                f"restarting in {delay:.0f} s; its log: {child.log_path}",
                file=sys.stderr,
            )
        if now >= child.restart_at:
            child.restart_at = None
            self.start(child.name)

    def _get(self, name: str) -> Child:
        if name not in self.children:
            known = ", ".join(self.children) or "none"
            raise SupervisorError(f"no process named {name!r} (known: {known})")
        return self.children[name]


def api_healthy(api_url: str, timeout_s: float = 1.0) -> bool:
    """The lab API at `api_url` answers `/healthz` (and so reaches Redis)."""
    try:
        return httpx.get(f"{api_url}/healthz", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False
