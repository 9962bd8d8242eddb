"""Runs over HTTP: start and stop one, the shared `/status`, run history and timelines.

POST /run {x, y}        start a run of x jobs at y per minute (409 while one runs)
POST /stop              stop releasing the active run; queued jobs still finish
GET  /status            the active (or latest) run, rates and live workers (one read)
GET  /runs[/{id}[/timeline]], GET /history
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from lab.api.responses import error
from lab.api.services import Lab, Services
from lab.runtime.messages import is_id
from lab.runtime.state import MAX_JOBS, NoActiveRun, RunConflict

# One job per 10 minutes at the slowest (slower runs never look alive), a million a second at
# the fastest (far past what one queue takes).
MIN_RATE_PER_MINUTE = 0.1
MAX_RATE_PER_MINUTE = 60_000_000

router = APIRouter(tags=["runs"])


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    x: int = Field(gt=0, le=MAX_JOBS, description="how many jobs the run releases")
    y: float = Field(
        ge=MIN_RATE_PER_MINUTE,
        le=MAX_RATE_PER_MINUTE,
        allow_inf_nan=False,
        description=f"jobs per minute, from {MIN_RATE_PER_MINUTE} to {MAX_RATE_PER_MINUTE}",
    )


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
    """Start a run of `x` jobs released at `y` per minute (409 while another is running)."""
    try:
        run_id = lab.state.start_run(body.x, body.y)
    except RunConflict as exc:
        return error(409, str(exc), runId=exc.run_id)
    return changed(lab, {"runId": run_id, **lab.state.status()})


@router.post("/stop")
def stop_run(lab: Lab) -> Any:
    """Stop releasing the active run; jobs already queued still finish and are counted."""
    try:
        run_id = lab.state.stop_run()
    except NoActiveRun as exc:
        return error(409, str(exc))
    return changed(lab, {"stopped": run_id, **lab.state.status()})


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
    return [r.__dict__ for r in lab.state.runs(limit)]


@router.get("/runs/{run_id}", operation_id="getRun")
def run(run_id: str, lab: Lab) -> Any:
    found = lab.state.run(run_id) if is_id(run_id) else None
    return found.__dict__ if found else error(404, f"no run {run_id[:200]!r}")


@router.get("/runs/{run_id}/timeline")
def timeline(run_id: str, lab: Lab) -> Any:
    """The run's released, processed and failed jobs per second, from its start to its end
    (or now); kept in Redis, so it is the same after any process restarts."""
    found = lab.state.timeline(run_id) if is_id(run_id) else None
    return found if found else error(404, f"no run {run_id[:200]!r}")


@router.get("/history")
def recent_history(
    lab: Lab, seconds: Annotated[int, Query(ge=10, le=7 * 24 * 3600)] = 3600
) -> dict[str, Any]:
    """Released, processed and failed jobs per 10-second bucket over the last `seconds`,
    whatever the runs (at most `LAB_HISTORY_S`, default an hour)."""
    return lab.state.recent(seconds)
