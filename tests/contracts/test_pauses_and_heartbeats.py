"""Queue pauses and heartbeats: `FakePauses`/`FakeHeartbeats` and the real stores answer alike."""

from __future__ import annotations

from typing import Any

import pytest

from lab.testing import FakeHeartbeats, FakePauses
from tests.contracts.conftest import KINDS


@pytest.fixture(params=KINDS)
def pauses(request: pytest.FixtureRequest) -> Any:
    return (
        FakePauses() if request.param == "fake" else request.getfixturevalue("real_stores").pauses
    )


@pytest.fixture(params=KINDS)
def heartbeats(request: pytest.FixtureRequest) -> Any:
    if request.param == "fake":
        return FakeHeartbeats()
    return request.getfixturevalue("real_stores").heartbeats


def test_a_pause_says_whether_it_changed_anything(pauses: Any) -> None:
    assert pauses.pause_queue("q1") is True
    assert pauses.pause_queue("q1") is False
    assert pauses.is_paused("q1") and not pauses.is_paused("q2")
    pauses.pause_queue("q2")
    assert pauses.paused() == {"q1", "q2"}
    assert pauses.pause_queue("q1", paused=False) is True
    assert pauses.pause_queue("q1", paused=False) is False
    assert pauses.paused() == {"q2"}


def test_a_process_is_live_from_its_first_beat_until_it_is_forgotten(heartbeats: Any) -> None:
    heartbeats.worker("w1", {"id": "w1", "pid": 1, "host": "h"})
    heartbeats.scheduler("s1", {"id": "s1", "pid": 2, "host": "h", "leader": 1})
    assert heartbeats.live() == ["w1", "s1"]
    heartbeats.forget_worker("w1")
    heartbeats.forget_scheduler("s1")
    assert heartbeats.live() == []
