"""Head-of-line ages: how long the oldest waiting job of each consumed queue has waited,
measured once a second by the scheduler leader (`lab.runtime.headage` decides; this reads and
records). Key: `head_ages` (a hash with a short TTL); it reads the workers' heartbeats, the run's
counters and timeline, and the single jobs' records.

The run's released jobs are counted back from now through its timeline by second, then minute,
then hour (`headage.walk`), so a measure costs a handful of reads however old the backlog is;
the spans it finds are also what a latency objective counts the unfinished jobs by.
"""

from __future__ import annotations

from typing import Any

from lab.runtime import headage
from lab.runtime.headage import HeadAge, Released
from lab.runtime.stores.base import RedisStore

HEAD_SCAN = 200  # queued single jobs looked at for their queue's head, oldest first


class HeadAges(RedisStore):
    def measure(self, run_queue: str, other_run_queue: str, single_queue: str) -> HeadAge:
        """Measure the head-of-line age of the active run's queue and of the single-job queue,
        record them for /status, /queues and /metrics (`read`), and return the run's measure
        (age 0: nothing waits, or no run)."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(k.active_run)
        pipe.smembers(k.workers)
        pipe.zrangebylex(k.jobs_in("queued"), "-", "+", start=0, num=HEAD_SCAN)
        run_id, workers, queued = pipe.execute()
        now_ms = self.now_ms()
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(k.run(run_id or "-"), "enqueued", "processed", "failed", "startedAt")
        for worker in workers:
            pipe.hmget(k.worker(worker), "inFlight", "waitingSinceMs")
        for job in queued:
            pipe.hmget(k.job(job), "queuedAt", "runAt")
        answers = pipe.execute()
        run, beats_, jobs = answers[0], answers[1 : 1 + len(workers)], answers[1 + len(workers) :]
        measured = HeadAge(now_ms)
        if run_id and run[0] is not None:
            unsettled = _int(run[0]) - _int(run[1]) - _int(run[2])
            waiting = unsettled - sum(_int(in_flight) for in_flight, _ in beats_)
            spans = self._released(run_id, max(unsettled, waiting), now_ms, _int(run[3]))
            broker_ms = headage.released_at(spans, waiting) if waiting > 0 else None
            if waiting > 0 and broker_ms is None and _int(run[3]):
                broker_ms = float(_int(run[3]))  # older than the timeline read: the run's start
            age = headage.head_age_ms(now_ms, (_int(w) for _, w in beats_), broker_ms)
            measured = HeadAge(now_ms, age, headage.newest(spans, unsettled),
                               headage.newest(spans, waiting))  # fmt: skip
        due = [max(_int(q), _int(r)) for q, r in jobs if _int(r) <= now_ms]
        single_age = max(0, now_ms - min(due)) if due else 0
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(k.head_ages)
        pipe.hset(k.head_ages, mapping={"atMs": now_ms, "run": run_id or "",
                                        "runAgeMs": measured.age_ms, run_queue: measured.age_ms,
                                        other_run_queue: 0, single_queue: single_age})  # fmt: skip
        pipe.pexpire(k.head_ages, headage.STALE_MS * 10)
        pipe.execute()
        return measured

    def _released(self, run_id: str, jobs: int, now_ms: int, started_ms: int) -> list[Released]:
        """The run's releases counted back from now, newest first, in spans of a second, a minute
        or an hour, down to those that hold the `jobs` newest (a minute or an hour that holds the
        last of them is read again by its seconds or minutes, so the head is placed within a
        second)."""
        if jobs <= 0 or not started_ms:
            return []
        plan = headage.walk(now_ms // 1000, started_ms // 1000)
        spans = self._read([(size, unit) for size, units in plan for unit in units], run_id)
        while True:
            found = headage.rank_in(spans, jobs)
            if found is None or spans[found[0]].span_ms == 1000:
                return spans
            i = found[0]
            outer = spans[i]
            size = outer.span_ms // 1000 // 60
            first = outer.start_ms // 1000 // size
            finer = self._read([(size, u) for u in range(first + 59, first - 1, -1)], run_id)
            spans = spans[:i] + finer + spans[i + 1 :]

    def _read(self, units: list[tuple[int, int]], run_id: str) -> list[Released]:
        fields = [headage.field_of(size, unit) for size, unit in units]
        counts = self.redis.hmget(self.keys.run_timeline(run_id), fields) if fields else []
        return [Released(unit * size * 1000, size * 1000, _int(n))
                for (size, unit), n in zip(units, counts, strict=True)]  # fmt: skip

    def read(self) -> dict[str, Any]:
        """The last head-of-line ages measured: queue → ms, with `run` (the run measured) and
        `runAgeMs`; empty when none is recent."""
        return headage.fresh(self.redis.hgetall(self.keys.head_ages), self.now_ms())


def _int(raw: Any) -> int:
    """A counter or time as Redis keeps it (None or "" when unset: 0)."""
    try:
        return int(raw) if raw not in (None, "") else 0
    except (TypeError, ValueError):
        return 0
