"""Single jobs: their records in Redis, and the progress a running one reports.

A job submitted with `POST /jobs` gets a record (a hash, a log list and its own event stream) before
its message is published. Every change of state is one Lua script (`lab/runtime/lua/job_*.lua`) that
checks the state it expects, so a cancel racing a start, a retry racing a stale message or a delete
racing a delivery each have exactly one outcome:

    queued → active → completed | failed | cancelled        (retry: → queued, attempt + 1)

The worker asks `begin` before it runs a job without a runId: a cancelled, deleted or superseded
job is skipped, a message nobody recorded (published outside the API) runs as a plain job. That
side, what a worker does to an attempt's record, is `lab.runtime.attempts`; this module is the
API's side and the states every reader names.
"""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from lab.runtime.attempts import AttemptRecords
from lab.runtime.jobviews import view
from lab.runtime.messages import MAX_ATTEMPT, Job
from lab.runtime.scripts import JOB_CANCEL, JOB_CREATE, JOB_DELETE, JOB_DUE, JOB_RETRY

JobState = Literal["queued", "active", "completed", "failed", "cancelled"]
STATES: tuple[str, ...] = get_args(JobState)  # the one list: API models, CLI, metrics, admin
TERMINAL = frozenset({"completed", "failed", "cancelled"})
TOMBSTONE_TTL_S = 7 * 24 * 3600
MAX_ATTEMPTS = 20
SCAN_LIMIT = 5000  # records a filtered listing looks at per request before handing back a cursor


class JobNotFound(LookupError):
    def __init__(self, job_id: str):
        super().__init__(f"no job {job_id!r}")
        self.job_id = job_id


class JobConflict(RuntimeError):
    """The job is in a state that does not allow the action; the message says which."""

    def __init__(self, message: str, state: str):
        super().__init__(message)
        self.state = state


def new_job_id() -> str:
    """Ids sort by creation time (the listing relies on it): `job-20261123T101500123-3f9a2c`."""
    now = datetime.now(UTC)
    return f"job-{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Outgoing:
    """A single job's message and the `priority` it is published with (a record written before
    priorities has none: `normal`)."""

    job: Job
    priority: str


