"""Runs over HTTP: start, change and stop one, the shared `/status`, run history and timelines.

POST /run {x, y | shape, kind, payload, seed}
                        start a run of x jobs of a kind, at y per minute or following a shape
                        (409 while one runs)
PATCH /run {y | shape}  the active run follows a new rate or shape from now on
POST /stop              stop releasing the active run; queued jobs still finish
GET  /status            the active (or latest) run, rates and live workers (one read)
GET  /runs[/{id}[/timeline|/latency]], GET /history
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from lab import targets
from lab.api.kinds import checked, checked_task
from lab.api.responses import error, invalid
from lab.api.services import Lab, Services
from lab.runtime import shapes, slo
from lab.runtime.messages import is_id
from lab.runtime.stores.runs import (
    MAX_JOBS,
    NoActiveRun,
    RunConflict,
    ShapeHistoryFull,
    ShapeRace,
)
from lab.targets import usertask, verdict

# One job per 10 minutes at the slowest (slower runs never look alive), a million a second at
# the fastest (far past what one queue takes); every rate of a shape has the same bounds.
MIN_RATE_PER_MINUTE = shapes.MIN_RATE
MAX_RATE_PER_MINUTE = shapes.MAX_RATE
MAX_SEED = 2**63 - 1

router = APIRouter(tags=["runs"])


RATE = Field(
    default=None,
    ge=MIN_RATE_PER_MINUTE,
    le=MAX_RATE_PER_MINUTE,
    allow_inf_nan=False,
    description=f"jobs per minute, from {MIN_RATE_PER_MINUTE} to {MAX_RATE_PER_MINUTE:,}; the "
    'same as shape {"type": "constant", "y": y}',
)
SHAPE = Field(
    default=None,
    description="Y over time (lab/runtime/shapes.py): constant, ramp, steps, spike, sine, "
    "poisson or trace; give y or shape",
    json_schema_extra={"examples": [{"type": "ramp", "from": 600, "to": 12000, "seconds": 120}]},
)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    x: int = Field(gt=0, le=MAX_JOBS, description="how many jobs the run releases")
    y: float | None = RATE
    shape: dict[str, Any] | None = SHAPE
    kind: str = Field(
        default="index", max_length=64,
        description="the job kind (GET /kinds lists them); `task` on a target other than lab: "
        'your own task, the payload {"task": "dotted.name", "args": [...], "kwargs": {...}}',
    )  # fmt: skip
    payload: dict[str, Any] = Field(
        default_factory=dict, description="every job's payload, checked by the kind's fields"
    )
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED,
        description="seeds the run's randomness (Poisson arrivals, the synthetic kind); "
        "the same seed repeats the run exactly. Default: a new one, recorded in the run",
    )  # fmt: skip
    slo: list[Any] | None = Field(
        default=None,
        description="objectives judged while the run runs (lab/runtime/slo.py), e.g. "
        '[{"metric": "endToEnd.p99", "maxMs": 2000, "windowSeconds": 30}]',
    )
    abortOnBreach: bool = Field(  # noqa: N815 - the API's JSON names
        default=False, description="a breached objective stops the run: it ends `breached`"
    )
    sloGraceSeconds: float | None = Field(  # noqa: N815
        default=None, ge=0, le=86_400, allow_inf_nan=False,
        description="warm-up before objectives are judged (default: each one's window)",
    )  # fmt: skip
    target: str = Field(
        default=targets.DEFAULT, max_length=32,
        description="the system under test: lab (its own pipeline), celery, dramatiq, rq, arq, "
        "bullmq (GET /targets lists them; its workers run with lab up --target NAME)",
    )  # fmt: skip


class RunChange(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    y: float | None = RATE
    shape: dict[str, Any] | None = SHAPE


def shape_of(y: float | None, shape: dict[str, Any] | None, seed: int) -> Any:
    """The run's shape as JSON (`y` means a constant one), or the 422 naming what is wrong."""
    if (y is None) == (shape is None):
        return invalid("y", "give y or shape (not both)")
    spec = shape if shape is not None else {"type": "constant", "y": y}
    try:
        return shapes.parse(spec, seed).as_json()
    except shapes.ShapeError as exc:
        return invalid(exc.field, str(exc).split(": ", 1)[1])


def changed(lab: Services, answer: dict[str, Any]) -> dict[str, Any]:
    lab.changed()  # this process's next /status shows the change
    return answer


@router.post(
    "/run",
    status_code=201,
    operation_id="startRun",
    responses={
        201: {
            "description": "the run, started",
            "links": {
                "GetRun": {
                    "operationId": "getRun",
                    "parameters": {"run_id": "$response.body#/runId"},
                }
            },
        }
    },
)
def start_run(body: RunRequest, lab: Lab) -> Any:
    """Start a run of `x` jobs of `kind` (default `index`), released at `y` per minute or
    following `shape` (409 while another is running). The payload is checked by the kind at
    the door (422 naming the field) and carried by every job's message."""
    seed = body.seed if body.seed is not None else secrets.randbelow(2**31)
    shape = shape_of(body.y, body.shape, seed)
    if isinstance(shape, JSONResponse):
        return shape
    own_task = body.kind == usertask.KIND and body.target != targets.DEFAULT
    handler = checked_task(body.payload) if own_task else checked(body.kind, body.payload)
    if isinstance(handler, JSONResponse):
        return handler
    try:
        cls = targets.target_class(body.target)
    except targets.TargetError as exc:
        return invalid("target", exc.args[0].split(": ", 1)[-1])
    missing = cls.missing()
    if missing:
        return invalid("target", missing)
    objectives = None
    if body.slo is not None:
        try:
            objectives = [o.as_json() for o in slo.parse(body.slo)]
        except slo.SloError as exc:
            return invalid(exc.field, str(exc).split(": ", 1)[1])
    payload = dict(handler if isinstance(handler, dict) else body.payload)
    if not isinstance(handler, dict) and any(f.name == "seed" for f in handler.fields or ()):
        payload.setdefault("seed", seed)  # a kind that draws at random draws from the run's seed
    try:
        run_id = lab.stores.runs.start(
            body.x, shape=shape, kind=body.kind, payload=payload, seed=seed, slo=objectives,
            abort_on_breach=body.abortOnBreach, slo_grace_s=body.sloGraceSeconds,
            target=body.target,
        )  # fmt: skip
    except RunConflict as exc:
        return error(409, str(exc), runId=exc.run_id)
    return changed(lab, {"runId": run_id, **lab.stores.overview.status()})


