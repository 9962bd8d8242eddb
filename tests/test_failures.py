"""Failures: retried with a delay, then dead-lettered; malformed bodies dead-lettered at once."""

from __future__ import annotations

import json

from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.messages import Job, run_job
from lab.runtime.store import MAPPINGS, Store
from lab.runtime.stores import Stores

from .helpers import publish, queue_depth, settle, wait_until


def dead_letters(settings: Settings, channel) -> list[tuple[bytes, dict]]:
    out = []
    while True:
        method, props, body = channel.basic_get(f"{settings.queue}.dead", auto_ack=True)
        if method is None:
            return out
        out.append((body, props.headers or {}))


def test_a_failing_job_is_retried_with_a_delay_then_dead_lettered(
    lab: Supervisor, stores: Stores, store: Store, settings: Settings, channel
) -> None:
    run_id = stores.runs.start(3, 60)  # the run record counts; the jobs are published by hand
    stores.runs.stop()
    lab.start("worker-1", "worker")
    publish(channel, settings.queue, run_job(run_id, 0).to_json())
    publish(channel, settings.queue, run_job(run_id, 1, payload={"failAttempts": 1}).to_json())
    publish(channel, settings.queue, run_job(run_id, 2, payload={"failAttempts": 9}).to_json())
    wait_until(
        lambda: queue_depth(settings, f"{settings.queue}.dead") == 1,
        30,
        "the hopeless job in the dead-letter queue",
    )
    wait_until(lambda: stores.runs.get(run_id).processed == 2, 10, "the other two processed")
    run = stores.runs.get(run_id)
    assert (run.processed, run.failed) == (2, 1)
    store.refresh()
    assert store.get(f"{run_id}-1")["attempt"] == 2
    assert store.get(f"{run_id}-2") is None
    [(body, headers)] = dead_letters(settings, channel)
    assert json.loads(body)["attempt"] == 3
    assert "injected failure on attempt 3" in headers["x-lab-error"]
    # attempts 1, 2, 3 with the ladder's 200 and 400 ms between them: the first failure time
    # travels with the retries, so this measures the backoff itself, not the worker's start.
    assert headers["x-lab-last-failed-ms"] - headers["x-lab-first-failed-ms"] >= 600, headers


def test_malformed_messages_are_dead_lettered_and_the_worker_keeps_consuming(
    lab: Supervisor, stores: Stores, store: Store, settings: Settings, channel
) -> None:
    lab.start("worker-1", "worker")
    for raw in (b"not json", b'{"kind": "index"}', b'{"jobId": "x", "kind": "nosuch"}', b"\xff"):
        publish(channel, settings.queue, raw)
    good = Job(jobId="single-1", runId=None, seq=None, kind="index")
    publish(channel, settings.queue, good.to_json())
    wait_until(
        lambda: queue_depth(settings, f"{settings.queue}.dead") == 4, 20, "four dead letters"
    )
    store.refresh()
    wait_until(lambda: store.get("single-1") is not None, 10, "the good job written", poll_s=0.5)
    reasons = [h["x-lab-error"] for _, h in dead_letters(settings, channel)]
    assert any("not JSON" in r for r in reasons)
    assert any("'jobId' is missing" in r for r in reasons)
    assert any("no handler for job kind 'nosuch'" in r for r in reasons)
    assert lab.children["worker-1"].running
    assert int(stores.redis.get(stores.keys.dead_lettered)) == 4


def test_a_batch_with_one_refused_document_acks_the_rest_and_retries_only_that_one(
    lab: Supervisor, stores: Stores, store: Store, settings: Settings, channel
) -> None:
    # A mapping on which one job's data cannot be indexed: Elasticsearch refuses that item only.
    mappings = {
        "properties": {
            **MAPPINGS["properties"],
            "result": {"properties": {"data": {"type": "long"}}},
        }
    }
    store.es.indices.create(index=settings.es_index, mappings=mappings)
    run_id = stores.runs.start(20, 60)
    stores.runs.stop()
    for seq in range(20):
        data = "not-a-number" if seq == 13 else seq
        publish(channel, settings.queue, run_job(run_id, seq, payload={"data": data}).to_json())
    lab.start("worker-1", "worker", ["--batch", "20", "--linger-ms", "500"])
    wait_until(
        lambda: queue_depth(settings, f"{settings.queue}.dead") == 1,
        30,
        "the refused job dead-lettered after its attempts",
    )
    settle(stores, run_id, 10)
    run = stores.runs.get(run_id)
    assert (run.processed, run.failed) == (19, 1)
    store.refresh()
    assert store.count(run_id) == 19
    docs = store.es.search(index=settings.es_index, size=50, query={"term": {"runId": run_id}})
    attempts = {h["_source"]["seq"]: h["_source"]["attempt"] for h in docs["hits"]["hits"]}
    assert set(attempts.values()) == {1}, "only the refused job may be retried"
    [(body, headers)] = dead_letters(settings, channel)
    assert json.loads(body)["seq"] == 13 and "elasticsearch refused" in headers["x-lab-error"]
