"""Waiting out an outage in place (pure: the action fails as a client would): the outage is
said once, its retries are quiet, its end says how long it took."""

from __future__ import annotations

import logging
import threading

import pytest
import redis

from lab.runtime import patience
from lab.runtime.backoff import Backoff


def test_an_outage_is_logged_once_and_its_end_with_its_length(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Backoff, "next", lambda self: (setattr(self, "failures", self.failures + 1)
                                                       or 0.0))  # fmt: skip
    failures = iter([True, True, True, True, False])

    def action() -> str:
        if next(failures):
            raise redis.ConnectionError("Connection refused")
        return "done"

    with caplog.at_level(logging.DEBUG, logger="lab.runtime.worker"):
        assert patience.Patience(threading.Event())(action, "Redis") == "done"
    levels = [(r.levelname, r.getMessage().split(" (")[0]) for r in caplog.records]
    assert levels.count(("WARNING", "Redis unreachable")) == 1
    assert [lvl for lvl, _ in levels].count("DEBUG") == 3
    (back,) = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert back.startswith("Redis is back after") and back.endswith("(5 tries)")


def test_an_error_that_is_not_an_outage_is_raised_at_once() -> None:
    def broken() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        patience.Patience(threading.Event())(broken, "Redis")
