"""The admin page (`GET /admin`): the queues, the workers and the single jobs, live.

The page is one server-rendered HTML file with a little plain JavaScript, no build step: it loads
`/admin/overview` (counts per state, queue depths, workers) and `/jobs`, then follows `/events`
(the lab's one event stream) and redraws what an event touches.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from lab.api.responses import error
from lab.api.services import Lab
from lab.runtime import headage, latency
from lab.runtime.broker import PublishError
from lab.runtime.handlers import known_kinds
from lab.runtime.jobs import STATES

ASSETS = {"admin.js": "text/javascript", "admin.css": "text/css"}
LATENCY_SHOWN = ("count", "p50Ms", "p99Ms", "maxMs")


@cache
def _page() -> str:
    return _static("admin.html")


@cache
def _static(name: str) -> str:
    return (resources.files("lab.api") / "static" / name).read_text()


router = APIRouter(tags=["admin"])


@router.get("/admin", response_class=HTMLResponse, include_in_schema=False)
def page(lab: Lab) -> HTMLResponse:
    kinds = "".join(f"<option>{html.escape(k)}</option>" for k in known_kinds())
    states = "".join(f"<option>{s}</option>" for s in STATES)
    body = (
        _page()
        .replace("{{queue}}", html.escape(lab.settings.queue))
        .replace("{{kinds}}", kinds)
        .replace("{{states}}", states)
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/admin/static/{name}", include_in_schema=False)
def asset(name: str) -> Response:
    """The page's script and styles: files, so its CSP can refuse every inline one. They
    hold no data, so they need no token (see `lab.api.access.OPEN_PREFIXES`)."""
    if name not in ASSETS:
        return error(404, f"no admin file {name[:60]!r}")
    return Response(_static(name), media_type=ASSETS[name],
                    headers={"Cache-Control": "no-cache"})  # fmt: skip


@router.get("/admin/overview")
def overview(lab: Lab) -> dict[str, Any]:
    """Counts per job state, queue depths and head ages, the run with its job latency, and
    live workers, for the admin page."""
    stores, records, publisher = lab.stores, lab.records, lab.publisher
    topology = publisher.topology
    counts: dict[str, Any] = records.counts()
    counts["deadLettered"] = stores.counting.dead_lettered()
    queues: list[dict[str, Any]] = []
    queues_error = None
    try:
        queues = publisher.depths([*topology.consumed, topology.dead, *topology.retries])
    except PublishError as exc:
        queues_error = str(exc)
    paused = stores.pauses.paused()
    ages = headage.per_queue(stores.head_ages.read())
    status = stores.overview.status()
    measured = stores.runs.latency(status["runId"], windows=False) if status["runId"] else None
    return {
        "counts": counts,
        "queues": [
            {
                **q,
                "paused": q["name"] in paused,
                "pausable": q["name"] in topology.consumed,
                "headAgeMs": ages.get(str(q["name"])),
            }
            for q in queues
        ],  # fmt: skip
        "run": {
            **{
                k: status.get(k)
                for k in (
                    "runId",
                    "state",
                    "running",
                    "paused",
                    "shapeText",
                    "yMinutes",
                    "slo",
                    "headAgeMs",
                )
            },
            # The run's job latency so far, in ms: where each job's time went.
            "latency": {
                metric: {q: (measured or {}).get(metric, {}).get(q) for q in LATENCY_SHOWN}
                for metric in latency.METRICS
            },
        },  # fmt: skip
        "queuesError": queues_error,
        "workers": status["workers"],
        "kinds": known_kinds(),
    }
