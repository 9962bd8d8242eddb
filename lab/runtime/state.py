"""Run state in Redis: the one module that reads and writes runs, counters and heartbeats.

Each state change is one Lua script (in `lab/runtime/lua/`), so it is atomic and costs one round
trip: starting a run cannot race a second start, a redelivered job can never be counted twice, and
`GET /status` reads everything it shows at once.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from lab.config import Settings
from lab.runtime import beats, headage, history, latency, scripts, shapes, slo
from lab.runtime.connections import (  # noqa: F401 - read from here too
    TextRedis,
    redis_client,
    unavailable,
)
from lab.runtime.keys import Keys
from lab.runtime.latency import RunTimings
from lab.runtime.scripts import script_source
from lab.runtime.status import (  # noqa: F401 - RunView, iso and is_settled are read from here too
    RunView,
    is_settled,
    iso,
    shape_status,
    status_call,
)
from lab.runtime.usage import process_usage

MAX_JOBS = 10_000_000
HEAD_SCAN = 200  # queued single jobs looked at for their queue's head, oldest first


class RunConflict(RuntimeError):
    """A run is already active; only one is released at a time."""

    def __init__(self, run_id: str):
        super().__init__(f"run {run_id} is still running; stop it first (POST /stop or `lab stop`)")
        self.run_id = run_id


class ShapeRace(RuntimeError):
    """The run's clock kept moving while a new shape was being applied."""


class NoActiveRun(RuntimeError):
    """There is no active run to stop, pause or resume."""

    def __init__(self) -> None:
        super().__init__("no run is active")


def new_run_id() -> str:
    """Sortable, readable and unique enough: `20261122T235900-3f9a`."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)


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


@dataclass(frozen=True)
class Counters:
    """The lab's counters in one round trip, for `/metrics`."""

    totals: dict[str, int]  # released, processed, failed: lifetime, every run
    dead_lettered: int
    jobs_by_state: dict[str, int]  # single jobs
    events: int  # entries in the event stream
    newest_event: str | None  # its newest entry's id
    run_dead: int  # dead letters of the run asked about


