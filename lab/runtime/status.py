"""What a run and the lab look like from outside: `RunView` (a run record as the API, the CLI
and notebooks show it) and the `/status` document, read in one script call by `Overview.status`
and by the API's event loop (`AsyncStatus`), and shaped here (pure, unit-tested)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lab.config import Settings
from lab.runtime import beats, headage
from lab.runtime.keys import Keys
from lab.runtime.scripts import STATUS, script_source

RATE_WINDOW_S = 10


def iso(ms: str | int | None) -> str | None:
    """Epoch milliseconds as stored in Redis to ISO 8601 (UTC), None when unset."""
    if ms is None or ms == "":
        return None
    return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat(timespec="milliseconds")


@dataclass
class RunView:
    """A run record as the API, the CLI and notebooks show it."""

    runId: str
    state: str
    xTotal: int
    yMinutes: float
    enqueued: int
    processed: int
    failed: int
    running: bool
    paused: bool  # releasing is paused (`POST /run/pause`); queued jobs still run
    startedAt: str | None
    releasedAt: str | None
    stoppedAt: str | None
    finishedAt: str | None
    durationSeconds: float | None
    # What the run is: its kind and payload, its shape (yMinutes is the shape's rate now), the
    # seed of its randomness, and when its release ends as the shape says. The full record
    # (`GET /runs/{id}`) also has the shape's changes and the pauses; /status and events carry
    # only what fits every answer (the shape in words).
    kind: str = "index"
    shapeText: str = ""
    seed: int | None = None
    etaSeconds: float | None = None
    payload: dict[str, Any] | None = None
    shape: dict[str, Any] | None = None
    changes: list[dict[str, Any]] | None = None
    pauses: list[list[int]] | None = None
    slo: list[dict[str, Any]] | None = None  # each objective: its state, value, breachedAt
    abortOnBreach: bool = False
    target: str = "lab"  # the system under test (lab.targets)
    # The delivery verdict's live counts (`lab.targets.verdict`): submits to a target's broker,
    # jobs that ended more than once, seqs the run never had.
    submits: dict[str, int] | None = None
    executedAgain: int = 0
    unexpected: int = 0

    @classmethod
    def from_hash(cls, h: dict[str, str], now_ms: int) -> RunView:
        started = int(h["startedAt"])
        end = h.get("finishedAt") or ""
        end_ms = int(end) if end else now_ms
        return cls(
            runId=h["runId"],
            state=h["state"],
            xTotal=int(h["xTotal"]),
            yMinutes=float(h["yMinutes"]),
            # A worker may count a job a moment before the scheduler records its confirm;
            # a processed job was released, so never show fewer released than settled.
            enqueued=max(int(h["enqueued"]), int(h["processed"]) + int(h["failed"])),
            processed=int(h["processed"]),
            failed=int(h["failed"]),
            running=h["running"] == "1",
            paused=h.get("paused") == "1" and h["state"] == "running",
            startedAt=iso(h.get("startedAt")),
            releasedAt=iso(h.get("releasedAt")),
            stoppedAt=iso(h.get("stoppedAt")),
            finishedAt=iso(h.get("finishedAt")),
            durationSeconds=round((end_ms - started) / 1000, 3),
            kind=h.get("kind") or "index",
            shapeText=h.get("shapeText") or _shape_text(h),
            seed=int(h["seed"]) if h.get("seed") else None,
            etaSeconds=float(h["etaSeconds"])
            if h.get("etaSeconds") and h["state"] == "running"
            else None,
            payload=_json(h.get("payload")),
            shape=_json(h.get("shape")),
            changes=_json(h.get("shapes")),
            pauses=_json(h.get("pauses")),
            slo=_json(h.get("sloState")) or _pending(h.get("slo")),
            abortOnBreach=h.get("abortOnBreach") == "1",
            target=h.get("target") or "lab",
            submits=_submits(h),
            executedAgain=int(h.get("executedAgain") or 0),
            unexpected=int(h.get("unexpected") or 0),
        )

    @property
    def settled(self) -> bool:
        return is_settled(self.state, self.processed, self.failed, self.enqueued)


# What each field of a run says, for docs/reference/json.md (`python -m lab.cli.reference`
# refuses a field of `RunView` or of /status described nowhere here).
RUN_FIELDS = {
    "runId": "the run's id, `<UTC time>-<4 hex digits>`; its jobs are `<runId>-<seq>`",
    "state": "`running`, `completed`, `stopped` or `breached`; `idle` in /status before any run",
    "xTotal": "X: the jobs the run releases",
    "yMinutes": "Y: the shape's rate now, jobs per minute",
    "enqueued": "jobs released so far: published and confirmed by RabbitMQ (never fewer than "
    "processed + failed)",
    "processed": "jobs done, each counted once (the run's bitmap)",
    "failed": "jobs that failed for good (dead-lettered), each counted once",
    "running": "true while the run is being released",
    "paused": "true while its release is paused (`POST /run/pause`); queued jobs still run",
    "startedAt": "when `POST /run` started it (ISO 8601, UTC)",
    "releasedAt": "when its last job was released; null until then",
    "stoppedAt": "when `POST /stop` (or a breach) stopped it; null otherwise",
    "finishedAt": "when it settled; null until then",
    "durationSeconds": "from start to finish, or to now while it is not finished",
    "kind": "the job kind of every job",
    "shapeText": "the shape in words (`ramp 600→12,000/min over 120 s`)",
    "seed": "the seed of its randomness (Poisson arrivals, the synthetic kind's draws)",
    "etaSeconds": "while running: when the release ends as the shape says",
    "payload": "every job's payload (the run's record only)",
    "shape": "the shape it follows now, as JSON (the run's record only)",
    "changes": "every shape it followed, from when and from which job (the run's record only)",
    "pauses": "its pauses as [start ms, end ms] pairs (the run's record only)",
    "slo": "each objective with its `state` (`pending`, `ok`, `breached`), `value` and "
    "`breachedAt`; null without objectives",
    "abortOnBreach": "a breached objective stops the run, which ends `breached`",
    "target": "the system under test: `lab`, or another framework's pipeline",
    "submits": "a target's submits by outcome: `ok`, `failed`, `indeterminate`; null for lab's "
    "own pipeline",
    "executedAgain": "jobs that ended more than once (the delivery verdict's executed more "
    "than once)",
    "unexpected": "jobs that ended and that the run never released",
}
STATUS_FIELDS = {
    "rates": "per minute over the last `windowSeconds`: `processedPerMinute`, "
    "`enqueuedPerMinute`; and `averageProcessedPerMinute` over the whole run",
    "headAgeMs": "how long the run's oldest waiting job has waited, in ms; null when no "
    "scheduler leader measures it",
    "workers": "each live worker's heartbeat (below)",
    "schedulers": "each live scheduler's heartbeat (below)",
    "pausedQueues": "the queues no worker takes from (`POST /queues/{name}/pause`)",
    "serverTime": "Redis' clock when the answer was read",
    "ageMs": "how old the figures are: the API shares one read among its callers",
}


def _submits(h: dict[str, str]) -> dict[str, int] | None:
    """A target's submits by outcome; None for lab's own pipeline (its releases are confirms)."""
    if (h.get("target") or "lab") == "lab":
        return None
    return {name: int(h.get(f"submit{name.capitalize()}") or 0)
            for name in ("ok", "failed", "indeterminate")}  # fmt: skip


def _json(raw: str | None) -> Any:
    return json.loads(raw) if raw else None


def _pending(raw: str | None) -> list[dict[str, Any]] | None:
    """A run's objectives before the scheduler has judged them."""
    if not raw:
        return None
    return [{"objective": o, "state": "pending", "value": None} for o in json.loads(raw)]


