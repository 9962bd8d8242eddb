"""Single jobs on real services: concurrency, cancel, retry, delete, the error answers, and the
per-job event stream (order, heartbeat, resume)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from lab.client import ApiError, LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.store import Store
from lab.runtime.stores import Stores

from .helpers import settle, wait_until

FAST = {"durationSeconds": 2, "stepIntervalSeconds": 0.5}


def ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000


def wait_state(client: LabClient, job_id: str, states: set[str], timeout_s: float = 60) -> dict:
    def reached() -> Any:
        job = client.job(job_id)
        return job if job["state"] in states else None

    return wait_until(
        reached, timeout_s, f"job {job_id} to be {states}", lambda: str(client.job(job_id))
    )


def start(lab: Supervisor, workers: int = 1, concurrency: int = 5) -> None:
    lab.start("api")
    for n in range(1, workers + 1):
        lab.start(f"worker-{n}", role="worker", args=["--concurrency", str(concurrency)])
    lab.wait_api()


@pytest.mark.slow
def test_six_agent_jobs_on_one_worker_run_five_at_once(lab: Supervisor, client: LabClient) -> None:
    start(lab)
    ids = [client.create_job("agent", FAST)["id"] for _ in range(6)]
    jobs = [wait_state(client, i, {"completed"}) for i in ids]
    jobs.sort(key=lambda j: ms(j["startedAt"]))
    first_end = min(ms(j["finishedAt"]) for j in jobs[:5])
    # Five start together (well before any could finish), the sixth only when one has ended.
    assert ms(jobs[4]["startedAt"]) < first_end, jobs
    assert ms(jobs[5]["startedAt"]) >= first_end - 5, jobs
    assert all(j["progress"] == 100 and j["result"]["steps"] == 4 for j in jobs)


def test_waiting_single_jobs_start_highest_priority_first(
    lab: Supervisor, client: LabClient, settings: Settings
) -> None:
    """Nine jobs wait with no worker, created low first and high last; one worker running one
    at a time starts the three high ones first, then normal, then low, each group in the order
    it was created."""
    lab.start("api")
    lab.wait_api()
    quick = {"durationSeconds": 0.2, "stepIntervalSeconds": 0.1}
    created = {
        level: [client.create_job("agent", quick, priority=level)["id"] for _ in range(3)]
        for level in ("low", "normal", "high")
    }
    assert {client.job(i)["priority"] for i in created["high"]} == {"high"}
    assert client.create_job("agent", quick)["priority"] == "normal"  # the default
    lab.start("worker-1", role="worker", args=["--concurrency", "1"])
    every = [i for ids in created.values() for i in ids]
    wait_until(lambda: all(client.job(i)["state"] == "completed" for i in every), 90,
               "every job to complete")  # fmt: skip
    started = sorted(every, key=lambda i: ms(client.job(i)["startedAt"]))
    assert started[:3] == created["high"] and started[3:6] == created["normal"]
    assert started[6:] == created["low"]


def test_a_bad_priority_is_named(lab: Supervisor, settings: Settings) -> None:
    lab.start("api")
    lab.wait_api()
    answer = httpx.post(f"{settings.api_url}/jobs", json={"kind": "agent", "priority": "urgent"})
    assert answer.status_code == 422 and "priority" in answer.json()["error"]


def test_two_workers_run_ten_at_once(lab: Supervisor, client: LabClient) -> None:
    start(lab, workers=2)
    wait_until(lambda: len(client.status()["workers"]) == 2, 30, "two workers to announce")
    ids = [client.create_job("agent", FAST)["id"] for _ in range(10)]
    jobs = [wait_state(client, i, {"completed"}) for i in ids]
    first_end = min(ms(j["finishedAt"]) for j in jobs)
    assert all(ms(j["startedAt"]) < first_end for j in jobs), jobs
    assert len({j["worker"] for j in jobs}) == 2


def test_cancel_a_queued_and_a_running_job(
    lab: Supervisor, client: LabClient, store: Store
) -> None:
    start(lab, concurrency=1)
    running = client.create_job("agent", {"durationSeconds": 30, "stepIntervalSeconds": 0.25})
    queued = client.create_job("agent", FAST)
    wait_until(lambda: client.job(running["id"])["progress"] > 0, 30, "the first job to step")

    assert client.cancel_job(queued["id"])["state"] == "cancelled"
    answer = httpx.post(f"{client.api_url}/jobs/{running['id']}/cancel")
    assert answer.status_code == 202 and answer.json()["cancelRequested"] is True
    done = wait_state(client, running["id"], {"cancelled"}, timeout_s=10)
    assert done["progress"] < 100 and done["finishedAt"]
    # The worker is free again, and the cancelled queued job never ran.
    after = client.create_job("agent", {"durationSeconds": 0.5, "stepIntervalSeconds": 0.25})
    wait_state(client, after["id"], {"completed"})
    never = client.job(queued["id"])
    assert never["state"] == "cancelled" and never["startedAt"] is None
    assert store.get(queued["id"]) is None and store.get(running["id"]) is None

    for job_id in (queued["id"], running["id"], after["id"]):
        with pytest.raises(ApiError) as exc:
            client.cancel_job(job_id)
        assert exc.value.status == 409

    # A cancelled job can be retried: attempt 2 runs to the end.
    retried = client.retry_job(queued["id"])
    # Queued again; a free worker may already have started it by the time the answer is read.
    assert retried["state"] in ("queued", "active") and retried["attempt"] == 2
    assert wait_state(client, queued["id"], {"completed"})["attempt"] == 2
    assert store.get(queued["id"])["attempt"] == 2


def test_retries_automatically_then_by_hand(
    lab: Supervisor, client: LabClient, store: Store
) -> None:
    start(lab)
    step = {"durationSeconds": 1, "stepIntervalSeconds": 0.25}
    # Automatic: attempts 1 and 2 fail, the third (the last allowed) completes.
    auto = client.create_job("agent", {**step, "failAtStep": 2, "failAttempts": 2}, attempts=3)
    # By hand: one attempt allowed, it fails; Retry gives attempt 2, which completes.
    manual = client.create_job("agent", {**step, "failAtStep": 1, "failAttempts": 1}, attempts=1)

    done = wait_state(client, auto["id"], {"completed", "failed"})
    assert done["state"] == "completed" and done["attempt"] == 3, done
    messages = [line["message"] for line in done["log"]]
    assert sum("failed" in m and "attempt" in m for m in messages) == 2, messages

    failed = wait_state(client, manual["id"], {"completed", "failed"})
    assert failed["state"] == "failed" and "element not found" in failed["error"], failed
    with pytest.raises(ApiError) as exc:
        client.cancel_job(manual["id"])
    assert exc.value.status == 409
    client.retry_job(manual["id"])
    done = wait_state(client, manual["id"], {"completed", "failed"})
    assert done["state"] == "completed" and done["attempt"] == 2, done
    assert store.get(manual["id"])["attempt"] == 2
    with pytest.raises(ApiError) as exc:
        client.retry_job(manual["id"])
    assert exc.value.status == 409


def test_delete(lab: Supervisor, client: LabClient, store: Store) -> None:
    lab.start("api")
    lab.wait_api()
    # Queued with no worker yet: deleting it means the worker skips its message.
    doomed = client.create_job("agent", FAST)
    assert client.delete_job(doomed["id"]) == {"deleted": doomed["id"], "document": "none"}
    lab.start("worker-1", role="worker")
    running = client.create_job("agent", {"durationSeconds": 30, "stepIntervalSeconds": 0.25})
    wait_state(client, running["id"], {"active"})
    with pytest.raises(ApiError) as exc:
        client.delete_job(running["id"])
    assert exc.value.status == 409
    client.cancel_job(running["id"])
    wait_state(client, running["id"], {"cancelled"})
    client.delete_job(running["id"])

    kept = client.create_job("agent", {"durationSeconds": 0.5, "stepIntervalSeconds": 0.25})
    wait_state(client, kept["id"], {"completed"})
    ids = {j["id"] for j in client.jobs(limit=500)["jobs"]}
    assert ids == {kept["id"]}
    for job_id in (doomed["id"], running["id"]):
        with pytest.raises(ApiError) as exc:
            client.job(job_id)
        assert exc.value.status == 404
    store.refresh()
    assert store.get(doomed["id"]) is None  # it never ran
    # The worker moved on past the deleted job's message: the queue holds nothing.
    overview = httpx.get(f"{client.api_url}/admin/overview").json()
    assert all(q["ready"] == 0 for q in overview["queues"] if not q["name"].endswith(".dead"))
    # A finished job goes with its result document.
    assert store.get(kept["id"]) is not None
    assert client.delete_job(kept["id"])["document"] == "deleted"
    assert store.get(kept["id"]) is None and client.jobs()["jobs"] == []


def test_listing_filters_and_pages(lab: Supervisor, client: LabClient) -> None:
    start(lab)
    quick = {"durationSeconds": 0.2, "stepIntervalSeconds": 0.1}
    made = [client.create_job("agent", quick)["id"] for _ in range(5)]
    failing = client.create_job("agent", {**quick, "failAtStep": 1}, attempts=1)["id"]
    for job_id in [*made, failing]:
        wait_state(client, job_id, {"completed", "failed"})

    page1 = client.jobs(limit=4)
    page2 = client.jobs(limit=4, cursor=page1["nextCursor"])
    listed = [j["id"] for j in page1["jobs"] + page2["jobs"]]
    assert listed == [failing, *reversed(made)], "newest first, no repeats across pages"
    assert page2["nextCursor"] is None
    assert [j["id"] for j in client.jobs(state="failed")["jobs"]] == [failing]
    assert len(client.jobs(state="completed", kind="agent")["jobs"]) == 5
    assert client.jobs(kind="index")["jobs"] == []
    counts = httpx.get(f"{client.api_url}/admin/overview").json()["counts"]
    assert counts["completed"] == 5 and counts["failed"] == 1 and counts["deadLettered"] == 1


def test_a_runs_jobs_are_shown_read_only(
    lab: Supervisor, client: LabClient, stores: Stores
) -> None:
    start(lab)
    lab.start("scheduler")
    run_id = client.run(5, 6000)["runId"]
    settle(stores, run_id, 60)
    # Search sees documents after Elasticsearch's refresh, as with a real cluster.
    Store(stores.settings).refresh()
    listed = client.jobs(runId=run_id, limit=3)
    again = client.jobs(runId=run_id, limit=3, cursor=listed["nextCursor"])
    seqs = [j["seq"] for j in listed["jobs"] + again["jobs"]]
    assert sorted(seqs) == [0, 1, 2, 3, 4] and again["nextCursor"] is None
    job = client.job(f"{run_id}-3")
    assert job["state"] == "completed" and job["runId"] == run_id
    for action in (client.cancel_job, client.retry_job, client.delete_job):
        with pytest.raises(ApiError) as exc:
            action(f"{run_id}-3")
        assert exc.value.status == 409 and "belongs to a run" in str(exc.value)


def _snapshot(settings: Settings) -> dict[str, Any]:
    stores = Stores.of(settings)
    return {
        key: stores.redis.type(key) for key in stores.redis.scan_iter(f"{settings.prefix}:job*")
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "kind"),
        ({"kind": "nosuch"}, "kind"),
        ({"kind": "Bad Kind!"}, "kind"),
        ({"kind": 7}, "kind"),
        ({"kind": "agent", "payload": [1]}, "payload"),
        ({"kind": "agent", "attempts": 0}, "attempts"),
        ({"kind": "agent", "attempts": "3"}, "attempts"),
        ({"kind": "agent", "attempts": 21}, "attempts"),
        ({"kind": "agent", "priority": 1}, "priority"),
        ({"kind": "agent", "payload": {"durationSeconds": -1}}, "payload.durationSeconds"),
        ({"kind": "agent", "payload": {"stepIntervalSeconds": "1"}}, "payload.stepIntervalSeconds"),
        ({"kind": "agent", "payload": {"failRate": 2}}, "payload.failRate"),
        ({"kind": "agent", "payload": {"failAtStep": 0}}, "payload.failAtStep"),
        ({"kind": "agent", "payload": {"clicks": 3}}, "payload.clicks"),
    ],
)
def test_bad_job_bodies_get_422_naming_the_field(
    lab: Supervisor, settings: Settings, client: LabClient, body: dict, field: str | None
) -> None:
    lab.start("api")
    lab.wait_api()
    before = _snapshot(settings)
    answer = httpx.post(f"{client.api_url}/jobs", json=body)
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["fields"], answer.json()
    assert field.split(".")[-1] in answer.json()["error"]
    assert _snapshot(settings) == before


def test_not_found_and_bad_requests(lab: Supervisor, settings: Settings, client: LabClient) -> None:
    lab.start("api")
    lab.wait_api()
    base = client.api_url
    for method, path in [
        ("GET", "/jobs/nope"),
        ("POST", "/jobs/nope/cancel"),
        ("POST", "/jobs/nope/retry"),
        ("DELETE", "/jobs/nope"),
        ("GET", "/jobs/nope/stream"),
    ]:
        answer = httpx.request(method, base + path)
        assert answer.status_code == 404 and "nope" in answer.json()["error"], (method, path)
    job = client.create_job("agent", FAST)  # no worker: it stays queued
    for method, path, status, fields in [
        ("POST", f"/jobs/{job['id']}/retry", 409, None),
        ("GET", "/jobs?state=sleeping", 422, ["state"]),
        ("GET", "/jobs?limit=0", 422, ["limit"]),
        ("GET", "/jobs?kind=NO!", 422, ["kind"]),
        ("GET", "/jobs?runId=r&cursor=zzz", 422, ["cursor"]),
    ]:
        answer = httpx.request(method, base + path)
        assert answer.status_code == status, (path, answer.text)
        if fields:
            assert answer.json()["fields"] == fields
    answer = httpx.get(f"{base}/jobs/{job['id']}/stream", headers={"Last-Event-ID": "x"})
    assert answer.status_code == 422 and answer.json()["fields"] == ["Last-Event-ID"]
    assert client.job(job["id"])["state"] == "queued"


def _events(client: LabClient, job_id: str, last_id: str | None = None, stop_after: int = 0):
    """The job's stream: data events (and heartbeats) until it ends or `stop_after` events."""
    got: list[dict] = []
    for event in client.follow_job(job_id, last_id):
        got.append(event)
        if stop_after and len([e for e in got if "data" in e]) == stop_after:
            break
    return got


