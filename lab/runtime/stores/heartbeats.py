"""Heartbeats: which workers and schedulers are alive, and what each says about itself.

A heartbeat is a hash that expires unless renewed (`worker:<id>`, `scheduler:<id>`), listed in a
set of members (`workers`, `schedulers`) that readers prune of expired ids; its fields are the
one schema of `lab.runtime.beats`.
"""

from __future__ import annotations

import time
from typing import Any

from lab.runtime import beats
from lab.runtime.stores.base import RedisStore
from lab.runtime.usage import process_usage


class Heartbeats(RedisStore):
    def worker(self, worker_id: str, fields: dict[str, Any]) -> None:
        fields = beats.encode(beats.WORKER, {**fields, **process_usage()})
        self._announce(self.keys.workers, self.keys.worker(worker_id), worker_id, fields)

    def forget_worker(self, worker_id: str) -> None:
        self._forget(self.keys.workers, self.keys.worker(worker_id), worker_id)

    def scheduler(self, scheduler_id: str, fields: dict[str, Any]) -> None:
        fields = beats.encode(beats.SCHEDULER, {**fields, **process_usage()})
        key = self.keys.scheduler(scheduler_id)
        self._announce(self.keys.schedulers, key, scheduler_id, fields)

    def forget_scheduler(self, scheduler_id: str) -> None:
        self._forget(self.keys.schedulers, self.keys.scheduler(scheduler_id), scheduler_id)

    def live(self) -> list[str]:
        """Workers and schedulers whose heartbeat has not expired (`lab reset` refuses while any
        runs: they would declare the queues again at once)."""
        live = []
        for members, key in ((self.keys.workers, self.keys.worker),
                             (self.keys.schedulers, self.keys.scheduler)):  # fmt: skip
            live += [m for m in sorted(self.redis.smembers(members)) if self.redis.exists(key(m))]
        return live

    def _announce(self, members: str, key: str, member: str, fields: dict[str, Any]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={**fields, "seenMs": int(time.time() * 1000)})
        pipe.pexpire(key, int(self.settings.heartbeat_ttl_s * 1000))
        pipe.sadd(members, member)
        pipe.execute()

    def _forget(self, members: str, key: str, member: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.srem(members, member)
        pipe.execute()
