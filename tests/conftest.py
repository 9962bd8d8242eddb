"""Fixtures that start real services and real lab processes, and always clean up.

Redis and RabbitMQ are the machine's shared ones (127.0.0.1:6379 and :5672 unless LAB_REDIS_URL
/ LAB_AMQP_URL say otherwise); every test gets its own key prefix, queue and index, and deletes
them afterwards. The Elasticsearch-API server is a private noida-db started once per session on a
free port.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from lab import config
from lab.client import LabClient
from lab.config import Settings
from lab.ops import servers
from lab.ops.reset import isolated, reset
from lab.ops.supervisor import Supervisor
from lab.runtime import broker
from lab.runtime.state import State
from lab.runtime.store import Store

BASE = config.load({k: v for k, v in os.environ.items() if k in ("LAB_REDIS_URL", "LAB_AMQP_URL")})


@pytest.fixture(scope="session")
def es_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not servers.redis_ok(BASE.redis_url):
        pytest.fail(f"Redis does not answer at {BASE.redis_url}")
    if not servers.amqp_ok(BASE.amqp_url):
        pytest.fail(f"RabbitMQ does not answer at {BASE.amqp_url}")
    home = tmp_path_factory.mktemp("es")
    local = servers.start_elasticsearch(servers.free_port(), home)
    yield local.url
    local.stop()


def make_settings(es_url: str, home: Path, **overrides: object) -> Settings:
    """A namespace of this test's own (the one `isolated` the bench and drills use), on the
    shared Redis and RabbitMQ and the session's Elasticsearch, with quick heartbeats."""
    base = BASE.with_overrides(
        es_url=es_url,
        home=str(home),
        heartbeat_s=0.5,
        heartbeat_ttl_s=3.0,
        lease_ms=2000,
        retry_ladder_ms="200,400,800",
        sse_heartbeat_s=1.0,
    )
    return isolated(base, "labtest", **overrides)


def cleanup(settings: Settings) -> None:
    reset(settings)


@pytest.fixture
def settings(es_url: str, tmp_path: Path) -> Iterator[Settings]:
    s = make_settings(es_url, tmp_path)
    yield s
    cleanup(s)


@pytest.fixture
def lab(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Supervisor]:
    """A supervisor for this test's processes; on failure, the tail of every log is shown."""
    supervisor = Supervisor(settings, log_dir=Path(settings.home) / "logs")
    yield supervisor
    supervisor.down(grace_s=10)
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for child in supervisor.children.values():
            print(f"\n----- {child.name} log -----\n{supervisor.tail(child.name, 40)}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ARG001
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def state(settings: Settings) -> State:
    return State(settings)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings)
    yield s
    s.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[LabClient]:
    c = LabClient(settings.api_url)
    yield c
    c.close()


@pytest.fixture
def channel(settings: Settings) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """A channel on the test's broker with the test's topology declared."""
    connection = broker.connect(settings.amqp_url, "lab-test")
    ch = connection.channel()
    ch.confirm_delivery()
    broker.Topology.of(settings).declare(ch)
    yield ch
    if connection.is_open:
        connection.close()
