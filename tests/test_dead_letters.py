"""Dead letters through the API on real services: listed without losing one, replayed with a
fresh attempt budget (a single job through its record, a run's job at attempt 1 and counted
once), kept when they cannot be replayed, and purged with a count."""

from __future__ import annotations

import httpx

from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.messages import Job, run_job
from lab.runtime.stores import Stores

from .helpers import assert_exactly_once, publish, queue_depth, settle, wait_until


def letters(client: LabClient) -> list[dict]:
    return client.dead_letters(limit=500)["letters"]


def test_dead_letters_are_listed_replayed_and_purged_without_loss(
    lab: Supervisor, settings: Settings, client: LabClient, stores: Stores, channel
) -> None:
    lab.up(workers=1)
    dead = f"{settings.queue}.dead"

    # A run that completes, then a copy of one of its jobs that fails on its last attempt.
    run_id = client.run(20, 600_000)["runId"]
    settle(stores, run_id, 60)
    copy = Job(**{**run_job(run_id, 7).__dict__, "attempt": settings.max_attempts,
                  "payload": {"failAttempts": settings.max_attempts}})  # fmt: skip
    publish(channel, settings.queue, copy.to_json())
    # A single job whose only attempt fails; it succeeds on the next one.
    single = client.create_job("index", {"failAttempts": 1}, attempts=1)["id"]
    # And a body that is no job at all.
    publish(channel, settings.queue, b'{"jobId": "half')
    wait_until(lambda: queue_depth(settings, dead) == 3, 60, "three dead letters",
               lambda: f"{queue_depth(settings, dead)} dead letters")  # fmt: skip
    wait_until(lambda: client.job(single)["state"] == "failed", 30, "the single job to fail")

    # Listing twice: the same letters, in the same order, and none taken away.
    first, second = client.dead_letters(), client.dead_letters()
    assert first == second and first["total"] == 3 and queue_depth(settings, dead) == 3
    by_job = {d["jobId"]: d for d in first["letters"]}
    run_letter, single_letter = by_job[copy.jobId], by_job[single]
    (malformed,) = [d for d in first["letters"] if d["jobId"] is None]
    assert run_letter["reason"] == "exhausted" and run_letter["attempts"] == settings.max_attempts
    assert run_letter["queue"] == settings.queue and run_letter["runId"] == run_id
    assert run_letter["firstFailedAt"] <= run_letter["lastFailedAt"]
    assert "injected failure" in run_letter["error"]
    assert malformed["reason"] == "malformed" and malformed["preview"] == '{"jobId": "half'
    assert client.dead_letters(limit=1, offset=1)["letters"] == first["letters"][1:2]

    # Replay the two jobs. The single one goes back through its record (attempt 2, a fresh
    # budget) and completes. The run's copy starts again at attempt 1, so its payload, which
    # fails every attempt of a budget, takes it through the whole ladder to the dead letters
    # again: a new letter that still says when it first failed; the run is counted once.
    answer = client.replay_dead_letters([run_letter["id"], single_letter["id"], "0" * 16])
    assert answer["replayed"] == 2 and answer["matched"] == 2, answer
    assert answer["notFound"] == ["0" * 16] and answer["kept"] == {}
    wait_until(lambda: client.job(single)["state"] == "completed", 30, "the replayed job")
    assert client.job(single)["attempt"] == 2

    def died_again() -> dict | None:
        return next((d for d in letters(client) if d["jobId"] == copy.jobId), None)

    again = wait_until(died_again, 60, "the replayed run job to use its budget again")
    assert again["id"] != run_letter["id"] and again["attempts"] == settings.max_attempts
    assert again["firstFailedAt"] == run_letter["firstFailedAt"]
    assert again["lastFailedAt"] > run_letter["lastFailedAt"]
    assert {d["id"] for d in letters(client)} == {malformed["id"], again["id"]}
    assert_exactly_once(settings, stores, run_id, 20)
    assert stores.runs.get(run_id).failed == 0  # its seq was processed before: never counted failed

    # What cannot be replayed stays, and says why.
    kept = client.replay_dead_letters([malformed["id"]])
    assert kept["replayed"] == 0 and kept["kept"] == {"skipped: not a job": 1}
    assert malformed["id"] in {d["id"] for d in letters(client)}

    # Purge: the count, and nothing left.
    assert client.purge_dead_letters() == {"purged": 2}
    assert client.dead_letters()["total"] == 0 and queue_depth(settings, dead) == 0


def test_bad_replay_requests_are_named_and_change_nothing(
    lab: Supervisor, settings: Settings, channel
) -> None:
    lab.start("api")
    lab.wait_api()
    publish(channel, settings.queue + ".dead", b"kept")
    wait_until(lambda: queue_depth(settings, settings.queue + ".dead") == 1, 10, "a dead letter")
    http = httpx.Client(base_url=settings.api_url, timeout=10)
    for body, field in [
        ({}, "ids"),
        ({"ids": ["a" * 16], "all": True}, "ids"),
        ({"ids": ["not-an-id"]}, "ids"),
        ({"ids": "a" * 16}, "ids"),
        ({"all": "yes"}, "all"),
        ({"ids": ["a" * 16] * 1001}, "ids"),
        ({"every": True}, "every"),
    ]:
        answer = http.post("/dead-letters/replay", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert field in answer.json()["error"], (body, answer.json())
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "x"}):
        assert http.get("/dead-letters", params=params).status_code == 422, params
    assert queue_depth(settings, settings.queue + ".dead") == 1
    letter = http.get("/dead-letters").json()["letters"][0]
    assert letter["reason"] == "unknown" and letter["preview"] == "kept"
