"""The run a scheduler releases, as tests drive and read it: `FakeLimiter` in memory, or
`RedisRun`, the same run in Redis through the real stores and scripts. Both answer the same
questions (`released`, `marks`, `lag`, ...) so one test runs on either."""

from __future__ import annotations

import json
from typing import Any

from lab.config import Settings
from lab.runtime.stores import Stores
from lab.testing import FakeClock, FakeLimiter


class RedisRun:
    """One run in Redis, started through `Runs.start` on the test's clock; what it released
    per second and the seconds it marked are read from its timeline, as `/timeline` reads them."""

    def __init__(self, settings: Settings, clock: FakeClock, x: int, y: float = 600.0,
                 shape: dict[str, Any] | None = None, seed: int = 0,
                 backlog: int | None = None):  # fmt: skip
        if backlog is not None:
            settings = settings.with_overrides(backlog_limit=backlog)
        self.real = Stores.of(settings, clock=clock)
        self.x = x
        shape = shape or {"type": "constant", "y": y}
        self.run_id = self.real.runs.start(x, shape=shape, seed=seed)
        self._settled = 0

    def stores(self) -> Stores:
        return self.real

    def _run(self) -> dict[str, str]:
        return dict(self.real.redis.hgetall(self.real.keys.run(self.run_id)))

    def _timeline(self) -> dict[str, str]:
        return dict(self.real.redis.hgetall(self.real.keys.run_timeline(self.run_id)))

    @property
    def released(self) -> dict[int, int]:
        out = {}
        for name, value in self._timeline().items():
            second, _, field = name.partition(":")
            if field == "released" and second.isdigit():  # not the minutes' and hours' sums
                out[int(second)] = int(value)
        return out

    @property
    def marks(self) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for name in self._timeline():
            second, _, field = name.partition(":")
            if field in ("forgiven", "backpressure", "paused") and second.isdigit():
                out.setdefault(int(second), set()).add(field)
        return out

    @property
    def lag(self) -> int:
        return int(self._run().get("shapeLag") or 0)

    @property
    def base(self) -> int:
        return int(self._run().get("shapeBase") or 1)

    @property
    def granted_to(self) -> int:
        return int(self._run().get("grantedTo") or 0)

    @property
    def enqueued(self) -> int:
        return int(self._run()["enqueued"])

    @property
    def settled(self) -> int:
        return self._settled

    @settled.setter
    def settled(self, value: int) -> None:
        """The workers settled every job below `value` (what backpressure reads)."""
        if value != self._settled:
            self.real.redis.hset(self.real.keys.run(self.run_id), "processed", value)
            self._settled = value

    @property
    def lease_holder(self) -> str | None:
        return self.real.redis.get(self.real.keys.scheduler_lease)

    @lease_holder.setter
    def lease_holder(self, value: str | None) -> None:
        assert value is None, "a test only takes the lease away (kill -9)"
        self.real.redis.delete(self.real.keys.scheduler_lease)

    @property
    def paused(self) -> bool:
        return self._run().get("paused") == "1"

    @paused.setter
    def paused(self, value: bool) -> None:
        self.real.runs.pause(value)

    def reshape(self, shape: dict[str, Any]) -> None:
        self.real.runs.reshape(self.run_id, shape)

    def changes(self) -> list[dict[str, Any]]:
        return json.loads(self._run().get("shapes") or "[]")


def make(kind: str, settings: Settings | None, clock: FakeClock, **run: Any) -> Any:
    """A `FakeLimiter` or a `RedisRun` of the same run."""
    if kind == "fake":
        return FakeLimiter(clock, **run)
    assert settings is not None
    return RedisRun(settings, clock, **run)
