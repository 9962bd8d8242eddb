"""Writing what a batch produced: one Elasticsearch bulk, then one Redis call that counts each
run's jobs exactly once and adds what the middleware counts. A batch that fails as a whole (a
document Elasticsearch cannot take in any form, a script error) is written again job by job, so
only the job at fault fails."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from lab.runtime import latency
from lab.runtime.batch import Outcome, apply_bulk, counts_by_run
from lab.runtime.middleware.hooks import Count
from lab.runtime.patience import Patience, Stopping
from lab.runtime.retry import Budget
from lab.runtime.seams import CountingSeam, DocumentStore

log = logging.getLogger("lab.runtime.worker")


class Recorder:
    def __init__(
        self,
        store: DocumentStore,
        counting: CountingSeam,
        patiently: Patience,
        counts: Callable[[Outcome], list[Count]] | None,
    ):
        self.store = store
        self.counting = counting
        self.patiently = patiently
        self.counts = counts

    def write(self, outcomes: list[Outcome], budget: Budget) -> tuple[int, int]:
        """The bulk write and the exactly-once count of what it wrote."""
        docs = [o.doc for o in outcomes if o.verdict == "pending" and o.doc is not None]
        result = self.patiently(lambda: self.store.bulk_upsert(docs), "Elasticsearch")
        apply_bulk(outcomes, result.failed, budget)
        return self._count(outcomes)

    def _count(self, outcomes: list[Outcome]) -> tuple[int, int]:
        extra: dict[str, dict[int, list[Any]]] = {}
        counts = self.counts  # None when no middleware counts: nothing to ask, job by job
        for o in outcomes if counts is not None else ():
            job = o.job
            if counts is not None and job is not None and job.runId and job.seq is not None:
                found = counts(o)
                if found:
                    extra.setdefault(job.runId, {})[job.seq] = found
        timings = timings_of(outcomes)
        call_id = uuid.uuid4().hex  # one name for every try: a retried call counts once
        return self.patiently(
            lambda: self.counting.record(counts_by_run(outcomes), extra, timings, call_id),
            "Redis",
        )

    def write_isolating(self, outcomes: list[Outcome], budget: Budget) -> tuple[int, int]:
        """`write`, and when the batch fails as a whole, each job again on its own."""
        try:
            return self.write(outcomes, budget)
        except Stopping:
            raise
        except Exception as exc:
            if len(outcomes) > 1:
                log.warning("a batch of %d failed (%r); writing its jobs one by one",
                            len(outcomes), exc)  # fmt: skip
        done = failed = 0
        for outcome in outcomes:
            try:
                new_done, new_failed = self.write([outcome], budget)
            except Stopping:
                raise
            except Exception as exc:
                log.warning("job %s cannot be written: %r", outcome.job, exc)
                if outcome.verdict in ("pending", "written") and outcome.job is not None:
                    outcome.fail(f"internal error: {exc!r}", budget)
                new_done, new_failed = self._count_dead_only(outcome)
            done += new_done
            failed += new_failed
        return done, failed

    def _count_dead_only(self, outcome: Outcome) -> tuple[int, int]:
        """A run's job that died because it could not be written still counts as failed."""
        if outcome.verdict != "dead":
            return 0, 0
        try:
            return self._count([outcome])
        except Stopping:
            raise
        except Exception as exc:  # noqa: BLE001 - the dead letter itself still goes out
            log.warning("could not count %s as failed: %r", outcome.job, exc)
            return 0, 0


def timings_of(outcomes: list[Outcome]) -> dict[str, latency.RunTimings]:
    """Where each ended run job's time went, per run (`latency.RunTimings`): what the counting
    script adds up, once per job counted the first time."""
    finished = time.time() * 1000
    window = int(finished // 1000) // latency.WINDOW_S
    out: dict[str, latency.RunTimings] = {}
    for o in outcomes:
        job = o.job
        if job is None or job.runId is None or job.seq is None:
            continue
        if o.verdict not in ("written", "dead"):
            continue  # a retry or a requeue: the job has not ended
        run = out.get(job.runId)
        if run is None:
            run = out[job.runId] = latency.RunTimings(window, [], finished)
        kinds = run.kinds
        if job.kind not in kinds:
            kinds.append(job.kind)
        started = o.started_ms or finished  # dead before it ran: no service time
        kind = kinds.index(job.kind) + 1
        run.jobs.append((job.seq, kind, job.createdAt, job.released_at, started, o.ended_ms))
    return out
