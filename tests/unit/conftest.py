"""Unit tests need no service: every service URL points at a closed port, so a test that
reaches for Redis, RabbitMQ, Elasticsearch or the API by accident fails at once instead of
passing against whatever happens to run on this machine."""

from __future__ import annotations

import pytest

CLOSED = "127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture(autouse=True)
def no_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_REDIS_URL", f"redis://{CLOSED}/0")
    monkeypatch.setenv("LAB_AMQP_URL", f"amqp://guest:guest@{CLOSED}/%2F")
    monkeypatch.setenv("LAB_ES_URL", f"http://{CLOSED}")
    monkeypatch.setenv("LAB_API_URL", f"http://{CLOSED}")