def _shape_text(h: dict[str, str]) -> str:
    from lab.runtime.shapes import describe

    raw = h.get("shape")
    return describe(json.loads(raw)) if raw else f"{float(h.get('yMinutes') or 0):,g}/min"


RUN_STATES = ("running", "completed", "stopped", "breached")
"""Every state a run can be in: `stopped` by a person, `breached` by its objectives."""
ENDED_EARLY = ("stopped", "breached")


def is_settled(state: str, processed: int, failed: int, enqueued: int) -> bool:
    """Every job that will ever be released has been processed or has failed: the run is
    completed, or stopped (or breached) with nothing of what it released still in flight. The
    one rule for every reader of a run (`RunView`, the CLI's progress bar, the notebook panel);
    `common.lua` applies it when it marks a run finished."""
    if state == "completed":
        return True
    return state in ENDED_EARLY and processed + failed >= enqueued


def status_call(k: Keys) -> tuple[dict[str, str], dict[str, Any]]:
    """The KEYS and ARGV of the status script, by name (`scripts.STATUS`)."""
    keys = {"active": k.active_run, "runs": k.runs, "workers": k.workers,
            "schedulers": k.schedulers, "paused": k.paused_queues,
            "head_ages": k.head_ages}  # fmt: skip
    args = {"runs": k.run_template, "processed_in": k.run_processed_in("%s"),
            "workers": k.worker_template, "window": RATE_WINDOW_S,
            "schedulers": k.scheduler_template, "released_in": k.run_released_in("%s")}  # fmt: skip
    return keys, args


