"""Retention and cleanup: which runs ended long ago, forgetting one run's keys, and purging a
whole lab's.

A run's keys are `Keys.run_keys` (named in one place) and whatever the counting script was told
to count under the run (middleware `Count`s), which it lists in the run's `:owned` set as it
first writes them: forgetting a run deletes both, so a new store or middleware needs no line
here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from lab.runtime.stores.base import RedisStore


class Retention(RedisStore):
    def ended_before(self, cutoff_ms: int, limit: int = 20) -> list[str]:
        """Runs started and ended before `cutoff_ms` (never the active one), oldest first."""
        k = self.keys
        ids = self.redis.zrangebyscore(k.runs, "-inf", cutoff_ms, start=0, num=limit * 5)
        active = self.redis.get(k.active_run)
        pipe = self.redis.pipeline(transaction=False)
        for run_id in ids:
            pipe.hmget(k.run(run_id), "state", "finishedAt", "stoppedAt")
        out = []
        for run_id, (state, finished, stopped) in zip(ids, pipe.execute(), strict=True):
            ended = int(finished or stopped or 0) if state != "running" else 0
            if run_id != active and (state is None or (ended and ended <= cutoff_ms)):
                out.append(run_id)
            if len(out) == limit:
                break
        return out

    def forget(self, run_id: str) -> None:
        """Delete a run's keys, those middleware counted under it included, and take it off the
        run history (its documents: `Store.delete_run`)."""
        k = self.keys
        owned = sorted(self.redis.smembers(k.run_owned(run_id)))
        pipe = self.redis.pipeline(transaction=True)
        for batch in _chunks([*k.run_keys_all(run_id), *owned], 500):
            pipe.delete(*batch)
        pipe.zrem(k.runs, run_id)
        pipe.execute()

    def purge(self) -> int:
        """Delete every key of this lab's prefix (tests and `lab reset`)."""
        deleted = 0
        for batch in _chunks(self.redis.scan_iter(self.keys.pattern, count=1000), 500):
            deleted += self.redis.delete(*batch)
        return deleted

    def targets_used(self) -> set[str]:
        """The targets this lab's runs drove (their brokers hold queues of this lab's too)."""
        pipe = self.redis.pipeline(transaction=False)
        for run_id in self.redis.zrange(self.keys.runs, 0, -1):
            pipe.hget(self.keys.run(run_id), "target")
        return {t for t in pipe.execute() if t}

    def legacy_retry_queues(self) -> set[str]:
        """Retry queues older labs declared per delay value (`lab reset` removes them)."""
        return set(self.redis.smembers(self.keys.retry_queues))


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
