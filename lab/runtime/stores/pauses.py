"""Queue pauses: the consumed queues workers take nothing new from (`POST /queues/{name}/pause`).

One key, `paused-queues` (a set), kept in Redis so a pause outlives every process; a worker
checks it before a delivery starts, so a pause holds from the moment it answered.
"""

from __future__ import annotations

from lab.runtime.stores.base import RedisStore


class Pauses(RedisStore):
    def pause_queue(self, queue: str, paused: bool = True) -> bool:
        """Workers stop (or start again) taking new messages from `queue`; True if it changed."""
        key = self.keys.paused_queues
        changed = self.redis.sadd(key, queue) if paused else self.redis.srem(key, queue)
        return bool(changed)

    def is_paused(self, queue: str) -> bool:
        return bool(self.redis.sismember(self.keys.paused_queues, queue))

    def paused(self) -> set[str]:
        return set(self.redis.smembers(self.keys.paused_queues))
