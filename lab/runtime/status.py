"""What a run and the lab look like from outside: `RunView` (a run record as the API, the CLI
and notebooks show it) and the `/status` document, read in one script call by `State.status`
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
        )

    @property
    def settled(self) -> bool:
        return is_settled(self.state, self.processed, self.failed, self.enqueued)


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
    """`State.status()` for the API's event loop: the same script, keys and shape, one round
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
