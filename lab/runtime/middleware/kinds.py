"""Jobs processed per kind in each run (`<prefix>:run:<id>:kinds`, a hash kind → count).

The worked example of a middleware that counts: `counts` hands the batch's one Redis call what
to add, and the script adds it only for a job counted for the first time, so the figures stay
exact under redelivery. Install it with one line in `default_stack` (or a worker's own stack).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.runtime.middleware.hooks import Count, Middleware

if TYPE_CHECKING:
    from lab.runtime.batch import Outcome
    from lab.runtime.seams import WorkerSeam


class KindCounts(Middleware):
    def counts(self, worker: WorkerSeam, outcome: Outcome) -> list[Count]:
        job = outcome.job
        if job is None or job.runId is None or outcome.verdict != "written":
            return []
        return [Count(worker.stores.counting.keys.run_kinds(job.runId), job.kind)]
