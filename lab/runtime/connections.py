"""Lab's Redis clients: one way to make them, with the lab's deadlines, and one way to tell a
Redis that is away (wait and retry) from one that refused a command (a bug or bad input)."""

from __future__ import annotations

from typing import Any

import redis

from lab.config import Settings

# redis-py's types cannot say that `decode_responses=True` makes every reply a `str` (they read
# `bytes | str` everywhere), so lab's clients are typed by this alias.
TextRedis = Any


def redis_client(settings: Settings, waits_s: float = 0.0) -> TextRedis:
    """A Redis client with the lab's deadlines: a server that accepts and never answers costs
    `LAB_REDIS_TIMEOUT_S` (plus `waits_s` for a client whose commands block on purpose), a
    `redis.TimeoutError`, never a hang."""
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout_s + waits_s,
        socket_connect_timeout=settings.redis_timeout_s,
    )


def unavailable(exc: BaseException) -> bool:
    """Redis is unreachable, loading or read-only after a failover: wait and retry."""
    return isinstance(exc, redis.ConnectionError | redis.TimeoutError | redis.ReadOnlyError)
