"""Pause and resume on real services: a paused queue is left alone by every worker (also one
started afterwards) until it is resumed, a paused run releases nothing until it is resumed, and
the counts come out exact; `/status` says what is paused."""

from __future__ import annotations

import httpx

from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores
from lab.wait import poll

from .helpers import assert_exactly_once, queue_depth, settle, wait_until


def test_a_paused_queue_keeps_its_jobs_through_a_worker_restart_until_resumed(
    lab: Supervisor, settings: Settings, client: LabClient, stores: Stores
) -> None:
    lab.up(workers=1)
    assert client.queue_action(settings.queue, "pause") == {
        "queue": settings.queue, "paused": True, "changed": True,
    }  # fmt: skip
    wait_until(
        lambda: [w["paused"] for w in client.status()["workers"]] == [[settings.queue]],
        15,
        "the worker to apply the pause",
        lambda: str(client.status()["workers"]),
    )
    run_id = client.run(300, 600_000)["runId"]
    wait_until(lambda: stores.runs.get(run_id).enqueued == 300, 30, "the run to be released")
    wait_until(lambda: queue_depth(settings, settings.queue) == 300, 10, "300 jobs waiting")
    assert stores.runs.get(run_id).processed == 0
    status = client.status()
    assert status["pausedQueues"] == [settings.queue] and status["processed"] == 0

    # A new worker (after a kill -9) reads the pause from Redis before it consumes anything.
    lab.kill("worker-1")
    lab.start("worker-1", role="worker")
    wait_until(lambda: any(w["paused"] for w in client.status()["workers"]), 15, "the new worker")
    assert queue_depth(settings, settings.queue) == 300 and stores.runs.get(run_id).processed == 0
    queues = {q["name"]: q for q in client.queues()["queues"]}
    assert queues[settings.queue]["paused"] and not queues[f"{settings.queue}.long"]["paused"]

    client.queue_action(settings.queue, "resume")
    settle(stores, run_id, 60)
    assert_exactly_once(settings, stores, run_id, 300)
    assert client.status()["pausedQueues"] == []


def test_a_paused_run_releases_nothing_until_resumed_and_ends_exact(
    lab: Supervisor, settings: Settings, client: LabClient, stores: Stores
) -> None:
    lab.up(workers=1)
    run_id = client.run(400, 6000)["runId"]  # 100 a second
    wait_until(lambda: stores.runs.get(run_id).enqueued >= 50, 20, "the first releases")
    answer = client.pause_run(True)
    assert answer["runId"] == run_id and answer["paused"] and answer["changed"]
    assert client.pause_run(True)["changed"] is False  # again: nothing to change
    assert client.status()["paused"] is True

    # What was published before the pause still runs; after that nothing more is released.
    def drained() -> bool:
        run = stores.runs.get(run_id)
        return queue_depth(settings, settings.queue) == 0 and run.processed == run.enqueued

    wait_until(drained, 30, "the jobs released before the pause to run")

    # Jobs granted just before the pause may still be on their way to their confirms (recorded
    # on the scheduler's next tick, later on a busy machine): the count settles once those
    # arrive, and from then on nothing more may be released.
    def settled() -> bool:
        before = stores.runs.get(run_id).enqueued
        return drained() and not poll(lambda: stores.runs.get(run_id).enqueued != before, 1.0, 0.1)

    wait_until(settled, 20, "the released count to settle")
    held = stores.runs.get(run_id).enqueued
    assert held < 400 and stores.runs.get(run_id).state == "running"
    grew = poll(lambda: stores.runs.get(run_id).enqueued != held, 1.5, 0.1)
    assert not grew, f"released while paused: {held} → {stores.runs.get(run_id).enqueued}"

    client.pause_run(False)
    settle(stores, run_id, 60)
    assert_exactly_once(settings, stores, run_id, 400)
    assert client.status()["paused"] is False


def test_pausing_names_what_is_wrong(lab: Supervisor, settings: Settings) -> None:
    lab.start("api")
    lab.wait_api()
    http = httpx.Client(base_url=settings.api_url, timeout=10)
    for path in ("/queues/nosuch/pause", f"/queues/{settings.queue}.dead/pause"):
        answer = http.post(path)
        assert answer.status_code == 404 and "no queue" in answer.json()["error"], path
    assert http.post("/queues/%2Fetc%2Fpasswd/purge").status_code == 404
    for path in ("/run/pause", "/run/resume"):
        answer = http.post(path)
        assert answer.status_code == 409 and "no run is active" in answer.json()["error"]
    assert http.get("/status").json()["pausedQueues"] == []


def test_a_pause_holds_from_the_moment_it_answered(
    lab: Supervisor, settings: Settings, client: LabClient
) -> None:
    """A single job created right after `pause` answered never starts, though the worker has
    not yet heard of the pause from its heartbeat: the start itself checks it."""
    lab.up(workers=1)
    single = f"{settings.queue}.single"
    quick = {"durationSeconds": 0.2, "stepIntervalSeconds": 0.1}
    warm = client.create_job("agent", quick)["id"]  # the worker consumes .single
    wait_until(lambda: client.job(warm)["state"] == "completed", 30, "a first job to run")
    client.queue_action(single, "pause")
    held = [client.create_job("agent", quick)["id"] for _ in range(3)]
    started = poll(lambda: any(client.job(i)["state"] != "queued" for i in held), 3.0, 0.1)
    assert not started, [client.job(i)["state"] for i in held]
    client.queue_action(single, "resume")
    wait_until(lambda: all(client.job(i)["state"] == "completed" for i in held), 60,
               "the held jobs to run after the resume")  # fmt: skip
