"""A single job's attempt as the worker that runs it sees its record: may this message run
(`begin`), its progress steps, its lease, and how it ends (`finish`).

Each is one script (`lab/runtime/lua/job_*.lua`) that writes nothing unless the worker still
holds the attempt's lease, so a worker that was frozen or cut off past its lease cannot
overwrite what the worker that took over wrote. `JobRecords` (`lab.runtime.jobs`) adds the API's
side to these; a worker is typed against `seams.SingleJobRecords`, which names only this side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lab.runtime.messages import Job
from lab.runtime.retry import Budget
from lab.runtime.scripts import JOB_BEGIN, JOB_FINISH, JOB_KEYS, JOB_PROGRESS, JOB_RENEW, Script
from lab.runtime.stores.base import RedisStore


@dataclass(frozen=True)
class End:
    """How an attempt ends (`job_finish.lua`): `completed`, `failed`, `cancelled` or `retry`,
    written only for the owner of `lease`."""

    outcome: str
    lease: str = ""
    error: str | None = None
    result: dict[str, Any] | None = None
    message: str = ""


@dataclass(frozen=True)
class Begin:
    """The answer to "may this message run?".

    `busy_ms` > 0: another worker owns this attempt and its lease runs that much longer, so this
    copy is looked at again after it (never run beside it). `paused`: the message's queue is
    paused, so it goes back to the queue unstarted."""

    run: bool
    tracked: bool
    budget: Budget | None = None
    reason: str = ""
    busy_ms: int = 0
    paused: bool = False


class AttemptRecords(RedisStore):
    """Single-job records (keys `job:<id>`, `:log`, `:events`), as the worker's side changes
    them."""

    @property
    def maxlen(self) -> int:
        return self.settings.event_stream_len

    def _call(
        self, script: Script, job_id: str, keys: dict[str, str] | None = None, **args: Any
    ) -> Any:
        """A job script: the keys and arguments every one takes (JOB_KEYS, JOB_ARGS), then the
        script's own, by name."""
        job_keys = dict(zip(JOB_KEYS, self.keys.job_keys(job_id), strict=True))
        common = {"id": job_id, "maxlen": self.maxlen, "states": self.keys.jobs_in_template}
        return self.call(script, {**job_keys, **(keys or {})}, {**common, **args})

    @property
    def lease_ms(self) -> int:
        """How long an attempt stays its worker's without a renewal: as long as the worker's
        own heartbeat, which renews it (and so does every progress step)."""
        return int(self.settings.heartbeat_ttl_s * 1000)

    def begin(self, job: Job, worker_id: str, redelivered: bool, lease: str, queue: str) -> Begin:
        """May this message run? `lease` is the token this attempt will be owned by."""
        answer = self._call(
            JOB_BEGIN,
            job.jobId,
            {"tombstone": self.keys.job_deleted(job.jobId), "paused": self.keys.paused_queues},
            attempt=job.attempt,
            worker=worker_id,
            redelivered=int(redelivered),
            lease=lease,
            lease_ms=self.lease_ms,
            queue=queue,
        )
        if answer[0] == "untracked":
            return Begin(run=True, tracked=False)
        if answer[0] == "paused":
            return Begin(run=False, tracked=True, reason="its queue is paused", paused=True)
        if answer[0] == "busy":
            return Begin(run=False, tracked=True, reason=f"running on {answer[2] or 'a worker'}",
                         busy_ms=max(1, int(answer[1])))  # fmt: skip
        if answer[0] == "skip":
            return Begin(run=False, tracked=True, reason=answer[1])
        return Begin(
            run=True, tracked=True, budget=Budget.of_record(int(answer[1]), int(answer[2]))
        )

    def progress(self, job: Job, lease: str, percent: int, step: str, message: str) -> str:
        return self._call(
            JOB_PROGRESS, job.jobId, attempt=job.attempt, percent=percent, step=step,
            message=message, lease=lease, lease_ms=self.lease_ms,
        )  # fmt: skip

    def renew(self, leases: dict[str, str]) -> int:
        """Keep the leases of the attempts this worker runs ({job id: token}); returns how many
        were still its own."""
        if not leases:
            return 0
        ids = sorted(leases)
        return int(
            self.call(
                JOB_RENEW,
                keys={},
                args={"lease_ms": self.lease_ms},
                more_keys=[self.keys.job(i) for i in ids],
                more_args=[leases[i] for i in ids],
            )
        )

    def finish(self, job: Job, end: End) -> bool:
        """The end of the attempt `end.lease` owns; False (nothing written) when it is not its
        own."""
        return self._finish(
            job.jobId, job.attempt, end.outcome, end.error, end.result, end.message, lease=end.lease
        )

    def _finish(
        self,
        job_id: str,
        attempt: int,
        outcome: str,
        error: str | None,
        result: dict[str, Any] | None,
        message: str,
        expected: str = "active",
        lease: str = "",
    ) -> bool:
        applied = self._call(
            JOB_FINISH,
            job_id,
            attempt=attempt,
            outcome=outcome,
            error=error or "",
            result=json.dumps(result, separators=(",", ":")) if result is not None else "",
            message=message,
            expected=expected,
            lease=lease,
        )
        return bool(applied)
