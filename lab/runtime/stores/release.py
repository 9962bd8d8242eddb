"""Release: which scheduler may publish (the lease), how many jobs the run's shape allows now
(`release.lua`), and how far the broker has confirmed them (`advance.lua`).

Keys: `scheduler:lease`, and the run's `run:<id>` (its shape clock, lag and `enqueued`),
`:timeline` (released per second, and the seconds forgiven, held back or paused) and
`:rate:e:<second>`, with the lab's `totals` and `history:<bucket>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lab.runtime import scripts
from lab.runtime.stores.base import RedisStore


@dataclass(frozen=True)
class Grant:
    """`release.lua`'s answer: how many jobs the scheduler may publish now, and when to ask
    again. `status` is `ok`, `idle` (no running run), `paused` (the run's release is paused),
    `switch` (another run is active: `run_id`) or `lease` (another scheduler holds the lease:
    `holder`)."""

    status: str
    run_id: str | None = None
    granted: int = 0
    elapsed_ms: int = 0  # the run's shape time now (its time less its pauses)
    x_total: int = 0
    version: str = "1"  # of the run's shape; another means it changed (PATCH /run)
    now_ms: int = 0  # Redis' clock
    lag: int = 0  # jobs forgiven to schedulers that fell behind
    holder: str = ""

    @classmethod
    def of(cls, answer: list[Any]) -> Grant:
        status = str(answer[0])
        if status == "ok":
            _, run_id, granted, elapsed, x_total, version, now, lag = answer
            return cls(status, str(run_id), int(granted), int(elapsed), int(x_total),
                       str(version), int(now), int(lag))  # fmt: skip
        if status == "switch":
            return cls(status, run_id=str(answer[1]))
        if status == "lease":
            return cls(status, holder=str(answer[1] or ""))
        return cls(status)


@dataclass(frozen=True)
class Ask:
    """What the scheduler asks `release.lua` for: the shape's target (-1: only read the clock),
    the most it may release at once, the shape version it computed them from, and the rate and
    ETA /status shows."""

    target: int = -1
    budget: int = 0
    version: str = ""
    y: float = 0.0
    eta_s: float | None = None


# Take the lease if it is free, renew it if it is ours; only the holder may drop it (a plain DEL
# could drop a successor's).
_ACQUIRE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then"
    " return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end"
    " return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0"
)
_DROP = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end"


class Release(RedisStore):
    def acquire_lease(self, scheduler_id: str) -> bool:
        """Take the lease if it is free, renew it if it is ours; False while another holds it."""
        key = self.keys.scheduler_lease
        return bool(self.redis.eval(_ACQUIRE, 1, key, scheduler_id, self.settings.lease_ms))

    def release_lease(self, scheduler_id: str) -> None:
        self.redis.eval(_DROP, 1, self.keys.scheduler_lease, scheduler_id)

    def grant(self, scheduler_id: str, run_id: str, next_seq: int, want: int,
              ask: Ask | None = None) -> Grant:  # fmt: skip
        """Ask for up to `want` jobs of `run_id` from `next_seq` on (the lease, the shape's
        target, the backlog); without `ask`, only read the run's clock."""
        k = self.keys
        ask = ask or Ask()
        keys = {"lease": k.scheduler_lease, "active": k.active_run, "run": k.run(run_id),
                "timeline": k.run_timeline(run_id)}  # fmt: skip
        args = {"scheduler": scheduler_id, "lease_ms": self.settings.lease_ms, "run_id": run_id,
                "next_seq": next_seq, "want": want, "target": ask.target, "budget": ask.budget,
                "backlog": self.settings.backlog_limit, "version": ask.version,
                "y": repr(float(ask.y)),
                "eta": "" if ask.eta_s is None else f"{ask.eta_s:.1f}"}  # fmt: skip
        return Grant.of(self.call(scripts.RELEASE, keys, args))

    def submitted(self, run_id: str, outcomes: dict[str, list[int]]) -> None:
        """What a target's broker answered to a batch of submits: seqs `ok`, `failed` and
        `indeterminate` (the delivery verdict's first counts, `lab.targets.verdict`)."""
        k = self.keys
        self.call(scripts.SUBMITTED,
                  keys={"run": k.run(run_id), "submitted": k.run_submitted(run_id),
                        "indeterminate": k.run_indeterminate(run_id)},
                  args={"outcomes": json.dumps(outcomes, separators=(",", ":"))})  # fmt: skip

    def advance(self, scheduler_id: str, run_id: str, up_to: int) -> str:
        """Record that every job of `run_id` below `up_to` is confirmed: `ok`, `lease` (another
        scheduler leads now) or `gone` (the run no longer exists)."""
        k = self.keys
        keys = {"lease": k.scheduler_lease, "active": k.active_run, "run": k.run(run_id),
                "released_in": k.run_released_in(run_id), "events": k.events, "totals": k.totals,
                "history": k.history()}  # fmt: skip
        args = {"scheduler": scheduler_id, "run_id": run_id, "up_to": up_to,
                "maxlen": self.settings.event_stream_len,
                "history_s": self.settings.history_s}  # fmt: skip
        return str(self.call(scripts.ADVANCE, keys, args)[0])
