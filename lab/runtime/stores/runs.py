"""Runs: their records and lifecycle (start, pause, reshape, stop) and what a run reads back
(its record, plan, timeline and latency).

Keys: `active-run`, `runs`, and per run `run:<id>`, `:timeline`, `:latency` (written by the
counting and release scripts, read here). Each change is one Lua script, so starting a run cannot
race a second start and a reshape cannot race a pause.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from lab.runtime import history, latency, scripts, shapes
from lab.runtime.latency import Histogram
from lab.runtime.status import RunView
from lab.runtime.stores.base import RedisStore

MAX_JOBS = 10_000_000
# The most a run's shape history (`shapes`: every shape it followed, from when) may hold: a
# PATCH past it is refused. Two day-long traces fit.
MAX_SHAPE_HISTORY_BYTES = 2 * 1024 * 1024


class RunConflict(RuntimeError):
    """A run is already active; only one is released at a time."""

    def __init__(self, run_id: str):
        super().__init__(f"run {run_id} is still running; stop it first (POST /stop or `lab stop`)")
        self.run_id = run_id


class ShapeRace(RuntimeError):
    """The run's clock kept moving while a new shape was being applied."""


class ShapeHistoryFull(ValueError):
    """The run's shape history would grow past `MAX_SHAPE_HISTORY_BYTES`."""

    def __init__(self, size: int):
        super().__init__(
            f"the run's shape history would hold {size:,} bytes, past its bound of "
            f"{MAX_SHAPE_HISTORY_BYTES:,}: start a new run for more changes"
        )


class NoActiveRun(RuntimeError):
    """There is no active run to stop, pause or resume."""

    def __init__(self) -> None:
        super().__init__("no run is active")


