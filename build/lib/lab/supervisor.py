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
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from lab.config import Settings

ROLES = ("api", "scheduler", "worker")
_PR_SET_PDEATHSIG = 1


class SupervisorError(RuntimeError):
    """A process could not be started, found or stopped."""


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the process that started it dies, even by kill -9."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    name: str
    role: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    extra_args: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def describe(self) -> dict[str, Any]:
        code = self.process.poll() if self.process else None
        return {
            "name": self.name,
            "role": self.role,
            "pid": self.process.pid if self.process else None,
            "running": self.running,
            "uptimeSeconds": round(time.time() - self.started_at, 1) if self.running else 0.0,
            "exitCode": code,
            "restarts": self.restarts,
            "log": str(self.log_path),
        }


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

    # --- one process --------------------------------------------------------------------------
    def start(self, name: str, role: str | None = None, args: list[str] | None = None) -> Child:
        """Start (or restart, if it exited) the process `name` running `lab <role> [args]`."""
        role = role or (name.split("-")[0] if name.split("-")[0] in ROLES else name)
        if role not in ROLES:
            raise SupervisorError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        child = self.children.get(name)
        if child and child.running:
            raise SupervisorError(f"{name} is already running (pid {child.process.pid})")
        argv = [
            self.python,
            "-m",
            "lab",
            role,
            *(args if args is not None else (child.extra_args if child else [])),
        ]
        if child is None:
            child = Child(name, role, argv, self.log_dir / f"{name}.log", extra_args=args or [])
            self.children[name] = child
        else:
            child.restarts += 1
            child.argv = argv
        env = {**os.environ, **self.settings.as_env(), "PYTHONUNBUFFERED": "1"}
        with open(child.log_path, "ab") as log_file:
            child.process = subprocess.Popen(
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_die_with_parent if self.tie_to_parent else None,  # noqa: PLW1509
            )
        child.started_at = time.time()
        return child

    def stop(self, name: str, grace_s: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace_s`; returns the exit code."""
        child = self._get(name)
        if not child.running:
            return child.process.poll() if child.process else None
        child.process.send_signal(signal.SIGTERM)
        try:
            return child.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            child.process.kill()
            return child.process.wait(timeout=5)

    def kill(self, name: str) -> int:
        """SIGKILL: a crash, as a drill wants it."""
        child = self._get(name)
        if child.running:
            child.process.kill()
        return child.process.wait(timeout=10)

    def restart(self, name: str, grace_s: float = 15.0) -> Child:
        self.stop(name, grace_s)
        return self.start(name)

    def pid(self, name: str) -> int:
        child = self._get(name)
        if not child.running:
            raise SupervisorError(f"{name} is not running")
        return child.process.pid

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
    ) -> None:
        if api:
            self.start("api")
        if scheduler:
            self.start("scheduler")
        for _ in range(workers):
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

    def down(self, grace_s: float = 15.0) -> dict[str, int | None]:
        """Stop every child: workers last, so what the scheduler released still gets done."""
        order = sorted(self.children.values(), key=lambda c: ROLES.index(c.role))
        for child in order:
            if child.running:
                child.process.send_signal(signal.SIGTERM)
        codes = {}
        for child in order:
            codes[child.name] = self.stop(child.name, grace_s) if child.process else None
        return codes

    def status(self) -> list[dict[str, Any]]:
        return [c.describe() for c in self.children.values()]

    def wait_api(self, timeout_s: float = 30.0) -> None:
        def healthy() -> bool:
            try:
                return httpx.get(f"{self.settings.api_url}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        child = self.children.get("api")
        wait_until(
            healthy,
            timeout_s,
            "the API to answer /healthz",
            lambda: self.tail("api", 30) if child else "",
        )

    def watch(
        self, restart: bool = True, poll_s: float = 1.0, until: Callable[[], bool] = lambda: False
    ) -> None:
        """Foreground loop of `lab up`: restart children that exit unexpectedly."""
        while not until():
            for child in list(self.children.values()):
                if child.process and not child.running and restart:
                    code = child.process.poll()
                    print(f"lab: {child.name} exited with {code}; restarting", file=sys.stderr)
                    self.start(child.name)
            time.sleep(poll_s)

    def _get(self, name: str) -> Child:
        if name not in self.children:
            known = ", ".join(self.children) or "none"
            raise SupervisorError(f"no process named {name!r} (known: {known})")
        return self.children[name]


def wait_until(
    condition: Callable[[], Any],
    timeout_s: float,
    what: str,
    explain: Callable[[], str] = lambda: "",
    poll_s: float = 0.1,
) -> Any:
    """Poll `condition` until it returns something truthy; fail naming what was awaited."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = explain()
            raise TimeoutError(
                f"timed out after {timeout_s:.0f}s waiting for {what}"
                + (f"\n{detail}" if detail else "")
            )
        time.sleep(poll_s)
