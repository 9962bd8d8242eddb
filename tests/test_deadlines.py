"""Every client has a deadline (real processes): a service that accepts connections and never
answers costs the API a named 503 within its deadline, never a hang, and leaves nothing half done.

The silent service is a loopback socket that accepts and reads but never answers
(`tests.helpers.SilentServer`); the other services are the real ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from lab.config import Settings

from .helpers import SilentServer, wait_until


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def start_api(settings: Settings) -> subprocess.Popen:
    env = {**os.environ, **settings.as_env()}
    log = open(f"{settings.home}/api.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "lab", "api"], env=env, stdout=log, stderr=log)


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=5)
        return True
    except httpx.HTTPError:
        return False


@pytest.fixture
def api_with(settings: Settings) -> Iterator[object]:
    started: list[subprocess.Popen] = []

    def start(**overrides: object) -> Settings:
        configured = settings.with_overrides(**overrides)
        started.append(start_api(configured))
        wait_until(lambda: answers(f"{configured.api_url}/docs"), 30, "the API to listen")
        return configured

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def timed(call: object) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = call()  # type: ignore[operator]
    return response, time.monotonic() - began


def test_a_silent_rabbitmq_costs_healthz_a_second_and_creates_no_half_job(
    api_with: object, silent: SilentServer
) -> None:
    s = api_with(amqp_url=f"amqp://guest:guest@127.0.0.1:{silent.port}/%2F", amqp_timeout_s=2.0)  # type: ignore[operator]
    # Five parallel callers: each answered within about a second, not one after another.
    with ThreadPoolExecutor(5) as pool:
        results = list(
            pool.map(
                lambda _: timed(lambda: httpx.get(f"{s.api_url}/healthz", timeout=30)), range(5)
            )
        )
    for response, took in results:
        assert response.status_code == 503 and "rabbitmq" in response.json()["error"], response.text
        assert took < 1.5, [t for _, t in results]
    response = httpx.post(f"{s.api_url}/jobs", json={"kind": "sleep", "payload": {}}, timeout=60)
    assert response.status_code == 503 and response.json()["service"] == "rabbitmq", response.text
    assert "not created" in response.json()["error"]
    # Nothing was left behind: no record, queued or otherwise.
    assert httpx.get(f"{s.api_url}/jobs", timeout=10).json()["jobs"] == []
    # /status does not touch RabbitMQ and answers as usual.
    assert httpx.get(f"{s.api_url}/status", timeout=5).status_code == 200


def test_a_silent_redis_costs_status_less_than_a_second(
    api_with: object, silent: SilentServer
) -> None:
    s = api_with(redis_url=f"redis://127.0.0.1:{silent.port}/0", redis_timeout_s=3.0)  # type: ignore[operator]
    for _ in range(3):
        response, took = timed(lambda: httpx.get(f"{s.api_url}/status", timeout=30))
        assert response.status_code == 503 and response.json()["service"] == "redis", response.text
        assert took < 1.0, took
    response, took = timed(lambda: httpx.get(f"{s.api_url}/healthz", timeout=30))
    assert response.status_code == 503 and "redis" in response.json()["error"] and took < 1.5
