"""Every client has a deadline (real processes): a service that accepts connections and never
answers costs the API a named 503 within its deadline, never a hang, and leaves nothing half done.

The silent service is a loopback socket that accepts and reads but never answers
(`tests.helpers.SilentServer`); the other services are the real ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pika
import pytest

from lab.config import Settings
from lab.ops import servers

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


@pytest.mark.slow
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


def test_a_silent_redis_costs_status_less_than_its_command_timeout(
    api_with: object, silent: SilentServer
) -> None:
    s = api_with(redis_url=f"redis://127.0.0.1:{silent.port}/0", redis_timeout_s=3.0)  # type: ignore[operator]
    for _ in range(3):
        response, took = timed(lambda: httpx.get(f"{s.api_url}/status", timeout=30))
        assert response.status_code == 503 and response.json()["service"] == "redis", response.text
        # Well before the 3 s a Redis command may wait (its own budget answers first), with
        # room for a shared, loaded CPU: 1.05 s was seen beside the rest of the suite.
        assert took < 2.0, took
    response, took = timed(lambda: httpx.get(f"{s.api_url}/healthz", timeout=30))
    assert response.status_code == 503 and "redis" in response.json()["error"] and took < 1.5


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[servers.Local]:
    """A RabbitMQ node of this test's own: the shared one must never see an alarm."""
    node = servers.start_rabbitmq(servers.free_port(), tmp_path)
    yield node
    node.stop()
    if node.data_dir is not None:
        shutil.rmtree(node.data_dir, ignore_errors=True)


@pytest.mark.slow
def test_a_broker_alarm_is_a_named_503_and_oversized_bodies_are_refused_by_the_broker(
    api_with: object, private_broker: servers.Local
) -> None:
    s = api_with(amqp_url=private_broker.url, amqp_timeout_s=3.0)  # type: ignore[operator]
    job = {"kind": "sleep", "payload": {"seconds": 0}}
    assert httpx.post(f"{s.api_url}/jobs", json=job, timeout=30).status_code == 201
    # The broker refuses a body over lab's 1 MiB itself (max_message_size in the node's config).
    connection = pika.BlockingConnection(pika.URLParameters(private_broker.url))
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="message size"):
        channel.basic_publish("", s.queue, b"x" * (2 * 1024 * 1024))
        channel.queue_declare(s.queue, passive=True)  # the refusal arrives with the next frame
    connection.close()

    node = private_broker.node
    assert node is not None
    subprocess.run(["rabbitmqctl", "-q", "-n", node, "set_vm_memory_high_watermark", "absolute",
                    "1"], check=True, capture_output=True, timeout=60)  # fmt: skip
    try:
        before = len(httpx.get(f"{s.api_url}/jobs", timeout=10).json()["jobs"])
        response, took = timed(lambda: httpx.post(f"{s.api_url}/jobs", json=job, timeout=60))
        assert response.status_code == 503 and response.json()["service"] == "rabbitmq"
        assert "alarm" in response.json()["error"] and took < 15, (took, response.text)
        assert len(httpx.get(f"{s.api_url}/jobs", timeout=10).json()["jobs"]) == before
    finally:
        subprocess.run(["rabbitmqctl", "-q", "-n", node, "set_vm_memory_high_watermark", "0.4"],
                       check=False, capture_output=True, timeout=60)  # fmt: skip
