"""Where each run job's time went: queue wait, service and end to end, counted into the run's
histograms (`lab.runtime.latency`) and the lab's lifetime ones (/metrics) by the one Redis call
that counts the job, and only when it is counted for the first time, so a redelivery adds
nothing and every worker's figures add up: a run's end-to-end count is its processed + failed.

The attempt that ends a job is the one measured: its queue wait (released, or due again after a
retry's delay, → started), its service (started → written, or failed for good), and the job's
end to end (first released → then). A batch's jobs share the batch's bulk write in their service.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lab.runtime import latency
from lab.runtime.middleware import Count, Middleware

if TYPE_CHECKING:
    from lab.runtime.batch import Outcome
    from lab.runtime.worker import Worker


class Latency(Middleware):
    def counts(self, worker: Worker, outcome: Outcome) -> list[Count]:
        job = outcome.job
        if job is None or job.runId is None or outcome.verdict not in ("written", "dead"):
            return []
        finished = time.time() * 1000
        started = outcome.started_ms or finished  # dead before it ran: no service time
        measured = {
            "queueWait": started - job.released_at if job.released_at else None,
            "service": finished - started,
            "endToEnd": finished - job.createdAt if job.createdAt else None,
        }
        keys = worker.state.keys
        window = int(finished // 1000) // latency.WINDOW_S
        out = []
        for metric, ms in measured.items():
            if ms is None:
                continue
            short = latency.SHORT[metric]
            out += [
                Count(keys.run_latency(job.runId),
                      latency.field_name(metric, job.kind, window, latency.bucket_of(ms))),
                Count(keys.latency, f"{short}|{job.kind}|{latency.prometheus_bucket(ms)}"),
                Count(keys.latency, f"{short}|{job.kind}|sum", max(0, int(ms * 1000))),
            ]  # fmt: skip
        return out
