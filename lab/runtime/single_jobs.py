"""What is done to single jobs across the record, the broker and the store: publish a job's
current attempt, queue a failed one again, prune what ended long ago. The API's routes, bulk
actions, dead-letter replays and the delayed releaser all call these, so each is one operation
with one outcome wherever it starts."""

from __future__ import annotations

import time
from typing import Any

from lab.runtime.broker import PRIORITIES, Publisher, PublishError
from lab.runtime.jobs import JobConflict, JobNotFound, JobRecords
from lab.runtime.store import Store, unavailable


def prune(records: JobRecords, store: Store, older_than_s: float) -> dict[str, Any]:
    """Delete single jobs that ended more than `older_than_s` ago, records and documents.

    Each call removes at most a few thousand; the API calls it every minute, so a backlog
    drains without one call holding Redis for long."""
    cutoff = int((time.time() - older_than_s) * 1000)
    pruned = []
    for job_id in records.ended_before(cutoff):
        try:
            records.delete(job_id, ended_before_ms=cutoff)
            pruned.append(job_id)
        except (JobNotFound, JobConflict):
            continue  # deleted or retried meanwhile
    try:
        documents: int | str = store.delete_many(pruned)
    except Exception as exc:
        if not unavailable(exc):
            raise
        documents = f"not deleted, Elasticsearch: {exc}"
    return {"pruned": len(pruned), "documents": documents, "olderThanSeconds": older_than_s}


def publish_current(records: JobRecords, publisher: Publisher, job_id: str) -> None:
    """Publish the record's current attempt; a failure leaves the job failed, not queued."""
    out = records.message(job_id)
    try:
        publisher.publish(
            publisher.topology.single,
            out.job.to_json(),
            PRIORITIES.get(out.priority, PRIORITIES["normal"]),
        )
    except PublishError as exc:
        records.unqueue(job_id, out.job.attempt, f"could not be queued: {exc}")
        raise


def requeue(records: JobRecords, publisher: Publisher, job_id: str) -> None:
    """A failed or cancelled job back to `queued` with attempt + 1 and a fresh budget, then its
    message (`POST /jobs/{id}/retry`, a replayed dead letter, a bulk retry)."""
    records.retry(job_id)
    publish_current(records, publisher, job_id)


def submit(
    records: JobRecords,
    publisher: Publisher,
    kind: str,
    payload: dict[str, Any],
    attempts: int,
    run_at_ms: int = 0,
    priority: str = "normal",
) -> str:
    """A new job, as one outcome: its record with its message (or, delayed, with its entry in
    the delayed set), or no job at all. When the message cannot be published the record is
    deleted (its tombstone makes a message that reached the broker after all a no-op) and the
    `PublishError` is raised."""
    job_id, delayed = records.create(kind, payload, attempts, run_at_ms, priority)
    if delayed:
        return job_id
    try:
        publish_current(records, publisher, job_id)
    except PublishError:
        records.delete(job_id)
        raise
    return job_id
