"""Contract suites: the same tests run on each `lab.testing` stand-in and on the real store it
stands in for, against the machine's Redis, on one simulated clock (the scripts take the test's
clock as their last argument, `lab/runtime/stores/base.py`). A stand-in that drifts from its Lua
fails here, where a unit test built on it would have gone on passing.

Only Redis is needed: each real store gets a key prefix of its own, purged afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from lab import config
from lab.config import Settings
from lab.ops import servers
from lab.runtime.stores import Stores
from lab.testing import FakeClock
from tests.conftest import BASE

START = 1_000_000.0  # the simulated clock's start, in seconds (a whole second)
KINDS = ("fake", "redis")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def redis_settings() -> Iterator[Settings]:
    """A namespace of its own on the shared Redis (no queue, no index: nothing else is used)."""
    if not servers.redis_ok(BASE.redis_url):
        pytest.fail(f"Redis does not answer at {BASE.redis_url}")
    settings = BASE.with_overrides(prefix=f"contract-{uuid.uuid4().hex[:8]}", lease_ms=2000)
    yield settings
    Stores.of(settings).retention.purge()


@pytest.fixture
def real_stores(redis_settings: Settings, clock: FakeClock) -> Stores:
    return Stores.of(redis_settings, clock=clock)


def unit_settings(**overrides: object) -> Settings:
    return config.load({}).with_overrides(**overrides)
