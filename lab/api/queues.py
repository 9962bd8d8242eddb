"""Queues over HTTP: pause and resume what workers take, purge what waits, and the same for
the active run's release.

    GET  /queues                       the lab's queues: ready, consumers, paused, head age
    POST /queues/{name}/pause|resume   workers take nothing new from it (in-flight jobs finish)
    POST /queues/{name}/purge          delete what waits in it, with the count
    POST /run/pause, /run/resume       the scheduler releases nothing of the active run

A pause is kept in Redis, so it outlives every process; a worker applies it within one
heartbeat (`LAB_HEARTBEAT_S`). `/status` shows `paused` (the run) and `pausedQueues`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from lab.api.responses import error
from lab.api.services import Lab, Services
from lab.runtime import headage
from lab.runtime.broker import PublishError
from lab.runtime.stores import NoActiveRun

router = APIRouter(tags=["queues"])


def unknown(lab: Services, name: str) -> Any:
    pausable = lab.publisher.topology.consumed
    return error(404, f"no queue {name[:200]!r} to act on; the lab's are {', '.join(pausable)}")


@router.get("/queues", operation_id="listQueues")
def queues(lab: Lab) -> Any:
    """Every queue of the lab, with what is ready, its consumers, whether it is paused, and how
    long its oldest waiting job has waited (`headAgeMs`: consumed queues, while a scheduler
    leader measures it; null otherwise)."""
    topology = lab.publisher.topology
    try:
        depths = lab.publisher.depths([*topology.consumed, topology.dead, *topology.retries])
    except PublishError as exc:
        return error(503, str(exc))
    paused = lab.stores.pauses.paused()
    ages = headage.per_queue(lab.stores.head_ages.read())
    return {
        "queues": [
            {**d, "paused": d["name"] in paused, "headAgeMs": ages.get(str(d["name"]))}
            for d in depths
        ]
    }


def pause(lab: Services, name: str, paused: bool) -> Any:
    if name not in lab.publisher.topology.consumed:
        return unknown(lab, name)
    changed_now = lab.stores.pauses.pause_queue(name, paused)
    lab.changed()
    return {"queue": name, "paused": paused, "changed": changed_now}


@router.post("/queues/{name}/pause", operation_id="pauseQueue")
def pause_queue(name: str, lab: Lab) -> Any:
    """Workers take no new message from this queue; what they hold finishes and is acked."""
    return pause(lab, name, True)


@router.post("/queues/{name}/resume", operation_id="resumeQueue")
def resume_queue(name: str, lab: Lab) -> Any:
    """Workers consume this queue again, with the same prefetch (within one heartbeat)."""
    return pause(lab, name, False)


@router.post("/queues/{name}/purge", operation_id="purgeQueue")
def purge_queue(name: str, lab: Lab) -> Any:
    """Delete every message waiting in the queue (not those workers hold); answers the
    count. Refused while a run is being released: its jobs would never be counted."""
    if name not in lab.publisher.topology.consumed:
        return unknown(lab, name)
    if name == lab.publisher.topology.queue and lab.stores.runs.active_id():
        return error(409, "a run is active; stop it before purging its queue")
    try:
        return {"queue": name, "purged": lab.publisher.purge(name)}
    except PublishError as exc:
        return error(503, str(exc))


def pause_run(lab: Services, paused: bool) -> Any:
    try:
        run_id, changed_now = lab.stores.runs.pause(paused)
    except NoActiveRun as exc:
        return error(409, str(exc))
    lab.changed()
    return {"runId": run_id, "paused": paused, "changed": changed_now}


@router.post("/run/pause", operation_id="pauseRun")
def pause_run_route(lab: Lab) -> Any:
    """The scheduler releases nothing more of the active run until it is resumed; jobs
    already queued still run. The shape's clock stops with it: after a resume the release goes
    on where the shape stood, with no burst for the time it was paused."""
    return pause_run(lab, True)


@router.post("/run/resume", operation_id="resumeRun")
def resume_run_route(lab: Lab) -> Any:
    """The scheduler releases the active run again, from where its shape stood at the pause."""
    return pause_run(lab, False)
