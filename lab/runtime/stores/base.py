"""What every store shares: one Redis client, the lab's key names and its Lua scripts.

A store is one feature's state in Redis (runs, counting, release, pauses, heartbeats, objectives,
head ages, retention): it alone writes its keys (named in `lab.runtime.keys`) and calls its
scripts (`lab/runtime/lua/`), and `lab.testing` has its in-memory stand-in, held to the same
contract by `tests/contracts/`. Stores made by `Stores.of` share one client and one script cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis

from lab.config import Settings
from lab.runtime.connections import TextRedis, redis_client
from lab.runtime.keys import Keys
from lab.runtime.scripts import Script, script_source


class RedisStore:
    """One feature's keys and scripts on a lab's Redis. `clock` (seconds, tests only) stands in
    for Redis' own clock in every script this store calls, so a store and its stand-in can be
    driven through the same simulated minutes (`tests/contracts/`)."""

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis | None = None,
        scripts: dict[str, Any] | None = None,
        clock: Callable[[], float] | None = None,
    ):
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self.redis: TextRedis = client if client is not None else redis_client(settings)
        self._scripts: dict[str, Any] = scripts if scripts is not None else {}
        self.clock = clock

    def now_ms(self) -> int:
        """The lab's clock: Redis' `TIME` (or the test's clock, as the scripts see it)."""
        if self.clock is not None:
            return int(self.clock() * 1000)
        now_s, now_us = self.redis.time()
        return int(now_s) * 1000 + int(now_us) // 1000

    def script(self, name: str) -> Any:
        """The Lua script `lab/runtime/lua/<name>.lua`, registered once per client. Registering
        loads it into Redis and publishes its SHA under `keys.scripts`, so a shim in another
        language (`targets/bullmq/lib/shim.js`) calls the same script by `EVALSHA`."""
        if name not in self._scripts:
            source = script_source(name)
            script = self.redis.register_script(source)
            pipe = self.redis.pipeline(transaction=False)
            pipe.script_load(source)
            pipe.hset(self.keys.scripts, name, script.sha)
            pipe.execute()
            self._scripts[name] = script
        return self._scripts[name]

    def call(
        self,
        script: Script,
        keys: Mapping[str, str],
        args: Mapping[str, Any],
        more_keys: Sequence[str] = (),
        more_args: Sequence[Any] = (),
    ) -> Any:
        """`script`, its keys and arguments by name (`Script.call`), on this store's clock."""
        if self.clock is not None:
            more_args = [*more_args, f"clock:{int(self.clock() * 1_000_000)}"]
        return script.call(self.script, keys, args, more_keys, more_args)