class State:
    """Run records, counters and worker heartbeats for one lab (one key prefix)."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None):
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self.redis: TextRedis = client or redis_client(settings)
        self._scripts: dict[str, Any] = {}

    def script(self, name: str) -> Any:
        """The Lua script `lab/runtime/lua/<name>.lua`, registered once per client."""
        if name not in self._scripts:
            self._scripts[name] = self.redis.register_script(script_source(name))
        return self._scripts[name]

    # --- runs ---------------------------------------------------------------------------------
    def start_run(
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
    ) -> str:
        """A run of `x` jobs of `kind` released at `y` a minute or following `shape` (checked
        by the caller: `shapes.parse`), judged by its objectives `slo` (`slo.parse`)."""
        if shape is None:
            if y is None:
                raise ValueError("a run needs y or a shape")
            shape = {"type": "constant", "y": y}
        first = shapes.parse(shape, seed).rate(0)
        run_id = new_run_id()
        k = self.keys
        status, value = scripts.START_RUN.call(
            self.script,
            keys={"active": k.active_run, "runs": k.runs, "run": k.run(run_id), "events": k.events},
            args={
                "run_id": run_id,
                "x": x,
                "y": repr(float(first)),
                "maxlen": self.settings.event_stream_len,
                "kind": kind,
                "payload": json.dumps(payload or {}, separators=(",", ":")),
                "shape": json.dumps(shape, separators=(",", ":")),
                "seed": seed,
                "shape_text": shapes.describe(shape),
                "slo": json.dumps(slo, separators=(",", ":")) if slo else "",
                "abort": "1" if abort_on_breach else "0",
                "grace": "" if slo_grace_s is None else repr(float(slo_grace_s)),
            },  # fmt: skip
        )
        if status == "conflict":
            raise RunConflict(value)
        return value

    def pause_run(self, paused: bool = True) -> tuple[str, bool]:
        """Pause (or resume) releasing the active run; returns its id and whether it changed."""
        k = self.keys
        result = scripts.PAUSE_RUN.call(
            self.script,
            keys={"active": k.active_run, "events": k.events},
            args={
                "runs": k.run_template,
                "maxlen": self.settings.event_stream_len,
                "paused": "1" if paused else "0",
            },  # fmt: skip
        )
        if result[0] != "ok":
            raise NoActiveRun()
        return result[1], result[2] == "changed"

    def pause_queue(self, queue: str, paused: bool = True) -> bool:
        """Workers stop (or start again) taking new messages from `queue`; True if it changed."""
        k = self.keys
        changed = (self.redis.sadd if paused else self.redis.srem)(k.paused_queues, queue)
        return bool(changed)

    def queue_paused(self, queue: str) -> bool:
        """Checked before a delivery starts, so a pause holds from the moment it answered."""
        return bool(self.redis.sismember(self.keys.paused_queues, queue))

    def paused_queues(self) -> set[str]:
        return set(self.redis.smembers(self.keys.paused_queues))

    def stop_run(self) -> str:
        k = self.keys
        result = scripts.STOP_RUN.call(
            self.script,
            keys={"active": k.active_run, "events": k.events},
            args={"runs": k.run_template, "maxlen": self.settings.event_stream_len},
        )
        if result[0] != "ok":
            raise NoActiveRun()
        return result[1]

    def run(self, run_id: str) -> RunView | None:
        h = self.redis.hgetall(self.keys.run(run_id))
        return RunView.from_hash(h, int(time.time() * 1000)) if h else None

    def known_run(self, run_id: str) -> RunView:
        """`run`, for a caller that started the run itself: its record must be there."""
        found = self.run(run_id)
        if found is None:
            raise LookupError(f"run {run_id} has no record (expired, or another lab's)")
        return found

    def runs_ended_before(self, cutoff_ms: int, limit: int = 20) -> list[str]:
        """Runs started and ended before `cutoff_ms` (never the active one), oldest first."""
        k = self.keys
        ids = self.redis.zrangebyscore(k.runs, "-inf", cutoff_ms, start=0, num=limit * 5)
        active = self.redis.get(k.active_run)
        pipe = self.redis.pipeline(transaction=False)
        for run_id in ids:
            pipe.hmget(k.run(run_id), "state", "finishedAt", "stoppedAt")
        out = []
        for run_id, (state, finished, stopped) in zip(ids, pipe.execute(), strict=True):
            ended = int(finished or stopped or 0) if state != "running" else 0
            if run_id != active and (state is None or (ended and ended <= cutoff_ms)):
                out.append(run_id)
            if len(out) == limit:
                break
        return out

    def forget_run(self, run_id: str) -> None:
        """Delete a run's keys and take it off the run history (its documents: `Store`)."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(*k.run_keys(run_id), k.run_kinds(run_id))
        pipe.zrem(k.runs, run_id)
        pipe.execute()

    def runs(self, limit: int = 50) -> list[RunView]:
        ids = self.redis.zrevrange(self.keys.runs, 0, limit - 1)
        pipe = self.redis.pipeline(transaction=False)
        for run_id in ids:
            pipe.hgetall(self.keys.run(run_id))
        now = int(time.time() * 1000)
        return [RunView.from_hash(h, now) for h in pipe.execute() if h]

    def counters(self, run_id: str | None, job_states: tuple[str, ...]) -> Counters:
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(k.totals)
        pipe.get(k.dead_lettered)
        for name in job_states:
            pipe.zcard(k.jobs_in(name))
        pipe.xlen(k.events)
        pipe.xrevrange(k.events, count=1)
        pipe.hget(k.run(run_id or "-"), "deadLettered")
        totals, dead, *rest = pipe.execute()
        by_state, (events, newest, run_dead) = rest[: len(job_states)], rest[len(job_states) :]
        return Counters(
            totals={name: int(value) for name, value in totals.items()},
            dead_lettered=int(dead or 0),
            jobs_by_state=dict(zip(job_states, map(int, by_state), strict=True)),
            events=int(events),
            newest_event=newest[0][0] if newest else None,
            run_dead=int(run_dead or 0) if run_id else 0,
        )

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
        """The run's queue wait, service and end-to-end latency (`lab.runtime.latency`);
        None for an unknown run."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(self.keys.run(run_id))
        pipe.hgetall(self.keys.run_latency(run_id))
        known, raw = pipe.execute()
        return latency.run_latency(run_id, raw, windows) if known else None

    def recent(self, seconds: int) -> dict[str, Any]:
        """The lab's jobs per 10-second bucket over the last `seconds`, whatever the runs."""
        now_s = int(self.redis.time()[0])
        buckets = history.recent_buckets(seconds, self.settings.history_s, now_s)
        pipe = self.redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.hmget(self.keys.history(bucket), *history.FIELDS)
        return history.recent(buckets, pipe.execute())

    def status(self) -> dict[str, Any]:
        """The active run (or the latest), its rates and the live workers: one round trip."""
        keys, args = status_call(self.keys)
        return shape_status(json.loads(scripts.STATUS.call(self.script, keys, args)))

    # --- heartbeats ---------------------------------------------------------------------------
    def heartbeat(self, worker_id: str, fields: dict[str, Any]) -> None:
        fields = beats.encode(beats.WORKER, {**fields, **process_usage()})
        self._announce(self.keys.workers, self.keys.worker(worker_id), worker_id, fields)

    def forget_worker(self, worker_id: str) -> None:
        self._forget(self.keys.workers, self.keys.worker(worker_id), worker_id)

    def scheduler_heartbeat(self, scheduler_id: str, fields: dict[str, Any]) -> None:
        key = self.keys.scheduler(scheduler_id)
        fields = beats.encode(beats.SCHEDULER, {**fields, **process_usage()})
        self._announce(self.keys.schedulers, key, scheduler_id, fields)

    def forget_scheduler(self, scheduler_id: str) -> None:
        self._forget(self.keys.schedulers, self.keys.scheduler(scheduler_id), scheduler_id)

    def _announce(self, members: str, key: str, member: str, fields: dict[str, Any]) -> None:
        """A heartbeat: a hash that expires unless renewed, listed in a set of live members."""
        pipe = self.redis.pipeline(transaction=True)
        mapping = {**fields, "seenMs": int(time.time() * 1000)}
        pipe.hset(key, mapping=mapping)
        pipe.pexpire(key, int(self.settings.heartbeat_ttl_s * 1000))
        pipe.sadd(members, member)
        pipe.execute()

    def _forget(self, members: str, key: str, member: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.srem(members, member)
        pipe.execute()

    # --- used by the worker and the scheduler -------------------------------------------------
    def record(
        self,
        outcomes: dict[str, tuple[list[int], list[int]]],
        counts: dict[str, dict[int, list[Any]]] | None = None,
        timings: dict[str, RunTimings] | None = None,
    ) -> tuple[int, int]:
        """Count a batch: {runId: (done seqs, failed seqs)} → (newly processed, newly failed).

        `counts` ({runId: {seq: [Count, ...]}}, from the worker's middleware) and `timings`
        (`recording.timings_of`: each job's latency) are added in the same call, each only
        when its job is counted for the first time."""
        if not outcomes:
            return 0, 0
        if not timings:
            return self._record(outcomes, counts, None)
        # The batch's latency in a few hundred numbers, counted whole when every job is new;
        # else job by job, so a job seen before adds nothing.
        answer = self._record(outcomes, counts, {r: t.added_up() for r, t in timings.items()})
        if answer[0] >= 0:
            return answer
        return self._record(outcomes, counts, {r: t.detail() for r, t in timings.items()})

    def _record(
        self,
        outcomes: dict[str, tuple[list[int], list[int]]],
        counts: dict[str, dict[int, list[Any]]] | None,
        timings: dict[str, dict[str, Any]] | None,
    ) -> tuple[int, int]:
        k = self.keys
        run_keys: list[str] = []
        extra_keys: dict[str, int] = {}  # a middleware key → its 1-based index after the runs'
        entries = []
        for run_id, (done, failed) in outcomes.items():
            run_keys += k.run_keys(run_id)
            ops = [
                [
                    seq,
                    [
                        [extra_keys.setdefault(c.key, len(extra_keys) + 1), c.field, c.n]
                        for c in found
                    ],
                ]  # fmt: skip
                for seq, found in (counts or {}).get(run_id, {}).items()
                if found
            ]
            entries.append([run_id, done, failed, ops, (timings or {}).get(run_id, {})])
        new_done, new_failed = scripts.RECORD.call(
            self.script,
            keys={
                "active": k.active_run,
                "events": k.events,
                "totals": k.totals,
                "history": k.history(),
                "latency": k.latency,
            },  # fmt: skip
            args={
                "maxlen": self.settings.event_stream_len,
                "entries": json.dumps(entries, separators=(",", ":")),
                "history_s": self.settings.history_s,
            },  # fmt: skip
            more_keys=[*run_keys, *extra_keys],
        )
        return int(new_done), int(new_failed)

    def active_run_id(self) -> str | None:
        return self.redis.get(self.keys.active_run)

    def release(self, scheduler_id: str, run_id: str, next_seq: int, want: int,
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
        answer = scripts.RELEASE.call(self.script, keys, args)
        return Grant.of(answer)

    def measure_head_ages(
        self, run_queue: str, other_run_queue: str, single_queue: str
    ) -> tuple[int, int]:
        """Measure the head-of-line age of the active run's queue and of the single-job queue
        (`lab.runtime.headage`), record them for /status, /queues and /metrics (`head_ages`),
        and return Redis' time and the run's age, in ms (0: nothing waits, or no run)."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.time()
        pipe.get(k.active_run)
        pipe.smembers(k.workers)
        pipe.zrangebylex(k.jobs_in("queued"), "-", "+", start=0, num=HEAD_SCAN)
        (now_s, now_us), run_id, workers, queued = pipe.execute()
        now_ms = int(now_s) * 1000 + int(now_us) // 1000
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(k.run(run_id or "-"), "enqueued", "processed", "failed", "startedAt")
        for worker in workers:
            pipe.hmget(k.worker(worker), "inFlight", "waitingSinceMs")
        for job in queued:
            pipe.hmget(k.job(job), "queuedAt", "runAt")
        answers = pipe.execute()
        run, beats_, jobs = answers[0], answers[1 : 1 + len(workers)], answers[1 + len(workers) :]
        run_age = 0
        if run_id and run[0] is not None:
            held = sum(_int(in_flight) for in_flight, _ in beats_)
            waiting = _int(run[0]) - _int(run[1]) - _int(run[2]) - held
            broker_ms = self._released_at_rank(run_id, waiting, now_ms, _int(run[3]))
            run_age = headage.head_age_ms(now_ms, (_int(w) for _, w in beats_), broker_ms)
        due = [max(_int(q), _int(r)) for q, r in jobs if _int(r) <= now_ms]
        single_age = max(0, now_ms - min(due)) if due else 0
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(k.head_ages)
        pipe.hset(k.head_ages, mapping={"atMs": now_ms, "run": run_id or "", "runAgeMs": run_age,
                                        run_queue: run_age, other_run_queue: 0,
                                        single_queue: single_age})  # fmt: skip
        pipe.pexpire(k.head_ages, headage.STALE_MS * 10)
        pipe.execute()
        return now_ms, run_age

    def _released_at_rank(
        self, run_id: str, rank: int, now_ms: int, started_ms: int
    ) -> float | None:
        """When the `rank`-th newest job of the run was released, from its timeline counted
        back from now a minute at a time (`headage.released_at_rank`)."""
        if rank <= 0:
            return None
        first, second = started_ms // 1000, now_ms // 1000
        counted: list[tuple[int, int]] = []
        while second >= first:
            seconds = list(range(second, max(first, second - 59) - 1, -1))
            fields = [f"{s}:released" for s in seconds]
            counts = self.redis.hmget(self.keys.run_timeline(run_id), fields)
            counted.extend(zip(seconds, (_int(c) for c in counts), strict=True))
            found = headage.released_at_rank(counted, rank)
            if found is not None:
                return found
            second = seconds[-1] - 1
        return float(started_ms) if started_ms else None

    def head_ages(self) -> dict[str, Any]:
        """The last head-of-line ages measured (`measure_head_ages`): queue → ms, with `run`
        (the run measured) and `runAgeMs`; empty when none is recent."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.time()
        pipe.hgetall(self.keys.head_ages)
        (now_s, now_us), raw = pipe.execute()
        return headage.fresh(raw, int(now_s) * 1000 + int(now_us) // 1000)

    def judge_slo(self, run_id: str, now_ms: int, head_age_ms: int = 0) -> str:
        """Judge the run's objectives on their windows (`lab.runtime.slo`) and record their
        states; with `abortOnBreach` and a breach, the run stops releasing and ends `breached`.
        Returns `none` (no objectives), `ok` or `breached`."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(k.run(run_id))
        pipe.hgetall(k.run_latency(run_id))
        pipe.hgetall(k.run_timeline(run_id))
        h, raw_latency, raw_timeline = pipe.execute()
        if not h.get("slo") or h.get("state") != "running":
            return "none"
        objectives = slo.parse(json.loads(h["slo"]))
        planned = shapes.planner(h)
        fields = list(latency.parse_fields(raw_latency))
        windows = []
        for objective in objectives:
            since_ms = now_ms - objective.window_s * 1000
            first_window = since_ms // 1000 // latency.WINDOW_S
            histograms = {m: latency.Histogram() for m in latency.METRICS}
            for metric, _kind, window, bucket, n in fields:
                if window >= first_window:
                    histograms[metric].add(bucket, n)
            done = failed = 0
            for name, value in raw_timeline.items():
                second, _, field = name.partition(":")
                if second.isdigit() and int(second) * 1000 >= since_ms:
                    done += int(value) if field == "processed" else 0
                    failed += int(value) if field == "failed" else 0
            asked = planned(now_ms / 1000) - planned(since_ms / 1000)
            windows.append(slo.Window(histograms, done, failed, asked, head_age_ms))
        elapsed = (now_ms - int(h["startedAt"])) / 1000
        grace = float(h["sloGrace"]) if h.get("sloGrace") else None
        before = json.loads(h["sloState"]) if h.get("sloState") else None
        states = slo.judge(objectives, windows, elapsed, grace, before, now_ms)
        breached = any(s["state"] == "breached" for s in states)
        answer = scripts.BREACH_RUN.call(
            self.script,
            keys={"active": k.active_run, "run": k.run(run_id), "events": k.events},
            args={"run_id": run_id, "maxlen": self.settings.event_stream_len,
                  "states": json.dumps(states, separators=(",", ":")),
                  "abort": "1" if breached and h.get("abortOnBreach") == "1" else "0"},
        )  # fmt: skip
        return "breached" if breached or answer[0] == "breached" else "ok"

    def plan(self, run_id: str) -> shapes.Plan | None:
        """The run's release plan (its shape, base and version), as the scheduler follows it."""
        h = self.redis.hgetall(self.keys.run(run_id))
        return shapes.Plan.of_run(h) if h else None

    def reshape(self, run_id: str, shape: dict[str, Any]) -> int:
        """The active run follows `shape` from now on, going on from the jobs its old shape had
        allowed by now; returns the new shape's base. Raises `NoActiveRun`."""
        k = self.keys
        for _ in range(5):  # another change or a pause in between: read the clock again
            h = self.redis.hgetall(k.run(run_id))
            if not h or h.get("state") != "running":
                raise NoActiveRun()
            now_s, now_us = self.redis.time()
            plan = shapes.Plan.of_run(h)
            elapsed = shapes.elapsed_s(h, now_s * 1000 + now_us // 1000)
            base = min(plan.x, plan.target(elapsed) - int(h.get("shapeLag") or 0))
            first = shapes.parse(shape, plan.seed).rate(0)
            answer = scripts.RESHAPE_RUN.call(
                self.script,
                keys={"active": k.active_run, "run": k.run(run_id), "events": k.events},
                args={"run_id": run_id, "shape": json.dumps(shape, separators=(",", ":")),
                      "base": base, "version": h.get("shapeVersion") or "1",
                      "maxlen": self.settings.event_stream_len, "y": repr(float(first)),
                      "shape_text": shapes.describe(shape)},
            )  # fmt: skip
            if answer[0] == "ok":
                return base
            if answer[0] == "idle":
                raise NoActiveRun()
        raise ShapeRace(f"run {run_id} kept changing (pauses, other changes); try again")

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
        answer = scripts.ADVANCE.call(self.script, keys, args)
        return str(answer[0])

    def acquire_lease(self, scheduler_id: str) -> bool:
        """Take the lease if it is free, renew it if it is ours; False while another holds it."""
        return bool(
            self.redis.eval(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then"
                " return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end"
                " return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0",
                1,
                self.keys.scheduler_lease,
                scheduler_id,
                self.settings.lease_ms,
            )
        )

    def release_lease(self, scheduler_id: str) -> None:
        # Only the holder may drop the lease; a plain DEL could drop a successor's.
        self.redis.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end",
            1,
            self.keys.scheduler_lease,
            scheduler_id,
        )

    def ping(self) -> None:
        """Raises when Redis does not answer."""
        self.redis.ping()

    def dead_lettered(self) -> int:
        """Messages this lab sent to its dead-letter queue, ever."""
        return int(self.redis.get(self.keys.dead_lettered) or 0)

    def run_bitmap_bytes(self, run_id: str) -> int:
        """What a run's exactly-once bitmap costs Redis (the benchmark reports it)."""
        return int(self.redis.memory_usage(self.keys.run_done(run_id)) or 0)

    def legacy_retry_queues(self) -> set[str]:
        """Retry queues older labs declared per delay value (`lab reset` removes them)."""
        return set(self.redis.smembers(self.keys.retry_queues))

    def count_dead_letter(self, run_id: str | None = None) -> None:
        """One more dead letter, for the lab and, when it was a run's job, for that run."""
        self.redis.incr(self.keys.dead_lettered)
        if run_id and self.redis.exists(self.keys.run(run_id)):
            self.redis.hincrby(self.keys.run(run_id), "deadLettered", 1)

    # --- cleanup ------------------------------------------------------------------------------
    def live_processes(self) -> list[str]:
        """Workers and schedulers whose heartbeat has not expired (`lab reset` refuses while any
        runs: they would declare the queues again at once)."""
        live = []
        for members, key in ((self.keys.workers, self.keys.worker),
                             (self.keys.schedulers, self.keys.scheduler)):  # fmt: skip
            live += [m for m in sorted(self.redis.smembers(members)) if self.redis.exists(key(m))]
        return live

    def purge(self) -> int:
        """Delete every key of this lab's prefix (tests and `lab reset`)."""
        deleted = 0
        for batch in _chunks(self.redis.scan_iter(self.keys.pattern, count=1000), 500):
            deleted += self.redis.delete(*batch)
        return deleted


def _chunks(items: Any, size: int) -> Any:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _int(raw: Any) -> int:
    """A counter or time as Redis keeps it (None or "" when unset: 0)."""
    try:
        return int(raw) if raw not in (None, "") else 0
    except (TypeError, ValueError):
        return 0
