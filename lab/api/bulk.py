"""Bulk actions on single jobs: `POST /jobs/bulk`.

    {"action": "retry" | "cancel" | "delete",
     "filter": {"state": ..., "kind": ..., "ids": [...], "q": "..."},
     "dryRun": false, "limit": 5000}

The answer says how many jobs the filter `matched`, how many of those the action applies to
(`eligible`: retry takes failed and cancelled jobs, cancel queued and active ones, delete any
but a running one), what it `changed` and what it left (`unchanged`, by reason), and how many
eligible jobs are left for another call (`remaining`). One call changes at most `limit` jobs at
`LAB_BULK_RATE` a second, so a bulk retry of a hundred thousand failed jobs cannot flood the
queue, and one API process runs one bulk action at a time (a second concurrent call gets 429
with `Retry-After`, so bulk calls cannot take every request thread); calling again goes on where
it stopped, and a call repeated after it finished changes
nothing (every job it changed is no longer eligible). A run's jobs have no record: they are read
only, and their dead letters are replayed with `POST /dead-letters/replay`.

Destruction needs intent: an empty filter matches every job, so a call that would change
something with one must say `"all": true` (a dry run never needs it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from itertools import islice
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lab.api import targeted
from lab.api.responses import error, invalid
from lab.api.services import Lab, Services
from lab.runtime.broker import PublishError
from lab.runtime.jobs import JobConflict, JobNotFound, JobState
from lab.runtime.messages import ID_PATTERN, KIND_PATTERN
from lab.targets.bullmq_jobs import SubmitError

MAX_IDS = 10_000
MAX_PER_CALL = 5_000
MAX_SEARCHED = 100_000  # jobs a `q` filter may match in one call
ELIGIBLE = {
    "retry": {"failed", "cancelled"},
    "cancel": {"queued", "active"},
    "delete": {"queued", "completed", "failed", "cancelled"},
}

JobId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class BulkFilter(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    state: JobState | None = None
    kind: Annotated[str | None, Field(pattern=KIND_PATTERN)] = None
    ids: list[JobId] | None = Field(default=None, max_length=MAX_IDS)
    q: Annotated[str | None, Field(min_length=1, max_length=500)] = Field(
        default=None, description="what GET /jobs?q= finds (id, kind, payload, error, log)"
    )


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    action: Literal["retry", "cancel", "delete"]
    filter: BulkFilter = Field(default_factory=BulkFilter)
    dryRun: bool = False
    limit: int = Field(default=MAX_PER_CALL, ge=1, le=MAX_PER_CALL)
    all: bool = Field(
        default=False, description="needed to act with an empty filter, which matches every job"
    )

    def unfiltered(self) -> bool:
        return all(value is None for value in self.filter.model_dump().values())


def paced(items: Iterator[str], per_second: float) -> Iterator[str]:
    """`items` no faster than `per_second` (measured from the start, so no drift)."""
    started = time.monotonic()
    for n, item in enumerate(items):
        due = started + n / per_second
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield item


router = APIRouter(tags=["jobs"])


def matching(lab: Services, f: BulkFilter) -> Iterator[tuple[str, str | None]]:
    """(id, state) of every single job the filter matches."""
    records, search = lab.records, lab.search
    if f.ids is not None:
        found: Iterator[str] = iter(dict.fromkeys(f.ids))
    elif f.q is not None:
        found = iter(search.all_ids(f.q, f.state, f.kind, MAX_SEARCHED))
    else:
        found = records.ids(f.state, f.kind)
    while chunk := list(islice(found, 500)):
        for job_id, (state, kind) in records.states(chunk).items():
            if state is None or (f.state and state != f.state) or (f.kind and kind != f.kind):
                continue  # gone meanwhile, or not what the filter asks for
            yield job_id, state


def apply(lab: Services, action: str, job_id: str) -> str:
    try:
        if action == "retry":
            targeted.requeue(lab, job_id)
        elif action == "cancel":
            targeted.cancel(lab, job_id)
        else:
            targeted.delete(lab, job_id)
            lab.store.delete_many([job_id])
    except JobConflict as exc:
        return f"now {exc.state}"
    except JobNotFound:
        return "gone"
    except PublishError:
        return "not queued: RabbitMQ refused it"
    except SubmitError:
        return "not queued: BullMQ's Redis refused it"
    return "changed"


@router.post("/jobs/bulk", operation_id="bulkJobs")
def bulk(lab: Lab, body: BulkRequest) -> Any:
    """Retry, cancel or delete every single job a filter matches (see the module's doc);
    `dryRun` counts without changing anything."""
    bulk_rate, running = lab.settings.bulk_rate, lab.bulk_running
    if body.unfiltered() and not body.dryRun and not body.all:
        return invalid(
            "filter",
            "is empty, which matches every job; give a state, kind, ids or q, "
            'or say "all": true to act on every job',
        )
    if body.dryRun:
        return count(lab, body)
    if not running.acquire(blocking=False):
        wait_s = math.ceil(body.limit / bulk_rate)
        return error(
            429,
            "another bulk action is running in this API process; try again shortly",
            headers={"Retry-After": str(max(1, min(wait_s, 60)))},
        )
    try:
        return act(lab, body)
    finally:
        running.release()


def survey(lab: Services, body: BulkRequest) -> tuple[dict[str, Any], list[str]]:
    """The answer's counts so far, and the ids the action applies to."""
    matched = 0
    eligible: list[str] = []
    for job_id, state in matching(lab, body.filter):
        matched += 1
        if state in ELIGIBLE[body.action]:
            eligible.append(job_id)
    answer: dict[str, Any] = {
        "action": body.action,
        "dryRun": body.dryRun,
        "matched": matched,
        "eligible": len(eligible),
        "changed": 0,
        "unchanged": {},
        "remaining": len(eligible),
    }
    return answer, eligible


def count(lab: Services, body: BulkRequest) -> dict[str, Any]:
    return survey(lab, body)[0]


def act(lab: Services, body: BulkRequest) -> dict[str, Any]:
    bulk_rate = lab.settings.bulk_rate
    answer, eligible = survey(lab, body)
    batch = eligible[: body.limit]
    for job_id in paced(iter(batch), bulk_rate):
        outcome = apply(lab, body.action, job_id)
        if outcome == "changed":
            answer["changed"] += 1
        else:
            answer["unchanged"][outcome] = answer["unchanged"].get(outcome, 0) + 1
    answer["remaining"] = len(eligible) - len(batch)
    return answer
