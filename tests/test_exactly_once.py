"""At-least-once delivery, exactly-once effect: one document per jobId and exact `processed`."""

from __future__ import annotations

import pytest

from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.messages import run_job
from lab.runtime.store import Store
from lab.runtime.stores import Stores

from .helpers import assert_exactly_once, publish, settle, wait_until


@pytest.mark.slow
def test_a_run_flows_end_to_end_and_es_count_grows(
    lab: Supervisor, client: LabClient, stores: Stores, store: Store, settings: Settings
) -> None:
    lab.up(workers=1)
    run_id = client.run(600, 6000)["runId"]  # 100/s: about 6 s
    counts = []

    def grown() -> bool:
        if not store.es.indices.exists(index=store.index):  # the worker makes it as it starts
            return False
        store.refresh()
        counts.append(store.count(run_id))
        return 0 < counts[-1] < 600 and len(set(counts)) >= 2

    wait_until(grown, 30, "the document count to grow during the run", lambda: str(counts))
    settle(stores, run_id, 60)
    assert_exactly_once(settings, stores, run_id, 600)
    status = client.status()
    assert status["state"] == "completed" and status["running"] is False
    assert status["processed"] == status["enqueued"] == status["xTotal"] == 600
    assert client.runs()[0]["runId"] == run_id


def test_a_duplicate_publish_leaves_one_document_and_the_count_unchanged(
    lab: Supervisor, client: LabClient, stores: Stores, settings: Settings, channel
) -> None:
    lab.up(workers=1)
    run_id = client.run(50, 60_000)["runId"]
    settle(stores, run_id, 30)
    assert_exactly_once(settings, stores, run_id, 50)
    store = Store(settings)
    before = {seq: store.get(f"{run_id}-{seq}")["processedAt"] for seq in (0, 7, 49)}
    for seq in (0, 7, 7, 49):  # the same jobs again, one of them twice
        publish(channel, settings.queue, run_job(run_id, seq).to_json())
    # Every duplicate is run, and seen running again; none writes its document again.
    wait_until(lambda: stores.runs.known(run_id).executedAgain == 3, 20,
               "the duplicates to be processed")  # fmt: skip
    store.refresh()
    for seq, at in before.items():
        assert store.get(f"{run_id}-{seq}")["processedAt"] == at
    versions = store.es.search(index=settings.es_index, version=True, size=100,
                               query={"term": {"runId": run_id}})["hits"]["hits"]  # fmt: skip
    assert {hit["_version"] for hit in versions} == {1}  # one effect each
    store.close()
    assert_exactly_once(settings, stores, run_id, 50)


def test_the_bitmap_counts_exactly_under_duplicate_delivery(stores: Stores) -> None:
    """The counting script itself, straight against Redis: duplicates within and across calls."""
    run_id = stores.runs.start(10, 60)
    assert stores.counting.record({run_id: ([0, 1, 1, 2], [])}) == (3, 0)
    assert stores.counting.record({run_id: ([2, 3], [4])}) == (1, 1)
    assert stores.counting.record({run_id: ([4], [3, 4])}) == (1, -1)  # 4 moves from failed to done
    assert stores.counting.record({"no-such-run": ([0], [])}) == (0, 0)
    run = stores.runs.get(run_id)
    assert (run.processed, run.failed) == (5, 0)
    assert stores.redis.strlen(stores.keys.run_done(run_id)) == 1  # 10 jobs: one byte


def test_latency_counts_each_job_once_whether_its_batch_is_added_up_or_not(stores: Stores) -> None:
    """A batch whose every job is new is counted added up; one with a job seen before (twice in
    the batch, or counted earlier) job by job: either way each job's latency once."""
    import time

    from lab.runtime import latency

    run_id = stores.runs.start(100, 60)
    now = time.time() * 1000

    def batch(seqs: list[int]) -> dict[str, latency.RunTimings]:
        jobs = [(s, 1, int(now - 500 - s), int(now - 400 - s), now - 10.0, 0.0) for s in seqs]
        return {run_id: latency.RunTimings(1, ["index"], now, jobs)}

    def counted() -> int:
        return latency.histograms(stores.redis.hgetall(stores.keys.run_latency(run_id)))[
            "endToEnd"
        ].count

    assert stores.counting.record(
        {run_id: (list(range(0, 40)), [])}, None, batch(list(range(0, 40)))
    ) == (
        40,
        0,
    )
    assert counted() == 40  # all new: added up
    again = [*range(30, 60), 55]  # ten seen before, 55 twice: job by job
    assert stores.counting.record({run_id: (again, [])}, None, batch(again)) == (20, 0)
    assert counted() == 60
    failing = [60, 61]
    assert stores.counting.record({run_id: ([], failing)}, None, batch(failing)) == (0, 2)
    assert stores.counting.record({run_id: ([], [61, 62])}, None, batch([61, 62])) == (0, 1)
    assert counted() == 63 == stores.runs.get(run_id).processed + stores.runs.get(run_id).failed