def new_run_id() -> str:
    """Sortable, readable and unique enough: `20261122T235900-3f9a`."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Runs(RedisStore):
    """Run records of one lab (one key prefix)."""

    def start(
        self,
        x: int,
        y: float | None = None,
        *,
        shape: dict[str, Any] | None = None,
        kind: str = "index",
        payload: dict[str, Any] | None = None,
        seed: int = 0,
        slo: list[dict[str, Any]] | None = None,
        abort_on_breach: bool = False,
        slo_grace_s: float | None = None,
        target: str = "lab",
    ) -> str:
        """A run of `x` jobs of `kind` released at `y` a minute or following `shape` (checked
        by the caller: `shapes.parse`), judged by its objectives `slo` (`slo.parse`), on
        `target` (the system under test, `lab.targets`)."""
        if shape is None:
            if y is None:
                raise ValueError("a run needs y or a shape")
            shape = {"type": "constant", "y": y}
        first = shapes.parse(shape, seed).rate(0)
        run_id = new_run_id()
        k = self.keys
        status, value = self.call(
            scripts.START_RUN,
            keys={"active": k.active_run, "runs": k.runs, "run": k.run(run_id), "events": k.events},
            args={
                "run_id": run_id,
                "x": x,
                "y": repr(float(first)),
                "maxlen": self.settings.event_stream_len,
                "kind": kind,
                "payload": _json(payload or {}),
                "shape": _json(shape),
                "seed": seed,
                "shape_text": shapes.describe(shape),
                "slo": _json(slo) if slo else "",
                "abort": "1" if abort_on_breach else "0",
                "grace": "" if slo_grace_s is None else repr(float(slo_grace_s)),
                "target": target,
            },
        )
        if status == "conflict":
            raise RunConflict(value)
        return str(value)

    def pause(self, paused: bool = True) -> tuple[str, bool]:
        """Pause (or resume) releasing the active run; returns its id and whether it changed."""
        k = self.keys
        result = self.call(
            scripts.PAUSE_RUN,
            keys={"active": k.active_run, "events": k.events},
            args={
                "runs": k.run_template,
                "maxlen": self.settings.event_stream_len,
                "paused": "1" if paused else "0",
            },
        )
        if result[0] != "ok":
            raise NoActiveRun()
        return result[1], result[2] == "changed"

    def stop(self) -> str:
        k = self.keys
        result = self.call(
            scripts.STOP_RUN,
            keys={"active": k.active_run, "events": k.events},
            args={"runs": k.run_template, "maxlen": self.settings.event_stream_len},
        )
        if result[0] != "ok":
            raise NoActiveRun()
        return str(result[1])

    def active_id(self) -> str | None:
        return self.redis.get(self.keys.active_run)

    def get(self, run_id: str) -> RunView | None:
        h = self.redis.hgetall(self.keys.run(run_id))
        return RunView.from_hash(h, int(time.time() * 1000)) if h else None

    def known(self, run_id: str) -> RunView:
        """`get`, for a caller that started the run itself: its record must be there."""
        found = self.get(run_id)
        if found is None:
            raise LookupError(f"run {run_id} has no record (expired, or another lab's)")
        return found

    def newest(self, limit: int = 50) -> list[RunView]:
        """The newest runs first."""
        ids = self.redis.zrevrange(self.keys.runs, 0, limit - 1)
        pipe = self.redis.pipeline(transaction=False)
        for run_id in ids:
            pipe.hgetall(self.keys.run(run_id))
        now = int(time.time() * 1000)
        return [RunView.from_hash(h, now) for h in pipe.execute() if h]

    def plan(self, run_id: str) -> shapes.Plan | None:
        """The run's release plan (its shape, base and version), as the scheduler follows it."""
        h = self.redis.hgetall(self.keys.run(run_id))
        return shapes.Plan.of_run(h) if h else None

    def reshape(self, run_id: str, shape: dict[str, Any]) -> int:
        """The active run follows `shape` from now on, going on from the jobs its old shape had
        allowed by now; returns the new shape's base. Raises `NoActiveRun`, or
        `ShapeHistoryFull` (nothing changed)."""
        k = self.keys
        for _ in range(5):  # another change or a pause in between: read the clock again
            h = self.redis.hgetall(k.run(run_id))
            if not h or h.get("state") != "running":
                raise NoActiveRun()
            plan = shapes.Plan.of_run(h)
            elapsed = shapes.elapsed_s(h, self.now_ms())
            base = min(plan.x, plan.target(elapsed) - int(h.get("shapeLag") or 0))
            first = shapes.parse(shape, plan.seed).rate(0)
            answer = self.call(
                scripts.RESHAPE_RUN,
                keys={"active": k.active_run, "run": k.run(run_id), "events": k.events},
                args={"run_id": run_id, "shape": _json(shape), "base": base,
                      "version": h.get("shapeVersion") or "1",
                      "maxlen": self.settings.event_stream_len, "y": repr(float(first)),
                      "shape_text": shapes.describe(shape),
                      "max_bytes": MAX_SHAPE_HISTORY_BYTES},
            )  # fmt: skip
            if answer[0] == "ok":
                return base
            if answer[0] == "full":
                raise ShapeHistoryFull(int(answer[1]))
            if answer[0] == "idle":
                raise NoActiveRun()
        raise ShapeRace(f"run {run_id} kept changing (pauses, other changes); try again")

    def timeline(self, run_id: str) -> dict[str, Any] | None:
        """The run's jobs per second over its life; None for an unknown run."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.run(run_id))
        pipe.hgetall(self.keys.run_timeline(run_id))
        pipe.time()
        h, raw, now = pipe.execute()
        if not h.get("startedAt"):
            return None
        ended = h.get("finishedAt") or h.get("stoppedAt")
        planned = shapes.planner(h)
        return history.timeline(run_id, raw, h["startedAt"], ended, int(now[0]), planned)

    def latency(self, run_id: str, windows: bool = True) -> dict[str, Any] | None:
        """The run's queue wait, service and end-to-end latency (`lab.runtime.latency`), and
        with `windows` each 10-second window's; None for an unknown run."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(k.run(run_id))
        pipe.hgetall(k.run_latency(run_id))
        pipe.smembers(k.run_owned(run_id))
        known, raw, owned = pipe.execute()
        if not known:
            return None
        if not windows:
            return latency.run_latency(run_id, raw)
        prefix = k.run_latency_window(run_id, 0)[:-1]
        numbers = sorted(int(key[len(prefix) :]) for key in owned
                         if re.fullmatch(r"[0-9]{1,12}", key[len(prefix) :]))  # fmt: skip
        pipe = self.redis.pipeline(transaction=False)
        for window in numbers:
            pipe.hgetall(k.run_latency_window(run_id, window))
        return latency.run_latency(run_id, raw, dict(zip(numbers, pipe.execute(), strict=True)))

    def histograms(self, run_id: str) -> dict[str, Histogram]:
        """Each latency's whole histogram for the run (every kind, every window)."""
        return latency.histograms(self.redis.hgetall(self.keys.run_latency(run_id)))

    def snapshot(self, run_id: str) -> tuple[int, dict[str, str], dict[str, str], dict[str, str]]:
        """What had been counted of a run at one instant, raw: Redis' time (ms), the run's
        record, its timeline hash (`<second>:<field>`) and its latency hash, read in one
        transaction, so nothing is counted between the clock and the counts. Two snapshots
        bound a span whose counts and histograms are their differences (lab.capacity.step)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.time()
        pipe.hgetall(self.keys.run(run_id))
        pipe.hgetall(self.keys.run_timeline(run_id))
        pipe.hgetall(self.keys.run_latency(run_id))
        (now_s, now_us), record, timeline, counted = pipe.execute()
        return int(now_s) * 1000 + int(now_us) // 1000, record, timeline, counted
