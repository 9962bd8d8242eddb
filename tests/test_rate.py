"""Rate: released jobs follow Y per minute, with no burst at start or after a restart."""

from __future__ import annotations

import time

import pytest

from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores

from .helpers import queue_depth, wait_until


def released(stores: Stores, run_id: str) -> int:
    run = stores.runs.get(run_id)
    return run.enqueued if run else 0


@pytest.mark.slow
def test_original_criterion_x10_y5_reaches_the_queue_at_5_per_minute(
    lab: Supervisor, settings: Settings, client: LabClient, stores: Stores
) -> None:
    """X=10, Y=5: one job at once, the next only 12 s later (no workers, so they stay queued)."""
    lab.up(workers=0)
    run_id = client.run(10, 5)["runId"]
    t0 = time.monotonic()
    wait_until(lambda: queue_depth(settings, settings.queue) == 1, 5, "the first job")
    while time.monotonic() - t0 < 10.5:
        assert queue_depth(settings, settings.queue) == 1
        time.sleep(0.5)
    wait_until(lambda: queue_depth(settings, settings.queue) == 2, 5, "the second job at ~12 s")
    assert 11.0 <= time.monotonic() - t0 <= 15.0
    wait_until(lambda: released(stores, run_id) == 2, 2, "the second release to be recorded")


@pytest.mark.slow
def test_y600_follows_the_rate_and_never_bursts_after_a_restart(
    lab: Supervisor, client: LabClient, stores: Stores
) -> None:
    lab.up(workers=0)
    run_id = client.run(10_000, 600)["runId"]  # 10 per second
    wait_until(lambda: released(stores, run_id) >= 1, 5, "the first release")
    t0 = time.monotonic()
    errors = []
    for second in range(1, 21):
        time.sleep(max(0.0, t0 + second - time.monotonic()))
        expected = 1 + 10 * (time.monotonic() - t0)
        errors.append(released(stores, run_id) - expected)
    print("errors", [round(e, 2) for e in errors])
    assert max(errors) <= 2  # never ahead of the rate: no burst
    # and on it: within 2 jobs every second but for a stalled tick's second or two on a busy
    # machine (3.5 jobs behind once, caught up by the next tick), within 5 % over the 20 s
    assert sum(e < -2 for e in errors) <= 2 and errors[-1] >= -10, errors

    # A restart (kill -9 and a new scheduler after its lease expires): it must not catch up.
    before_kill = released(stores, run_id)
    lab.kill("scheduler")
    # Nothing is released until the lease (2 s) expires and a new scheduler takes it.
    wait_until(
        lambda: not stores.redis.exists(stores.keys.scheduler_lease), 10, "the lease to expire"
    )
    assert released(stores, run_id) - before_kill <= 2
    lab.start("scheduler")
    base = released(stores, run_id)
    wait_until(lambda: released(stores, run_id) > base, 15, "releases after the restart")
    t1, n1 = time.monotonic(), released(stores, run_id)
    samples = []
    for second in range(1, 9):
        time.sleep(max(0.0, t1 + second - time.monotonic()))
        samples.append(released(stores, run_id) - n1 - 10 * (time.monotonic() - t1))
    assert max(samples) <= 3, samples  # no burst
    # and back at the rate over the 8 s (a tick stalled on a busy machine may lag one sample
    # by half a second, 4.5 jobs once; the next tick catches it up)
    assert samples[-1] >= -8, samples
