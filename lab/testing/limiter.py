"""The scheduler's side of Redis in memory: one run, its shape clock, its release and its
confirmed frontier, on the test's clock (`FakeLimiter`), and the bundle a `Scheduler` takes
(`FakeSchedulerStores`). `tests/contracts/test_release.py` drives
it and the real `release.lua`/`advance.lua` on one clock and compares every answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lab.runtime import shapes
from lab.runtime.headage import HeadAge
from lab.runtime.status import RunView
from lab.runtime.stores.release import Ask, Grant
from lab.testing.fakes import FakeClock
from lab.testing.stores import FakeHeartbeats


class FakeLimiter:
    """The scheduler's side of `release.lua` and `advance.lua`, in memory and on the test's
    clock: a lease, one run of `x` jobs at `y` a minute (or following `shape`), the run's shape
    clock with its pauses, the catch-up rule (a scheduler behind by more than its budget
    releases the budget and the rest is forgiven), the timeline's releases per second, and the
    confirmed frontier as `enqueued`. `backlog` bounds published-but-unsettled jobs, as
    `LAB_BACKLOG_LIMIT` does (`settled` plays the workers)."""

    def __init__(self, clock: FakeClock, x: int, y: float = 600.0,
                 shape: dict[str, Any] | None = None, seed: int = 0,
                 backlog: int | None = None, target: str = "lab"):  # fmt: skip
        self.clock, self.x, self.seed, self.backlog = clock, x, seed, backlog
        self.target = target
        self.shape = shape or {"type": "constant", "y": y}
        self.start_ms: int | None = None  # the shape's clock starts with the first release
        self.created_ms = self.now_ms()
        self.paused_ms = 0
        self.paused_at: int | None = None
        self.base, self.lag, self.version, self.granted_to = 1, 0, 1, 0
        self.enqueued = self.settled = 0
        self.lease_holder: str | None = None
        self.advances: list[tuple[float, int]] = []
        self.grants: list[tuple[float, int]] = []
        self.released: dict[int, int] = {}  # Redis second → jobs first published in it
        self.marks: dict[int, set[str]] = {}  # second → forgiven, backpressure, paused
        self.judged: list[int] = []  # when the scheduler judged the run's objectives
        self.submits: dict[str, list[int]] = {}  # a target's submits, by outcome

    def now_ms(self) -> int:
        return round(self.clock() * 1000)

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    @paused.setter
    def paused(self, value: bool) -> None:
        if value and self.paused_at is None:
            self.paused_at = self.now_ms()
        elif not value and self.paused_at is not None:
            if self.start_ms is not None:
                self.paused_ms += self.now_ms() - max(self.paused_at, self.start_ms)
            self.paused_at = None

    def run_hash(self) -> dict[str, str]:
        h = {"runId": "run1", "state": "running", "xTotal": str(self.x),
             "yMinutes": str(shapes.parse(self.shape, self.seed).rate(0)),
             "enqueued": str(self.enqueued), "processed": str(self.settled), "failed": "0",
             "running": "1", "startedAt": str(self.created_ms), "shape": json.dumps(self.shape),
             "seed": str(self.seed), "target": self.target,
             "shapeStartMs": "" if self.start_ms is None else str(self.start_ms),
             "pausedMs": str(self.paused_ms), "shapeBase": str(self.base),
             "shapeLag": str(self.lag), "shapeVersion": str(self.version)}  # fmt: skip
        if self.paused_at is not None:
            h.update(paused="1", pausedAt=str(self.paused_at))
        return h

    def reshape(self, shape: dict[str, Any]) -> None:
        """`PATCH /run`: the new shape goes on from what the old one allowed by now."""
        plan = self.plan("run1")
        assert plan is not None
        elapsed = shapes.elapsed_s(self.run_hash(), self.now_ms())
        self.base = min(self.x, plan.target(elapsed) - self.lag)
        self.shape, self.lag, self.version = shape, 0, self.version + 1
        self.start_ms, self.paused_ms = self.now_ms(), 0
        if self.paused_at is not None:
            self.paused_at = self.start_ms

    def stores(self) -> FakeSchedulerStores:
        """What a `Scheduler` takes as `stores=`: this run world, and heartbeats of its own."""
        return FakeSchedulerStores(self)

    def acquire_lease(self, scheduler_id: str) -> bool:
        if self.lease_holder in (None, scheduler_id):
            self.lease_holder = scheduler_id
            return True
        return False

    def release_lease(self, scheduler_id: str) -> None:
        if self.lease_holder == scheduler_id:
            self.lease_holder = None

    def active_id(self) -> str | None:
        return "run1"

    def get(self, run_id: str) -> RunView | None:
        return RunView.from_hash(self.run_hash(), self.now_ms())

    def plan(self, run_id: str) -> shapes.Plan | None:
        return shapes.Plan.of_run(self.run_hash())

    def judge(self, run_id: str, head: HeadAge) -> str:
        self.judged.append(head.now_ms)
        return "none"

    def measure(self, run_queue: str, other_run_queue: str, single_queue: str) -> HeadAge:
        return HeadAge(self.now_ms())

    def grant(self, scheduler_id: str, run_id: str, next_seq: int, want: int,
              ask: Ask | None = None) -> Grant:  # fmt: skip
        """`release.lua`: the contract suite holds the two to the same answers."""
        if self.lease_holder != scheduler_id:
            return Grant("lease", holder=self.lease_holder or "")
        now = self.now_ms()
        sec = now // 1000
        if self.paused:
            self.marks.setdefault(sec, set()).add("paused")
            return Grant("paused")
        ask = ask or Ask()
        if self.start_ms is None:
            self.start_ms = now
        elapsed = now - self.start_ms - self.paused_ms
        answer = dict(status="ok", run_id=run_id, granted=0, elapsed_ms=elapsed, x_total=self.x,
                      version=str(self.version), now_ms=now, lag=self.lag)  # fmt: skip
        remaining = self.x - next_seq
        if remaining <= 0 or ask.target < 0 or ask.version != str(self.version):
            return Grant(**answer)  # type: ignore[arg-type]
        room = (self.backlog - (next_seq - self.settled)) if self.backlog else 1 << 60
        allowed = min(ask.target - self.lag, self.x)
        if allowed - next_seq > ask.budget:
            self.lag += allowed - next_seq - ask.budget
            self.marks.setdefault(sec, set()).add("forgiven")
            allowed = next_seq + ask.budget
        if room <= 0 and allowed > next_seq:
            self.marks.setdefault(sec, set()).add("backpressure")
        granted = max(0, min(allowed - next_seq, want, remaining, room))
        if granted > 0 and next_seq + granted > self.granted_to:
            first = max(self.granted_to, next_seq)
            self.released[sec] = self.released.get(sec, 0) + next_seq + granted - first
            self.granted_to = next_seq + granted
        self.grants.append((self.clock(), granted))
        answer.update(granted=granted, lag=self.lag)
        return Grant(**answer)  # type: ignore[arg-type]

    def submitted(self, run_id: str, outcomes: dict[str, list[int]]) -> None:
        """What a target's broker answered (`Release.submitted`), kept by outcome."""
        for status, seqs in outcomes.items():
            self.submits.setdefault(status, []).extend(seqs)

    def advance(self, scheduler_id: str, run_id: str, up_to: int) -> str:
        if self.lease_holder != scheduler_id:
            return "lease"
        self.enqueued = max(self.enqueued, up_to)
        self.advances.append((self.clock(), up_to))
        return "ok"


@dataclass
class FakeSchedulerStores:
    """What a `Scheduler` takes as `stores=`: a `FakeLimiter` plays the run, its release, its
    objectives and its head age (`FakeLimiter.stores()`)."""

    limiter: FakeLimiter
    heartbeats: FakeHeartbeats = field(default_factory=FakeHeartbeats)

    @property
    def runs(self) -> FakeLimiter:
        return self.limiter

    @property
    def release(self) -> FakeLimiter:
        return self.limiter

    @property
    def objectives(self) -> FakeLimiter:
        return self.limiter

    @property
    def head_ages(self) -> FakeLimiter:
        return self.limiter