class JobRecords(AttemptRecords):
    """Single-job records of one lab (one key prefix): a store of its own (keys `job:<id>`,
    `:log`, `:events`, `:deleted`, `jobs`, `jobs:<state>`, `delayed-jobs`, `promoting-jobs`).
    The API's side is here; the worker's side (begin, progress, renew, finish) is inherited from
    `AttemptRecords`."""

    # --- the API's side -----------------------------------------------------------------------
    def create(
        self,
        kind: str,
        payload: dict[str, Any],
        attempts: int,
        run_at_ms: int = 0,
        priority: str = "normal",
        target: str = "lab",
    ) -> tuple[str, bool]:
        """A new queued job; returns its id and whether it is delayed (its message is then
        published at `run_at_ms` by `lab.runtime.delayed`, not by the caller). `target` names
        who runs it: lab's workers, or BullMQ's (`lab.targets.bullmq_jobs`)."""
        job_id = new_job_id()
        answer = self._call(
            JOB_CREATE,
            job_id,
            {"jobs": self.keys.jobs, "delayed": self.keys.delayed_jobs},
            kind=kind,
            payload=json.dumps(payload, separators=(",", ":")),
            attempts=attempts,
            run_at=run_at_ms,
            priority=priority,
            target=target,
        )
        return job_id, answer == "delayed"

    def due(self, now_ms: int, limit: int = 100, stale_ms: int = 10_000) -> list[str]:
        """Take the delayed jobs whose time has come (see job_due.lua); `published` after."""
        return list(
            self.call(
                JOB_DUE,
                keys={"delayed": self.keys.delayed_jobs, "promoting": self.keys.promoting_jobs},
                args={"now": now_ms, "limit": limit, "stale": stale_ms},
            )
        )

    def published(self, job_id: str) -> None:
        """A delayed job's message is out (or it needs none any more)."""
        self.redis.zrem(self.keys.promoting_jobs, job_id)

    def run_now(self, job_id: str) -> bool:
        """Make a delayed job due now; False when it is not waiting (any more)."""
        return bool(self.redis.zadd(self.keys.delayed_jobs, {job_id: 0}, xx=True, ch=True))

    def get(self, job_id: str, with_log: bool = True) -> dict[str, Any]:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(self.keys.job(job_id))
        pipe.lrange(self.keys.job_log(job_id), 0, -1)
        h, log = pipe.execute()
        if not h:
            raise JobNotFound(job_id)
        return view(h, log if with_log else None)

    def target(self, job_id: str) -> str:
        """Who runs the job: `lab` (also for a record from before targets), or `bullmq`."""
        return self.redis.hget(self.keys.job(job_id), "target") or "lab"

    def views(self, job_ids: list[str]) -> list[dict[str, Any]]:
        """The records of these jobs, in their order, without logs; missing ones left out."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.keys.job(job_id))
        return [view(h) for h in pipe.execute() if h]

    def message(self, job_id: str) -> Outgoing:
        """The message that runs the job's current attempt, and its priority."""
        h = self.redis.hgetall(self.keys.job(job_id))
        if not h:
            raise JobNotFound(job_id)
        job = Job(
            jobId=job_id,
            runId=None,
            seq=None,
            kind=h["kind"],
            attempt=int(h["attempt"]),
            createdAt=int(h["createdAt"]),
            payload=json.loads(h["payload"]),
        )
        return Outgoing(job, h.get("priority") or "normal")

    def list(
        self,
        state: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; `cursor` is the last id of the previous page (exclusive)."""
        index = self.keys.jobs_in(state) if state else self.keys.jobs
        upper = f"({cursor}" if cursor else "+"
        found: list[dict[str, Any]] = []
        scanned = 0
        while len(found) < limit and scanned < SCAN_LIMIT:
            page = min(max(limit * 2, 50), 500)
            ids = self.redis.zrevrangebylex(index, upper, "-", start=0, num=page)
            if not ids:
                return found, None
            pipe = self.redis.pipeline(transaction=False)
            for job_id in ids:
                pipe.hgetall(self.keys.job(job_id))
            for job_id, h in zip(ids, pipe.execute(), strict=True):
                scanned += 1
                upper = f"({job_id}"
                if h and (kind is None or h.get("kind") == kind):
                    found.append(view(h))
                    if len(found) == limit:
                        break
        more = self.redis.zrevrangebylex(index, upper, "-", start=0, num=1)
        return found, (upper[1:] if more else None)

    def ids(self, state: str | None = None, kind: str | None = None) -> Iterator[str]:
        """Every job id in `state` (or any), of `kind` (or any), newest first, page by page."""
        index = self.keys.jobs_in(state) if state else self.keys.jobs
        upper = "+"
        while True:
            ids = self.redis.zrevrangebylex(index, upper, "-", start=0, num=500)
            if not ids:
                return
            upper = f"({ids[-1]}"
            if kind is None:
                yield from ids
                continue
            pipe = self.redis.pipeline(transaction=False)
            for job_id in ids:
                pipe.hget(self.keys.job(job_id), "kind")
            yield from (i for i, k in zip(ids, pipe.execute(), strict=True) if k == kind)

    def states(self, job_ids: builtins.list[str]) -> dict[str, tuple[str | None, str | None]]:
        """Each job's (state, kind); (None, None) for one with no record."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(self.keys.job(job_id), "state", "kind")
        return {job_id: (s, k) for job_id, (s, k) in zip(job_ids, pipe.execute(), strict=True)}

    def counts(self) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for state in STATES:
            pipe.zcard(self.keys.jobs_in(state))
        return dict(zip(STATES, pipe.execute(), strict=True))

    @property
    def _delayed_keys(self) -> dict[str, str]:
        return {"delayed": self.keys.delayed_jobs, "promoting": self.keys.promoting_jobs}

    def cancel(self, job_id: str) -> str:
        """'cancelled' (it was queued) or 'requested' (it stops at its next step)."""
        answer = self._call(JOB_CANCEL, job_id, self._delayed_keys)
        if answer[0] == "missing":
            raise JobNotFound(job_id)
        if answer[0] == "conflict":
            raise JobConflict(
                f"job {job_id} is {answer[1]}; only a queued or active job can be cancelled",
                answer[1],
            )
        return answer[0]

    def retry(self, job_id: str) -> int:
        """Back to queued with attempt + 1 and a fresh budget; returns the new attempt."""
        answer = self._call(JOB_RETRY, job_id, self._delayed_keys, max_attempt=MAX_ATTEMPT)
        if answer[0] == "missing":
            raise JobNotFound(job_id)
        if answer[0] == "limit":
            raise JobConflict(
                f"job {job_id} has used {answer[1]} attempts; a job may use at most "
                f"{MAX_ATTEMPT}, so submit it again as a new job",
                "failed",
            )
        if answer[0] == "conflict":
            raise JobConflict(
                f"job {job_id} is {answer[1]}; only a failed or cancelled job can be retried",
                answer[1],
            )
        return int(answer[1])

    def delete(self, job_id: str, ended_before_ms: int = 0) -> None:
        """Delete a job that is not running; with `ended_before_ms` (pruning), only one that
        still ended before then when the script runs."""
        answer = self._call(
            JOB_DELETE,
            job_id,
            {
                "tombstone": self.keys.job_deleted(job_id),
                "jobs": self.keys.jobs,
                **self._delayed_keys,
            },  # fmt: skip
            tombstone_ttl=TOMBSTONE_TTL_S,
            ended_before=ended_before_ms,
        )
        if answer[0] == "missing":
            raise JobNotFound(job_id)
        if answer[0] == "conflict" and answer[1] == "active":
            raise JobConflict(f"job {job_id} is running; cancel it first", "active")
        if answer[0] == "conflict":
            raise JobConflict(f"job {job_id} is {answer[1]} and did not end before the cutoff",
                              answer[1])  # fmt: skip

    def ended_before(self, cutoff_ms: int, limit: int = SCAN_LIMIT) -> builtins.list[str]:
        """Up to `limit` jobs that ended (completed, failed, cancelled) before `cutoff_ms`."""
        found: builtins.list[str] = []
        for state in TERMINAL:
            ids = self.redis.zrangebylex(self.keys.jobs_in(state), "-", "+", start=0, num=limit)
            pipe = self.redis.pipeline(transaction=False)
            for job_id in ids:
                pipe.hget(self.keys.job(job_id), "finishedAt")
            for job_id, finished in zip(ids, pipe.execute(), strict=True):
                if finished and int(finished) < cutoff_ms and len(found) < limit:
                    found.append(job_id)
        return found

    def unqueue(self, job_id: str, attempt: int, error: str) -> None:
        """A queued attempt whose message could not be published: it failed, visibly."""
        self._finish(job_id, attempt, "failed", error, None, error, expected="queued")
