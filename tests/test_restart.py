"""kill -9 of any process mid-run loses nothing and counts nothing twice."""

from __future__ import annotations

import pytest

from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores

from .helpers import assert_exactly_once, settle, wait_until

pytestmark = pytest.mark.slow

X, Y = 5000, 30_000  # 500 jobs/s: about 10 s of releasing


def progressed(stores: Stores, run_id: str, field: str, at_least: int) -> bool:
    run = stores.runs.get(run_id)
    return run is not None and getattr(run, field) >= at_least


@pytest.mark.parametrize(
    ("victim", "field", "at_least"),
    [("worker-1", "processed", 1000), ("scheduler", "enqueued", 1000), ("api", "processed", 500)],
)
def test_kill_9_mid_run(
    lab: Supervisor,
    client: LabClient,
    stores: Stores,
    settings: Settings,
    victim: str,
    field: str,
    at_least: int,
) -> None:
    """kill -9 of the worker, the scheduler or the API once the run is under way, then a new one
    in its place: one document per job and `processed` exact."""
    lab.up(workers=1)
    run_id = client.run(X, Y)["runId"]
    wait_until(lambda: progressed(stores, run_id, field, at_least), 30, f"{at_least} {field}")
    lab.kill(victim)
    lab.start(victim)
    lab.wait_api()
    assert client.status()["runId"] == run_id
    settle(stores, run_id, 90)
    assert_exactly_once(settings, stores, run_id, X)
    # The delivery verdict says the same: nothing lost, nothing written twice (a redelivered
    # job may have run again; its document was not written again).
    verdict = client.verdict(run_id)
    assert verdict["released"] == verdict["processed"] == X
    assert verdict["lost"] == verdict["duplicated"] == verdict["unexpected"] == 0
    assert verdict["clean"], verdict


def test_two_schedulers_one_releases_and_the_other_takes_over(
    lab: Supervisor, client: LabClient, stores: Stores, settings: Settings
) -> None:
    lab.up(workers=1, scheduler=False)
    lab.start("scheduler-a", "scheduler")
    wait_until(lambda: stores.redis.get(stores.keys.scheduler_lease), 10, "a lease holder")
    lab.start("scheduler-b", "scheduler")
    run_id = client.run(X, Y)["runId"]
    wait_until(lambda: progressed(stores, run_id, "enqueued", 1000), 30, "1000 released")
    assert "releasing run" not in lab.tail("scheduler-b", 50), "the standby released too"
    lab.kill("scheduler-a")
    wait_until(
        lambda: "releasing run" in lab.tail("scheduler-b", 50), 15, "the standby to take over"
    )
    settle(stores, run_id, 90)
    assert_exactly_once(settings, stores, run_id, X)


def test_a_worker_heartbeat_shows_in_status_and_vanishes_when_it_dies(
    lab: Supervisor, client: LabClient
) -> None:
    lab.up(workers=2)
    wait_until(lambda: len(client.status()["workers"]) == 2, 15, "two workers in /status")
    pids = {w["pid"] for w in client.status()["workers"]}
    assert lab.pid("worker-1") in pids
    lab.kill("worker-1")
    wait_until(
        lambda: len(client.status()["workers"]) == 1,
        15,
        "the killed worker to vanish (heartbeat TTL 3 s)",
    )
    lab.stop("worker-2")  # graceful: gone at once
    assert client.status()["workers"] == []