def test_job_stream_in_order_with_heartbeat_and_exact_resume(
    lab: Supervisor, client: LabClient
) -> None:
    start(lab)  # the test settings send a heartbeat every second
    job = client.create_job("agent", {"durationSeconds": 6, "stepIntervalSeconds": 1.5})

    first = _events(client, job["id"], stop_after=4)
    data = [e for e in first if "data" in e]
    resumed = _events(client, job["id"], last_id=data[-1]["id"])
    whole = _events(client, job["id"])  # after the end: the whole history, then the end

    whole_ids = [e["id"] for e in whole if "data" in e]
    seen = [e["id"] for e in data] + [e["id"] for e in resumed if "data" in e]
    assert seen == whole_ids, "the reconnect got exactly the events it missed"
    events = [e["data"] for e in whole if "data" in e]
    assert [e["state"] for e in events][:2] == ["queued", "active"]
    assert events[-1]["state"] == "completed"
    progress = [e["progress"] for e in events if e["state"] == "active"]
    assert progress == sorted(progress) and progress[-1] == 100
    steps = [e["message"] for e in events if e["message"] and e["message"].startswith("step ")]
    assert [s.split()[1].rstrip(":") for s in steps] == ["1/4", "2/4", "3/4", "4/4"]
    assert any(e.get("comment") == "heartbeat" for e in first + resumed), "a heartbeat arrived"
    # Every event is one version newer, and the record says the last one.
    versions = [e["version"] for e in events]
    assert versions == list(range(1, len(events) + 1))
    assert client.job(job["id"])["version"] == versions[-1]


