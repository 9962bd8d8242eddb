"""Paused queues: a pause holds from the moment `POST /queues/{name}/pause` answered.

Two parts. Each heartbeat reads the paused queues and has the worker stop (or start again)
consuming them, so the broker stops handing it their messages. And before anything of a
delivery starts, the pause is checked in Redis: deliveries already in hand when the pause
answered go back to their queue unstarted ("requeue"). Single jobs are checked again inside
`job_begin.lua`, atomically with their move to `active`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.runtime.middleware.hooks import Decision, Middleware

if TYPE_CHECKING:
    from lab.runtime.batch import Delivery
    from lab.runtime.seams import WorkerSeam


class Pause(Middleware):
    def before_process(self, worker: WorkerSeam, batch: list[Delivery]) -> Decision:
        queue = batch[0].queue
        if worker.patiently(lambda: worker.stores.pauses.is_paused(queue), "Redis"):
            return "requeue"
        return None

    def on_heartbeat(self, worker: WorkerSeam) -> dict[str, Any]:
        worker.follow_pauses(worker.stores.pauses.paused())
        return {"paused": sorted(worker.paused & set(worker.topology.consumed))}
