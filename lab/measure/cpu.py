"""Where the machine's CPU went while a figure was measured: steal, idle, and who used the rest.

A latency figure from a shared two-core VM means little on its own: the same bench on the same
commit gave a p95 of 34 ms one run and 71 ms another, and the hypervisor took a quarter of the
CPU (steal) in one sample and 2 % in the next. So each bench window carries this beside its
figures. Linux only (`/proc`); elsewhere it says it could not look.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Processes `lab` does not start by pid, known by their command.
KNOWN = (
    ("beam.smp", "rabbitmq"),
    ("redis-server", "redis"),
    ("noida-db", "elasticsearch"),
    ("elasticsearch", "elasticsearch"),
    ("locust", "locust"),
)


def _machine() -> list[int]:
    """/proc/stat's cpu line: user nice system idle iowait irq softirq steal (jiffies)."""
    fields = (PROC / "stat").read_text().splitlines()[0].split()[1:9]
    return [int(f) for f in fields]


@dataclass(frozen=True)
class Seen:
    command: str
    parent: int
    ticks: int  # CPU time so far, user + system, all its threads


def _processes() -> dict[int, Seen]:
    out: dict[int, Seen] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        out[int(entry.name)] = Seen(
            f"{name} {command}", int(fields[1]), int(fields[11]) + int(fields[12])
        )
    return out


def _reaped() -> float:
    """CPU seconds of this process's children that have ended and been waited for."""
    times = os.times()
    return times.children_user + times.children_system


def label_of(pid: int, seen: dict[int, Seen], named: dict[int, str]) -> str:
    """A named process's name, also for its children (an API's worker processes); else what
    its command says it is."""
    ancestor = pid
    for _ in range(8):
        if ancestor in named:
            return named[ancestor]
        if ancestor not in seen:
            break
        ancestor = seen[ancestor].parent
    command = seen[pid].command
    for needle, label in KNOWN:
        if needle in command:
            return label
    return "other"


@dataclass
class CpuShare:
    """`start()`, measure, then `result()`. `stealPercent` and `idlePercent` are shares of the
    whole machine; `byProcess` is in percent of one core (a two-core machine has 200): each of
    `lab`'s processes by the name in `named` (pid → name), the services and the load generator
    by their command, everything else as `other`."""

    named: dict[int, str]
    # What this process's own children used that ended within the window (a load generator it
    # ran to completion), under this name: a process that is gone leaves no trace in /proc.
    children: str | None = None

    _machine: list[int] | None = None

    def start(self) -> CpuShare:
        try:
            self._machine, self._seen = _machine(), _processes()
        except OSError:
            self._machine = None
        self._started = time.monotonic()
        self._reaped = _reaped()
        return self

    def result(self) -> dict[str, object]:
        started = self._machine
        if started is None:
            return {"error": "no /proc here: CPU shares not measured"}
        machine, seen = _machine(), _processes()
        wall = max(time.monotonic() - self._started, 1e-6)
        delta = [b - a for a, b in zip(started, machine, strict=True)]
        total = max(sum(delta), 1)
        cores = os.cpu_count() or 1
        by: dict[str, float] = defaultdict(float)
        for pid, now in seen.items():
            earlier = self._seen.get(pid)
            before = earlier.ticks if earlier else 0  # a process born meanwhile: all of it
            if now.ticks > before:
                by[label_of(pid, seen, self.named)] += (now.ticks - before) / TICK / wall * 100
        if self.children:
            by[self.children] += (_reaped() - self._reaped) / wall * 100
        return {
            "cores": cores,
            "stealPercent": round(delta[7] / total * 100, 1),
            "idlePercent": round((delta[3] + delta[4]) / total * 100, 1),
            "byProcess": {k: round(v, 1) for k, v in sorted(by.items(), key=lambda i: -i[1])},
        }
