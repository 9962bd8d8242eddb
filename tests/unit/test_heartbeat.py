"""The heartbeat loop: a beat every `LAB_HEARTBEAT_S` until the process stops, and a write that
fails (Redis away) logged and tried again on the next beat, never ending the loop."""

from __future__ import annotations

import logging

import pytest

from lab.config import Settings
from lab.runtime.heartbeat import identity, keep_beating


def test_a_failed_beat_is_logged_and_the_next_one_still_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(redis_url="redis://:secret@127.0.0.1:1/0", heartbeat_s=2.0)
    beats, waits = [], []

    def write() -> None:
        beats.append(len(beats))
        if len(beats) == 2:
            raise ConnectionError("refused")

    with caplog.at_level(logging.WARNING, "lab.runtime.heartbeat"):
        keep_beating(write, settings, lambda: len(beats) == 3, waits.append)
    assert beats == [0, 1, 2]
    assert waits == [2.0, 2.0, 2.0]
    (record,) = caplog.records
    assert "retried every 2s" in record.getMessage()
    assert "secret" not in record.getMessage()  # the URL is printed masked


def test_every_heartbeat_starts_with_who_wrote_it() -> None:
    assert set(identity("w1")) == {"id", "pid", "host"}
    assert identity("w1")["id"] == "w1"
