"""One process the supervisor started (or adopted): its handle, its state and its signals."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.ops import processes
from lab.runtime.backoff import Backoff
from lab.wait import poll


@dataclass
class Child:
    """A process this supervisor started (`process`), or adopted from another one (`adopted`)."""

    name: str
    role: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    extra_args: list[str] = field(default_factory=list)
    adopted: int | None = None  # pid of a process another supervisor started
    # When that process started (clock ticks since boot): with its pid it names the process,
    # also once it has exec'd another program (a target's worker: `lab worker --target NAME`).
    start_ticks: int | None = None
    stopped_on_purpose: bool = False  # `watch` leaves it down
    # A process that keeps exiting soon after it starts is restarted later and later.
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=1.0, cap_s=60.0))
    quick_exits: int = 0
    restart_at: float | None = None  # when `watch` starts it again (monotonic)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else self.adopted

    @property
    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        if self.adopted is None:
            return False
        if self.start_ticks is not None:
            return processes.started(self.adopted) == self.start_ticks
        return processes.cmdline(self.adopted) == self.argv

    @property
    def exit_code(self) -> int | None:
        """The exit code of a child that ended (unknown for an adopted one: not ours to reap)."""
        return self.process.poll() if self.process else None

    def signal(self, signum: int) -> None:
        if self.process is not None:
            self.process.send_signal(signum)
        elif self.running and self.adopted:
            os.kill(self.adopted, signum)

    def wait(self, timeout_s: float) -> int | None:
        if self.process is not None:
            return self.process.wait(timeout=timeout_s)
        if not poll(lambda: not self.running, timeout_s, 0.05):
            raise subprocess.TimeoutExpired(self.argv, timeout_s)
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "pid": self.pid,
            "running": self.running,
            "uptimeSeconds": round(time.time() - self.started_at, 1) if self.running else 0.0,
            "exitCode": self.exit_code,
            "restarts": self.restarts,
            "quickExits": self.quick_exits,
            "restartInSeconds": (
                round(max(0.0, self.restart_at - time.monotonic()), 1)
                if self.restart_at is not None
                else None
            ),
            "adopted": self.adopted is not None,
            "log": str(self.log_path),
        }