@router.patch("/run")
def change_run(body: RunChange, lab: Lab) -> Any:
    """The active run follows a new rate (`y`) or `shape` from now on, going on from the jobs
    its old shape had released; the change is kept in the run's record (`changes`)."""
    run_id = lab.stores.runs.active_id()
    if run_id is None:
        return error(409, str(NoActiveRun()))
    run = lab.stores.runs.get(run_id)
    shape = shape_of(body.y, body.shape, run.seed or 0 if run else 0)
    if isinstance(shape, JSONResponse):
        return shape
    try:
        base = lab.stores.runs.reshape(run_id, shape)
    except NoActiveRun as exc:
        return error(409, str(exc))
    except ShapeRace as exc:
        return error(409, str(exc))
    except ShapeHistoryFull as exc:
        return invalid("shape", str(exc))
    return changed(
        lab, {"runId": run_id, "shape": shape, "from": base, **lab.stores.overview.status()}
    )


@router.post("/stop")
def stop_run(lab: Lab) -> Any:
    """Stop releasing the active run; jobs already queued still finish and are counted."""
    try:
        run_id = lab.stores.runs.stop()
    except NoActiveRun as exc:
        return error(409, str(exc))
    return changed(lab, {"stopped": run_id, **lab.stores.overview.status()})


@router.get("/status", response_model=None)
async def status(request: Request) -> Response:
    """The active (or latest) run's counters, rates per minute and live workers, from one
    atomic read shared by every caller of this API process; `ageMs` says how old it is
    (at most `LAB_STATUS_MAX_AGE_MS` plus the read)."""
    snapshot = await request.app.state.snapshot.get()
    return Response(snapshot.answer(), media_type="application/json")


@router.get("/runs")
def runs(lab: Lab, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
    """Run history, newest first."""
    return [r.__dict__ for r in lab.stores.runs.newest(limit)]


@router.get("/runs/{run_id}", operation_id="getRun")
def run(run_id: str, lab: Lab) -> Any:
    """One run's whole record: its counters and state, its kind, payload and seed, every shape
    it followed (`changes`), its pauses and its objectives (docs/reference/json.md)."""
    found = lab.stores.runs.get(run_id) if is_id(run_id) else None
    return found.__dict__ if found else error(404, f"no run {run_id[:200]!r}")


@router.get("/runs/{run_id}/timeline")
def timeline(run_id: str, lab: Lab) -> Any:
    """The run's released, processed and failed jobs per second, from its start to its end
    (or now); kept in Redis, so it is the same after any process restarts."""
    found = lab.stores.runs.timeline(run_id) if is_id(run_id) else None
    return found if found else error(404, f"no run {run_id[:200]!r}")


@router.get("/runs/{run_id}/latency")
def run_latency(run_id: str, lab: Lab, windows: Annotated[bool, Query()] = True) -> Any:
    """Where the run's time went, in ms: queue wait (released → started), service (started →
    finished) and end to end (first released → finished or dead-lettered), each with count,
    mean, p50, p90, p95, p99, p99.9 and max, overall, per kind and per 10-second window
    (`windows=false` leaves those out); from histograms that merge every worker's exactly."""
    found = lab.stores.runs.latency(run_id, windows) if is_id(run_id) else None
    return found if found else error(404, f"no run {run_id[:200]!r}")


@router.get("/runs/{run_id}/verdict")
def run_verdict(run_id: str, lab: Lab) -> Any:
    """The run's delivery verdict now: released, submits ok / failed / indeterminate,
    processed, failed, lost (submitted and never ended), duplicated (a document written more
    than once), executed more than once, unexpected; `clean` when none was lost, duplicated or
    unexpected. Final once the run has drained (`lab run verdict --drain`)."""
    found = verdict.read(lab.stores, lab.store, run_id) if is_id(run_id) else None
    return found if found else error(404, f"no run {run_id[:200]!r}")


@router.get("/targets")
def list_targets() -> Any:
    """The systems a run can drive (`target` of POST /run), and what each lacks here."""
    return [targets.describe(name) for name in targets.names()]


@router.get("/history")
def recent_history(
    lab: Lab, seconds: Annotated[int, Query(ge=10, le=7 * 24 * 3600)] = 3600
) -> dict[str, Any]:
    """Released, processed and failed jobs per 10-second bucket over the last `seconds`,
    whatever the runs (at most `LAB_HISTORY_S`, default an hour)."""
    return lab.stores.overview.recent(seconds)
