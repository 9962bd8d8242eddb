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
from lab.runtime import broker, handlers
from lab.runtime.store import Store
from lab.runtime.stores import Stores

# Drills that run a pipeline at full speed and judge what they measured: with pytest-xdist
# (`make test` runs the suite on several workers) they run one at a time, on one worker, beside
# the lighter tests, so two of them never measure each other. Each of these modules says so
# itself (`pytestmark = ONE_AT_A_TIME`): a marker added here, after collection, comes too late
# for xdist, which spread them over every worker.
DRILLS = ("tests/test_reports.py", "tests/test_bench.py")
ONE_AT_A_TIME = pytest.mark.xdist_group("drills")

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest tests first (drills, then those marked slow), so that no worker is left with
    a long test at the end while the others wait."""
    items.sort(key=lambda item: (not item.nodeid.startswith(DRILLS),
                                 item.get_closest_marker("slow") is None))  # fmt: skip
    # xdist groups by a suffix it writes into each node id (`…@drills`); a pytest that ignores
    # it (9.2, pytest-xdist#1386) spreads the drills over every worker without a word.
    if getattr(config.option, "loadgroup", False):  # set on xdist's workers
        ungrouped = [i.nodeid for i in items if i.nodeid.startswith(DRILLS) and "@" not in i.nodeid]
        if ungrouped:
            raise pytest.UsageError(f"xdist did not group the drills ({ungrouped[0]}): "
                                    "install the pytest pyproject.toml pins")  # fmt: skip


@pytest.fixture(autouse=True)
def _one_tests_retry_ladder(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker built in a test tells the kinds its retry ladder for the whole process
    (`handlers.use_ladder`); put it back after each test, so a kind loaded by a later test on the
    same xdist worker is not judged against a ladder that test never set."""
    monkeypatch.setattr(handlers, "_ladder", handlers._ladder)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ARG001
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def stores(settings: Settings) -> Stores:
    return Stores.of(settings)


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
