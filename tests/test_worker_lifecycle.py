"""SIGTERM drains in-flight work and exits 0; backpressure bounds the queue."""

from __future__ import annotations

import pytest

from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.messages import run_job
from lab.runtime.stores import Stores

from .conftest import cleanup, make_settings
from .helpers import assert_exactly_once, publish, queue_depth, settle, wait_until


def test_sigterm_finishes_what_is_in_hand_and_exits_0(
    lab: Supervisor, stores: Stores, settings: Settings, channel
) -> None:
    run_id = stores.runs.start(2000, 60)
    stores.runs.stop()
    for seq in range(2000):
        publish(channel, settings.queue, run_job(run_id, seq).to_json())
    lab.start("worker-1", "worker", ["--prefetch", "500", "--batch", "100"])
    wait_until(lambda: stores.runs.get(run_id).processed > 0, 20, "processing to start")
    assert lab.stop("worker-1") == 0
    run = stores.runs.get(run_id)
    # Nothing the worker held was lost: what it did not count is back in the queue.
    wait_until(
        lambda: queue_depth(settings, settings.queue) == 2000 - run.processed,
        10,
        "unprocessed deliveries back in the queue",
        lambda: f"depth {queue_depth(settings, settings.queue)}, run {run}",
    )
    lab.start("worker-2", "worker")
    wait_until(lambda: stores.runs.get(run_id).processed == 2000, 60, "all 2000 processed")
    assert_exactly_once(settings, stores, run_id, 2000)


@pytest.mark.slow
def test_backpressure_holds_the_queue_under_its_bound(es_url: str, tmp_path) -> None:
    settings = make_settings(es_url, tmp_path, backlog_limit=300)
    lab = Supervisor(settings, log_dir=tmp_path / "logs")
    try:
        lab.up(workers=0)
        client = LabClient(settings.api_url)
        stores = Stores.of(settings)
        run_id = client.run(5000, 600_000)["runId"]  # far faster than nobody can consume
        wait_until(lambda: queue_depth(settings, settings.queue) >= 300, 20, "the bound")
        depths = [queue_depth(settings, settings.queue) for _ in range(10)]
        assert max(depths) <= 300, depths
        assert stores.runs.get(run_id).enqueued <= 300
        lab.add_worker()
        settle(stores, run_id, 90)
        assert_exactly_once(settings, stores, run_id, 5000)
    finally:
        lab.down()
        cleanup(settings)


def test_per_message_kinds_run_at_most_concurrency_at_once(
    lab: Supervisor, stores: Stores, store, settings: Settings, channel
) -> None:
    """Six 2-second `sleep` jobs, concurrency 5: five start together, the sixth when one ends."""
    run_id = stores.runs.start(8, 60)
    stores.runs.stop()
    for seq in range(6):
        publish(
            channel,
            settings.queue,
            run_job(run_id, seq, kind="sleep", payload={"seconds": 2}).to_json(),
        )
    for seq in (6, 7):  # batchable jobs in the same batches are not held up by the sleepers
        publish(channel, settings.queue, run_job(run_id, seq).to_json())
    lab.start("worker-1", "worker")
    wait_until(lambda: stores.runs.get(run_id).processed == 8, 30, "all eight processed")
    store.refresh()
    hits = store.es.search(index=settings.es_index, size=10, query={"term": {"kind": "sleep"}})[
        "hits"
    ]["hits"]
    spans = sorted(
        (h["_source"]["result"]["startedMs"], h["_source"]["result"]["endedMs"]) for h in hits
    )
    assert len(spans) == 6
    first_five_start = spans[4][0] - spans[0][0]
    assert first_five_start < 1000, spans  # five at once
    assert spans[5][0] >= min(end for _, end in spans[:5]) - 50, spans  # the sixth waited
    fast = store.get(f"{run_id}-6")
    assert fast["processedAt"] < spans[0][1], "a batchable job waited behind the sleepers"
