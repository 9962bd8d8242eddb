"""Head-of-line age on real services: a paused queue's oldest job ages with the pause (in
`/status`, `/queues` and `/metrics`), an objective on it stops the run, and a single-job queue
has its own."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores

from .helpers import settle, wait_until


def epoch_ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000


@pytest.mark.slow
def test_a_paused_queue_head_ages_with_the_pause_and_its_objective_stops_the_run(
    lab: Supervisor, settings: Settings, client: LabClient, stores: Stores
) -> None:
    lab.up(workers=1)
    client.queue_action(settings.queue, "pause")
    wait_until(
        lambda: [w["paused"] for w in client.status()["workers"]] == [[settings.queue]],
        15,
        "the worker to apply the pause",
    )
    # Released at 60 a second, so the oldest job is the run's first and the objective can only
    # breach once the head has waited 4 s.
    run_id = client.run(
        1000, 3600, slo=[{"metric": "headAgeMs", "max": 4000}], abort_on_breach=True
    )["runId"]
    wait_until(lambda: (client.status()["headAgeMs"] or 0) >= 2000, 20, "the head to age")
    status = client.status()
    waited = epoch_ms(status["serverTime"]) - epoch_ms(status["startedAt"])
    assert abs(status["headAgeMs"] - waited) <= 2000, (status["headAgeMs"], waited)
    queues = {q["name"]: q for q in client.queues()["queues"]}
    assert queues[settings.queue]["headAgeMs"] >= 1000
    assert queues[f"{settings.queue}.dead"]["headAgeMs"] is None  # no one waits to start there
    metrics = httpx.get(f"{settings.api_url}/metrics", timeout=10).text
    assert f'lab_queue_head_age_seconds{{queue="{settings.queue}"}}' in metrics

    wait_until(lambda: stores.runs.get(run_id).state == "breached", 20, "the objective to stop it")
    (objective,) = client.get_run(run_id)["slo"]
    assert objective["state"] == "breached" and objective["value"] > 4000
    assert objective["breachedAt"] - epoch_ms(status["startedAt"]) <= 4000 + 5000

    client.queue_action(settings.queue, "resume")
    run = settle(stores, run_id, 60)
    # It stopped releasing (confirms of what was already published still count), and what it
    # had released all ran.
    assert run.enqueued < 1000 and run.processed + run.failed == run.enqueued
    wait_until(
        lambda: {q["name"]: q for q in client.queues()["queues"]}[settings.queue]["headAgeMs"] == 0,
        15,
        "the head age to fall back to 0 once nothing waits",
    )


def test_a_single_job_queue_has_its_own_head_age(
    lab: Supervisor, settings: Settings, client: LabClient
) -> None:
    lab.up(workers=1)
    single = f"{settings.queue}.single"
    client.queue_action(single, "pause")
    job = client.create_job("agent", {"durationSeconds": 1, "stepIntervalSeconds": 0.5})
    created = epoch_ms(client.job(job["id"])["createdAt"])

    def age() -> int:
        return {q["name"]: q for q in client.queues()["queues"]}[single]["headAgeMs"] or 0

    wait_until(lambda: age() >= 1500, 20, "the single queue's head to age")
    status = client.status()
    assert age() <= epoch_ms(status["serverTime"]) - created + 1500
    client.queue_action(single, "resume")
    wait_until(lambda: client.job(job["id"])["state"] == "completed", 30, "the job to run")
    wait_until(lambda: age() == 0, 15, "the head age to fall back to 0")
