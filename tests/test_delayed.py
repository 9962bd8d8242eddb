"""Delayed jobs on real services: a job with `delaySeconds` is queued at once but runs only
when its time comes (also if the API restarted meanwhile); "run now" runs it at once; a
cancelled delayed job never runs; bad times are named."""

from __future__ import annotations

import time
from datetime import datetime

import httpx

from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor

from .helpers import queue_depth, wait_until


def test_delayed_jobs_wait_for_their_time_or_run_now(
    lab: Supervisor, settings: Settings, client: LabClient
) -> None:
    lab.up(workers=1)
    created = time.time()
    soon = client.create_job("index", delay_s=2)
    assert soon["state"] == "queued" and soon["runAt"]
    assert datetime.fromisoformat(soon["runAt"]).timestamp() >= created + 1.9
    later = client.create_job("index", delay_s=3600)
    dropped = client.create_job("index", delay_s=3600)
    assert queue_depth(settings, settings.queue) == 0  # no message yet for any of them

    # The API restarts while they wait: the wait is in Redis, not in the process.
    lab.restart("api")
    lab.wait_api()
    wait_until(lambda: client.job(soon["id"])["state"] == "completed", 30, "the 2 s job")
    started = datetime.fromisoformat(client.job(soon["id"])["startedAt"]).timestamp()
    assert started >= datetime.fromisoformat(soon["runAt"]).timestamp() - 0.05
    assert client.job(later["id"])["state"] == "queued"

    assert client.run_job_now(later["id"])["state"] == "queued"
    wait_until(lambda: client.job(later["id"])["state"] == "completed", 30, "the run-now job")

    client.cancel_job(dropped["id"])
    http = httpx.Client(base_url=settings.api_url, timeout=10)
    answer = http.post(f"/jobs/{dropped['id']}/run-now")
    assert answer.status_code == 409 and answer.json()["state"] == "cancelled"
    assert http.post("/jobs/no-such-job/run-now").status_code == 404
    assert client.job(dropped["id"])["startedAt"] is None


def test_bad_delays_are_named(lab: Supervisor, settings: Settings) -> None:
    lab.start("api")
    lab.wait_api()
    http = httpx.Client(base_url=settings.api_url, timeout=10)
    for extra, field in [
        ({"delaySeconds": -1}, "delaySeconds"),
        ({"delaySeconds": 31 * 86400}, "delaySeconds"),
        ({"delaySeconds": "soon"}, "delaySeconds"),
        ({"runAt": "tomorrow"}, "runAt"),
        ({"runAt": "2999-01-01T00:00:00Z"}, "runAt"),
        ({"runAt": "1700000000000", "delaySeconds": 1}, "runAt"),
    ]:
        answer = http.post("/jobs", json={"kind": "index", **extra})
        assert answer.status_code == 422, (extra, answer.text)
        assert field in answer.json()["error"], (extra, answer.json())
    past = http.post("/jobs", json={"kind": "index", "runAt": "2020-01-01T00:00:00Z"}).json()
    assert past["runAt"] is None  # a time already past: queued and published at once
