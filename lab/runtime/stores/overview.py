"""The lab at a glance: `/status` in one script call, the counters `/metrics` exports, and the
jobs per 10-second bucket of the last minutes, whatever the runs. Reads only: every key here is
written by another store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lab.runtime import history, scripts
from lab.runtime.status import shape_status, status_call
from lab.runtime.stores.base import RedisStore


@dataclass(frozen=True)
class Counters:
    """The lab's counters in one round trip, for `/metrics`."""

    totals: dict[str, int]  # released, processed, failed: lifetime, every run
    dead_lettered: int
    jobs_by_state: dict[str, int]  # single jobs
    events: int  # entries in the event stream
    newest_event: str | None  # its newest entry's id
    run_dead: int  # dead letters of the run asked about


class Overview(RedisStore):
    def status(self) -> dict[str, Any]:
        """The active run (or the latest), its rates and the live workers: one round trip."""
        keys, args = status_call(self.keys)
        return shape_status(json.loads(self.call(scripts.STATUS, keys, args)))

    def counters(self, run_id: str | None, job_states: tuple[str, ...]) -> Counters:
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(k.totals)
        pipe.get(k.dead_lettered)
        for name in job_states:
            pipe.zcard(k.jobs_in(name))
        pipe.xlen(k.events)
        pipe.xrevrange(k.events, count=1)
        pipe.hget(k.run(run_id or "-"), "deadLettered")
        totals, dead, *rest = pipe.execute()
        by_state, (events, newest, run_dead) = rest[: len(job_states)], rest[len(job_states) :]
        return Counters(
            totals={name: int(value) for name, value in totals.items()},
            dead_lettered=int(dead or 0),
            jobs_by_state=dict(zip(job_states, map(int, by_state), strict=True)),
            events=int(events),
            newest_event=newest[0][0] if newest else None,
            run_dead=int(run_dead or 0) if run_id else 0,
        )

    def recent(self, seconds: int) -> dict[str, Any]:
        """The lab's jobs per 10-second bucket over the last `seconds`, whatever the runs."""
        now_s = int(self.redis.time()[0])
        buckets = history.recent_buckets(seconds, self.settings.history_s, now_s)
        pipe = self.redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.hmget(self.keys.history(bucket), *history.FIELDS)
        return history.recent(buckets, pipe.execute())

    def ping(self) -> None:
        """Raises when Redis does not answer."""
        self.redis.ping()