class AsyncStatus:
    """`Overview.status()` for the API's event loop: the same script, keys and shape, one round
    trip on an asyncio Redis client."""

    def __init__(self, settings: Settings, client: Any):
        self.keys = Keys(settings.prefix)
        self._script = client.register_script(script_source("status"))

    async def read(self) -> dict[str, Any]:
        keys, args = status_call(self.keys)
        return shape_status(json.loads(await STATUS.call(lambda _name: self._script, keys, args)))


# What only the run's own record shows (GET /runs/{id}); status.lua leaves it out (a trace's
# shape can be large).
RECORD_ONLY = ("payload", "shape", "changes", "pauses")


def shape_status(raw: dict[str, Any]) -> dict[str, Any]:
    """The `/status` document from the status script's raw answer (pure, unit-tested)."""
    now_ms = int(raw["nowMs"])
    run = raw.get("run") or None
    workers = raw.get("workers") or []
    if isinstance(workers, dict):  # Lua's cjson encodes an empty table as {}
        workers = []
    out: dict[str, Any] = {
        "runId": None,
        "state": "idle",
        "xTotal": 0,
        "yMinutes": 0,
        "enqueued": 0,
        "processed": 0,
        "failed": 0,
        "running": False,
        "paused": False,
        "startedAt": None,
        "releasedAt": None,
        "stoppedAt": None,
        "finishedAt": None,
        "durationSeconds": None,
        "headAgeMs": None,
    }
    if run:
        out.update(RunView.from_hash(run, now_ms).__dict__)
        for field in RECORD_ONLY:  # left out by the script: shown as null they would mislead
            out.pop(field, None)
        window = int(raw.get("windowSeconds") or RATE_WINDOW_S)
        per_min = 60 / window
        out["rates"] = {
            "processedPerMinute": round(raw.get("processedInWindow", 0) * per_min, 1),
            "enqueuedPerMinute": round(raw.get("enqueuedInWindow", 0) * per_min, 1),
            "windowSeconds": window,
        }
        duration = out["durationSeconds"] or 0
        out["rates"]["averageProcessedPerMinute"] = (
            round(out["processed"] / duration * 60, 1) if duration > 0 else 0.0
        )
        ages = raw.get("headAges") or {}
        ages = headage.fresh(ages if isinstance(ages, dict) else {}, now_ms)
        # How long the run's oldest waiting job has waited; None when no leader measures it.
        out["headAgeMs"] = (
            ages.get("runAgeMs") if out["running"] and ages.get("run") == out["runId"] else None
        )
    else:
        out["rates"] = {
            "processedPerMinute": 0.0,
            "enqueuedPerMinute": 0.0,
            "windowSeconds": RATE_WINDOW_S,
            "averageProcessedPerMinute": 0.0,
        }
    out["workers"] = sorted(
        (beats.decode(beats.WORKER, w, now_ms) for w in workers), key=lambda w: w["id"] or ""
    )
    schedulers = raw.get("schedulers") or []
    if isinstance(schedulers, dict):
        schedulers = []
    out["schedulers"] = sorted(
        (beats.decode(beats.SCHEDULER, s, now_ms) for s in schedulers),
        key=lambda s: s["id"] or "",
    )
    paused = raw.get("pausedQueues") or []
    out["pausedQueues"] = sorted(paused) if isinstance(paused, list) else []
    out["serverTime"] = iso(now_ms)
    return out
