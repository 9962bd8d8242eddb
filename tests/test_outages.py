"""Outages are waited out in place: Redis, Elasticsearch or RabbitMQ goes away mid-run and comes
back, and the same worker processes finish the run with nothing lost and nothing counted twice.

Each test takes the service away from a private instance of its own (never the machine's shared
Redis or RabbitMQ), started on a free port with its data kept, so "back" means the same data.
While it is away, the API answers 503 naming it and the processes say what they wait for.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lab.client import LabClient
from lab.config import Settings
from lab.ops import servers
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores

from .conftest import cleanup, make_settings
from .helpers import assert_exactly_once, settle, wait_until

X = 12_000
RATE = 240_000  # jobs per minute: 4,000 a second, so the outage lands mid-run


@pytest.fixture
def home() -> Iterator[Path]:
    """A folder the rabbitmq user can enter, so a restarted node finds its own data again."""
    path = Path(tempfile.mkdtemp(prefix="lab-outage-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def lab_on(es_url: str, home: Path, **services: str) -> Iterator[tuple[Supervisor, Settings]]:
    settings = make_settings(es_url, home / "lab", **services)
    supervisor = Supervisor(settings, log_dir=home / "lab" / "logs")
    try:
        yield supervisor, settings
    finally:
        supervisor.down(grace_s=10)
        with contextlib.suppress(Exception):
            cleanup(settings)


def said(supervisor: Supervisor, names: list[str], words: str) -> bool:
    return all(words in supervisor.tail(name, 400) for name in names)


def waiting(settings: Settings, service: str) -> bool:
    """`/status` shows every worker waiting for `service`."""
    workers = httpx.get(f"{settings.api_url}/status", timeout=10).json()["workers"]
    return bool(workers) and all(w["waitingFor"] == service for w in workers)


def run_through(
    supervisor: Supervisor, settings: Settings, outage: Callable[[list[str]], None]
) -> None:
    """Start a run, let `outage` take a service away and bring it back, then check the run."""
    supervisor.up(workers=2)
    workers = supervisor.workers()
    pids = {name: supervisor.pid(name) for name in workers}
    client = LabClient.of(settings)
    stores = Stores.of(settings)
    run_id = client.run(X, RATE)["runId"]
    wait_until(lambda: stores.runs.get(run_id).processed >= 1000, 60, "the first 1,000 jobs")
    outage(workers)
    run = settle(stores, run_id, 240)
    assert run.processed == X
    assert_exactly_once(settings, stores, run_id, X)
    # The very same processes did it: none exited, none was restarted.
    assert {name: supervisor.pid(name) for name in workers} == pids
    assert all(
        supervisor.children[n].running and supervisor.children[n].restarts == 0 for n in pids
    )
    client.close()


@pytest.mark.slow
def test_a_redis_outage_is_waited_out(es_url: str, home: Path) -> None:
    port = servers.free_port()
    redis_home = home / "redis-data"
    local = servers.start_redis(port, redis_home)
    try:
        with lab_on(es_url, home, redis_url=local.url) as (supervisor, settings):

            def outage(workers: list[str]) -> None:
                nonlocal local
                local.stop()  # SIGTERM: Redis writes its append-only file, then the port refuses
                wait_until(
                    lambda: (
                        said(supervisor, workers, "Redis unreachable")
                        or said(supervisor, workers, "heartbeat failed")
                    ),
                    30,
                    "the workers to notice Redis is gone",
                )
                answer = httpx.get(f"{settings.api_url}/status", timeout=10)
                assert answer.status_code == 503 and answer.json()["service"] == "redis"
                local = servers.start_redis(port, redis_home)  # same port, same data

            run_through(supervisor, settings, outage)
    finally:
        local.stop()


@pytest.mark.slow
def test_an_elasticsearch_outage_is_waited_out(home: Path) -> None:
    es = servers.start_elasticsearch(servers.free_port(), home)
    try:
        with lab_on(es.url, home) as (supervisor, settings):

            def outage(workers: list[str]) -> None:
                es.pause_service()  # the port refuses connections; the data stays
                wait_until(
                    lambda: said(supervisor, workers, "Elasticsearch unreachable"),
                    30,
                    "the workers to notice Elasticsearch is gone",
                )
                health = httpx.get(f"{settings.api_url}/healthz", timeout=20)
                assert health.status_code == 503
                assert health.json()["services"]["elasticsearch"].startswith("unreachable")
                wait_until(
                    lambda: waiting(settings, "Elasticsearch"), 10, "/status to show the wait"
                )
                es.resume_service()

            run_through(supervisor, settings, outage)
    finally:
        es.stop()


@pytest.mark.slow
def test_a_rabbitmq_outage_is_waited_out(es_url: str, home: Path) -> None:
    port = servers.free_port()
    rabbit = servers.start_rabbitmq(port, home)
    try:
        with lab_on(es_url, home, amqp_url=rabbit.url) as (supervisor, settings):

            def outage(workers: list[str]) -> None:
                nonlocal rabbit
                rabbit.stop()  # the node stops; durable queues and persistent messages stay
                wait_until(
                    lambda: said(supervisor, workers, "RabbitMQ unreachable"),
                    60,
                    "the workers to notice RabbitMQ is gone",
                )
                wait_until(lambda: waiting(settings, "RabbitMQ"), 10, "/status to show the wait")
                assert httpx.get(f"{settings.api_url}/healthz", timeout=20).status_code == 503
                rabbit = servers.start_rabbitmq(port, home)  # same node, same data

            run_through(supervisor, settings, outage)
    finally:
        rabbit.stop()


def test_a_service_that_is_down_keeps_the_connection(settings: Settings) -> None:
    """Request after request on one keep-alive connection, each a 503 naming Redis: a dashboard
    polling through an outage is not cut off. (Each 503 used to close the connection, and a
    request sent as it closed was reset unanswered.)"""
    nothing_there = f"redis://127.0.0.1:{servers.free_port()}/0"
    down = settings.with_overrides(redis_url=nothing_there)
    supervisor = Supervisor(down, log_dir=Path(settings.home) / "logs")
    try:
        supervisor.start("api")
        host, port = down.api_address
        wait_until(lambda: answered(host, port) == 503, 60, "the API to answer /status")
        connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.connect()
        first = connection.sock
        for path in ["/status", "/runs", "/status", "/jobs?limit=5", "/status"]:
            connection.request("GET", path)
            answer = connection.getresponse()
            body = json.loads(answer.read())
            assert answer.status == 503 and body["service"] == "redis", (path, body)
            assert connection.sock is first, f"{path}: the connection was closed"
        connection.close()
        assert "Exception in ASGI application" not in supervisor.tail("api", 400)
    finally:
        supervisor.down(grace_s=10)


def answered(host: str, port: int) -> int:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"http://{host}:{port}/status", timeout=2).status_code
    return 0