@pytest.mark.slow
def test_a_running_job_survives_kill_9_of_its_worker(
    lab: Supervisor, client: LabClient, store: Store
) -> None:
    start(lab)
    job = client.create_job("agent", {"durationSeconds": 3, "stepIntervalSeconds": 0.5})
    wait_until(lambda: client.job(job["id"])["progress"] >= 30, 30, "the job to be under way")
    lab.kill("worker-1")
    lab.start("worker-2", role="worker")
    done = wait_state(client, job["id"], {"completed"})
    assert done["attempt"] == 1, "a crash is not a failed attempt"
    assert any("restarted" in line["message"] for line in done["log"]), done["log"]
    assert done["worker"] != client.job(job["id"])["log"][1]["message"].split()[-1]
    assert store.get(job["id"])["worker"] == done["worker"]


def test_jobs_that_ended_long_ago_are_pruned_with_their_documents(
    lab: Supervisor, client: LabClient, store: Store
) -> None:
    start(lab)
    done = client.create_job("sleep", {"seconds": 0})
    waiting = client.create_job("sleep", {"seconds": 30})
    wait_state(client, done["id"], {"completed"})
    store.refresh()
    assert store.get(done["id"]) is not None
    assert client.prune_jobs()["pruned"] == 0  # within the retention (a week by default)
    answer = client.prune_jobs(older_than_s=0)
    assert answer["pruned"] == 1 and answer["documents"] == 1, answer
    with pytest.raises(ApiError) as gone:
        client.job(done["id"])
    assert gone.value.status == 404
    store.refresh()
    assert store.get(done["id"]) is None
    assert client.job(waiting["id"])["state"] in ("queued", "active")  # not ended: kept
    with pytest.raises(ApiError) as bad:
        client.prune_jobs(older_than_s=-1)
    assert bad.value.status == 422
