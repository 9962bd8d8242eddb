"""At-least-once delivery, exactly-once effect: one document per jobId and exact `processed`."""

from __future__ import annotations

from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.messages import run_job
from lab.runtime.state import State
from lab.runtime.store import Store

from .helpers import assert_exactly_once, publish, settle, wait_until


def test_a_run_flows_end_to_end_and_es_count_grows(
    lab: Supervisor, client: LabClient, state: State, store: Store, settings: Settings
) -> None:
    lab.up(workers=1)
    run_id = client.run(600, 6000)["runId"]  # 100/s: about 6 s
    counts = []

    def grown() -> bool:
        store.refresh()
        counts.append(store.count(run_id))
        return 0 < counts[-1] < 600 and len(set(counts)) >= 2

    wait_until(grown, 30, "the document count to grow during the run", lambda: str(counts))
    settle(state, run_id, 60)
    assert_exactly_once(settings, state, run_id, 600)
    status = client.status()
    assert status["state"] == "completed" and status["running"] is False
    assert status["processed"] == status["enqueued"] == status["xTotal"] == 600
    assert client.runs()[0]["runId"] == run_id


def test_a_duplicate_publish_leaves_one_document_and_the_count_unchanged(
    lab: Supervisor, client: LabClient, state: State, settings: Settings, channel
) -> None:
    lab.up(workers=1)
    run_id = client.run(50, 60_000)["runId"]
    settle(state, run_id, 30)
    assert_exactly_once(settings, state, run_id, 50)
    store = Store(settings)
    before = {seq: store.get(f"{run_id}-{seq}")["processedAt"] for seq in (0, 7, 49)}
    for seq in (0, 7, 7, 49):  # the same jobs again, one of them twice
        publish(channel, settings.queue, run_job(run_id, seq).to_json())

    def rewritten() -> bool:
        """Every duplicate was processed: its document was written again, later."""
        store.refresh()
        return all(store.get(f"{run_id}-{s}")["processedAt"] > t for s, t in before.items())

    wait_until(rewritten, 20, "the duplicates to be processed")
    store.close()
    assert_exactly_once(settings, state, run_id, 50)


def test_the_bitmap_counts_exactly_under_duplicate_delivery(state: State) -> None:
    """The counting script itself, straight against Redis: duplicates within and across calls."""
    run_id = state.start_run(10, 60)
    assert state.record({run_id: ([0, 1, 1, 2], [])}) == (3, 0)
    assert state.record({run_id: ([2, 3], [4])}) == (1, 1)
    assert state.record({run_id: ([4], [3, 4])}) == (1, -1)  # 4 moves from failed to done
    assert state.record({"no-such-run": ([0], [])}) == (0, 0)
    run = state.run(run_id)
    assert (run.processed, run.failed) == (5, 0)
    assert state.redis.strlen(state.keys.run_done(run_id)) == 1  # 10 jobs: one byte


def test_latency_counts_each_job_once_whether_its_batch_is_added_up_or_not(state: State) -> None:
    """A batch whose every job is new is counted added up; one with a job seen before (twice in
    the batch, or counted earlier) job by job: either way each job's latency once."""
    import time

    from lab.runtime import latency

    run_id = state.start_run(100, 60)
    now = time.time() * 1000

    def batch(seqs: list[int]) -> dict[str, latency.RunTimings]:
        jobs = [(s, 1, int(now - 500 - s), int(now - 400 - s), now - 10.0, 0.0) for s in seqs]
        return {run_id: latency.RunTimings(1, ["index"], now, jobs)}

    def counted() -> int:
        return latency.histograms(state.redis.hgetall(state.keys.run_latency(run_id)))[
            "endToEnd"
        ].count

    assert state.record({run_id: (list(range(0, 40)), [])}, None, batch(list(range(0, 40)))) == (
        40,
        0,
    )
    assert counted() == 40  # all new: added up
    again = [*range(30, 60), 55]  # ten seen before, 55 twice: job by job
    assert state.record({run_id: (again, [])}, None, batch(again)) == (20, 0)
    assert counted() == 60
    failing = [60, 61]
    assert state.record({run_id: ([], failing)}, None, batch(failing)) == (0, 2)
    assert state.record({run_id: ([], [61, 62])}, None, batch([61, 62])) == (0, 1)
    assert counted() == 63 == state.run(run_id).processed + state.run(run_id).failed
