"""A lab's state in Redis, one store per feature (`base.RedisStore`):

    runs         run records and their lifecycle: start, pause, reshape, stop; timeline, latency
    counting     each job's outcome counted exactly once, with its latency (`record.lua`)
    release      the scheduler's lease, the shape's grant, the confirmed frontier
    pauses       queues workers take nothing new from
    heartbeats   live workers and schedulers
    objectives   a run's SLOs judged on their windows
    head_ages    how long each queue's oldest waiting job has waited
    retention    runs that ended long ago, forgetting a run, purging a lab
    overview     /status, the /metrics counters, the recent history (reads only)

`Stores.of(settings)` makes them on one Redis client; the worker and the scheduler take only the
stores they use (`lab.runtime.seams`), so `lab.testing`'s stand-ins replace them in unit tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from lab.config import Settings
from lab.runtime.connections import redis_client
from lab.runtime.keys import Keys
from lab.runtime.stores.counting import Counting
from lab.runtime.stores.head_ages import HeadAges
from lab.runtime.stores.heartbeats import Heartbeats
from lab.runtime.stores.objectives import Objectives
from lab.runtime.stores.overview import Counters, Overview
from lab.runtime.stores.pauses import Pauses
from lab.runtime.stores.release import Ask, Grant, Release
from lab.runtime.stores.retention import Retention
from lab.runtime.stores.runs import NoActiveRun, RunConflict, Runs, ShapeRace

__all__ = [
    "Ask",
    "Counters",
    "Counting",
    "Grant",
    "HeadAges",
    "Heartbeats",
    "NoActiveRun",
    "Objectives",
    "Overview",
    "Pauses",
    "Release",
    "Retention",
    "RunConflict",
    "Runs",
    "ShapeRace",
    "Stores",
]


@dataclass(frozen=True)
class Stores:
    """Every store of one lab, on one Redis client and one script cache."""

    runs: Runs
    counting: Counting
    release: Release
    pauses: Pauses
    heartbeats: Heartbeats
    objectives: Objectives
    head_ages: HeadAges
    retention: Retention
    overview: Overview

    @classmethod
    def of(
        cls,
        settings: Settings,
        client: redis.Redis | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Stores:
        client = client if client is not None else redis_client(settings)
        shared: dict[str, Any] = {}  # one script cache: each script registered once

        def made(kind: type[Any]) -> Any:
            return kind(settings, client, shared, clock)

        return cls(made(Runs), made(Counting), made(Release), made(Pauses), made(Heartbeats),
                   made(Objectives), made(HeadAges), made(Retention), made(Overview))  # fmt: skip

    @property
    def redis(self) -> Any:
        """The client every store shares."""
        return self.runs.redis

    @property
    def settings(self) -> Settings:
        return self.runs.settings

    @property
    def keys(self) -> Keys:
        """The lab's key names (`lab.runtime.keys`)."""
        return self.runs.keys
