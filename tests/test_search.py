"""Finding jobs on real services: `GET /jobs?q=` answers from the records index, which follows
every change of a record (also one made while the API was down), with the existing filters,
`from`/`to` and paging; bulk actions take the same `q`."""

from __future__ import annotations

import time

import httpx

from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor

from .helpers import wait_until


def found(client: LabClient, **filters: object) -> list[str]:
    return [j["id"] for j in client.jobs(limit=100, **filters)["jobs"]]


def test_search_finds_jobs_by_payload_error_and_id_and_keeps_up(
    lab: Supervisor, settings: Settings, client: LabClient
) -> None:
    lab.up(workers=1)
    quick = {"durationSeconds": 1, "stepIntervalSeconds": 0.25}
    # A word no agent writes in its log (its steps name pages such as "checkout").
    shop = client.create_job("agent", {**quick, "url": "https://shop.example/zqxbasket"})["id"]
    before = int(time.time() * 1000)
    failing = client.create_job("index", {"failAttempts": 1}, attempts=1)["id"]
    plain = [client.create_job("index")["id"] for _ in range(3)]
    wait_until(lambda: client.job(failing)["state"] == "failed", 30, "the failure")

    wait_until(lambda: found(client, q="zqxbasket") == [shop], 30, "the payload to be found",
               lambda: str(found(client, q="zqxbasket")))  # fmt: skip
    wait_until(lambda: found(client, q="injected") == [failing], 30, "the error to be found")
    assert found(client, q=plain[1]) == [plain[1]]  # by id
    assert found(client, q="injected", state="completed") == []
    assert found(client, q="index", kind="index", state="failed") == [failing]
    # `from` bounds the creation time: the shop job was created before it.
    assert shop not in found(client, q="index | zqxbasket", since=before)
    everything = found(client, since=before - 60_000)
    assert set(everything) == {shop, failing, *plain}
    # Paging: newest first, every job once.
    first = client.jobs(limit=2, since=before - 60_000)
    second = client.jobs(limit=10, since=before - 60_000, cursor=first["nextCursor"])
    assert [j["id"] for j in first["jobs"] + second["jobs"]] == everything
    assert second["nextCursor"] is None

    # A job that ends while the API is down is found in its new state once it is back.
    late = client.create_job("agent", {**quick, "url": "https://late.example"})["id"]
    wait_until(lambda: found(client, q="late.example") == [late], 30, "the late job")
    lab.stop("api")
    wait_until(lambda: _state_in_redis(settings, late) == "completed", 30, "it to complete")
    lab.start("api")
    lab.wait_api()
    wait_until(lambda: found(client, q="late.example", state="completed") == [late], 30,
               "the index to catch up after the restart")  # fmt: skip

    # Bulk actions take the same search; a deleted job is not found any more.
    answer = client.bulk("retry", q="injected", state="failed")
    assert (answer["matched"], answer["changed"]) == (1, 1), answer
    wait_until(lambda: client.job(failing)["state"] == "completed", 30, "the retried job")
    client.delete_job(shop)
    wait_until(lambda: found(client, q="zqxbasket") == [], 30, "the deleted job to go")


def _state_in_redis(settings: Settings, job_id: str | None) -> str | None:
    from lab.runtime.jobs import JobRecords

    return JobRecords(settings).get(job_id or "", with_log=False)["state"]


def test_bad_searches_are_named(lab: Supervisor, settings: Settings) -> None:
    lab.start("api")
    lab.wait_api()
    http = httpx.Client(base_url=settings.api_url, timeout=10)
    for params, field in [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-45"}, "to"),
        ({"q": "x", "runId": "r1"}, "q"),
        ({"q": "x" * 501}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x", "cursor": "nope"}, "cursor"),
    ]:
        answer = http.get("/jobs", params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert field in answer.json()["error"], (params, answer.json())
    assert http.get("/jobs", params={"q": "nothing-like-this"}).json()["jobs"] == []
