"""Single jobs' leases: each heartbeat renews the lease of every attempt this worker runs.

An attempt is owned through a lease (`lab.runtime.jobs`, `job_begin.lua`); a worker that stops
renewing (killed, frozen, cut off) loses it after `LAB_HEARTBEAT_TTL_S`, and another delivery of
the attempt may then take over. Progress steps renew it too, so a job that reports often keeps it
between heartbeats.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.runtime.middleware.hooks import Middleware

if TYPE_CHECKING:
    from lab.runtime.seams import WorkerSeam


class Leases(Middleware):
    def on_heartbeat(self, worker: WorkerSeam) -> dict[str, Any]:
        running = worker.active_jobs.copy()
        worker.records.renew({job_id: lease for job_id, lease in running.items() if lease})
        return {"jobs": sorted(running)}
