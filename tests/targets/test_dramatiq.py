"""The `dramatiq` target on real services and real processes: lab's synthetic kind run by
Dramatiq workers under `lab up --target dramatiq` (exact failures, histograms, service time and
a clean verdict), a worker killed with SIGKILL mid-run (what the verdict says of it is what the
documents show), a user's own actor measured through the shim, and submits to a broker that is
away."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.client import LabClient
from lab.config import Settings
from lab.ops import servers
from lab.ops.processes import alive
from lab.ops.supervisor import Supervisor
from lab.runtime import broker
from lab.runtime.messages import run_job
from lab.runtime.store import Store
from lab.runtime.stores import Stores
from lab.runtime.submits import by_status
from lab.targets import target
from lab.targets import verdict as verdicts
from lab.targets.dramatiq import ACTOR, Dramatiq, message_fields
from lab.wait import wait_until
from tests.helpers import settle
from tests.targets.seeded import seeded_run


@pytest.fixture
def dramatiq(settings: Settings) -> Iterator[Dramatiq]:
    """The target; its queues (the queue, `.DQ`, `.XQ`) deleted after."""
    made = target("dramatiq", settings)
    assert isinstance(made, Dramatiq)
    yield made
    made.close()
    connection = broker.connect(settings.amqp_url, "lab-test-cleanup")
    try:
        channel = connection.channel()
        for suffix in ("", ".DQ", ".XQ"):
            channel.queue_delete(made.queue + suffix)
    finally:
        connection.close()


def documents(settings: Settings, run_id: str, x: int) -> dict[int, int]:
    """The run's documents: seq → `_version`."""
    store = Store(settings)
    try:
        store.refresh()
        hits = store.es.search(index=settings.es_index, query={"term": {"runId": run_id}},
                               size=x, version=True, source=["seq"])["hits"]["hits"]  # fmt: skip
    finally:
        store.close()
    return {hit["_source"]["seq"]: int(hit["_version"]) for hit in hits}


def bits(stores: Stores, key: str, x: int) -> set[int]:
    return {seq for seq in range(x) if stores.redis.getbit(key, seq)}


def test_a_job_becomes_a_message_whose_id_is_the_job_id() -> None:
    job = run_job("r1", 7, "synthetic", {"seed": 3})
    fields = message_fields(job, "q.dramatiq")
    assert fields["message_id"] == "r1-7" and fields["actor_name"] == ACTOR
    assert fields["args"] == (job.to_json().decode(),) and fields["kwargs"] == {}
    assert fields["options"] == {"lab": {"createdAt": job.createdAt, "kind": "synthetic"}}
    task = run_job("r1", 7, "task", {"task": "app.resize", "args": ["{seq}", {"of": "{jobId}"}],
                                     "kwargs": {"n": ["{seq}", "{seq}!"]}})  # fmt: skip
    fields = message_fields(task, "q.dramatiq")
    assert fields["actor_name"] == "app.resize" and fields["message_id"] == "r1-7"
    assert fields["args"] == (7, {"of": "r1-7"}) and fields["kwargs"] == {"n": [7, "{seq}!"]}
    assert fields["options"]["lab"]["kind"] == "task"  # metadata beside the args, not in them


def test_submits_to_a_broker_that_is_away_fail_and_stop_trying(settings: Settings) -> None:
    away = settings.with_overrides(amqp_url=f"amqp://guest:guest@127.0.0.1:{servers.free_port()}/")
    made = target("dramatiq", away)
    try:
        outcomes = made.submit([run_job("r1", seq, "sleep") for seq in range(3)])
    finally:
        made.close()
    assert [o.status for o in outcomes] == ["failed"] * 3
    assert "not tried" in outcomes[2].error


def up(lab: Supervisor) -> LabClient:
    """Two Dramatiq workers under lab's supervisor."""
    lab.up(workers=2, worker_args=["--target", "dramatiq"])
    return LabClient.of(lab.settings)


@pytest.mark.slow
def test_a_synthetic_run_on_dramatiq_is_counted_exactly(
    lab: Supervisor, settings: Settings, stores: Stores, dramatiq: Dramatiq
) -> None:
    client = up(lab)
    x = 300
    run = seeded_run(client, stores, "dramatiq", x, seed=2024, service_ms=(150, 400),
                     ramp=(1200, 6000, 4), attempts=settings.max_attempts, settle_s=90)  # fmt: skip
    assert run.verdict["lost"] == run.verdict["duplicated"] == 0, run.verdict
    assert run.verdict["processed"] == len(documents(settings, run.run_id, x))


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_what_the_documents_say(
    lab: Supervisor, settings: Settings, stores: Stores, dramatiq: Dramatiq
) -> None:
    x = 400
    client = up(lab)
    payload = {"serviceMs": {"dist": "fixed", "value": 60}}
    run_id = client.run(x, 6000, kind="synthetic", payload=payload, target="dramatiq")["runId"]
    wait_until(lambda: (r := stores.runs.get(run_id)) and r.processed >= 100, 60, "100 jobs done")
    killed = lab.pid("worker-1")
    beat = stores.keys.worker(f"{socket.gethostname()}-{killed}")  # the shim's heartbeat
    wait_until(lambda: int(stores.redis.hget(beat, "running") or 0) > 0, 30, "worker-1 busy")
    lab.kill("worker-1")  # SIGKILL of the pid lab supervises: the process that holds the jobs
    assert not alive(killed)
    lab.start("worker-1")
    run = settle(stores, run_id, 90)
    found = client.verdict(run_id)
    docs = documents(settings, run_id, x)
    submitted = bits(stores, stores.keys.run_submitted(run_id), x)
    print(f"dramatiq after kill -9: {found}")
    # Dramatiq acks a message after its actor returns (and the shim counts the job before the
    # ack): what the killed worker held went back to RabbitMQ and ran again, so nothing is lost;
    # a job it had written but not acked is written twice, and the verdict says so.
    assert found["lost"] == len(submitted - set(docs)) == 0
    assert found["duplicated"] == sum(1 for v in docs.values() if v > 1)
    assert found["processed"] == run.processed == len(docs) == x


def test_a_users_own_actor_is_measured_through_the_shim(
    settings: Settings, stores: Stores, dramatiq: Dramatiq
) -> None:
    x = 30
    payload = {"task": "remember", "args": ["{seq}", "{jobId}"], "kwargs": {"tag": "{seq}"}}
    run_id = stores.runs.start(x + 2, 6000, kind="task", payload=payload, target="dramatiq")
    jobs = [run_job(run_id, seq, "task", payload) for seq in range(x)]
    # One job for an actor the app does not have: Dramatiq dead-letters it unrun.
    jobs.append(run_job(run_id, x, "task", {**payload, "task": "nobody_has_this"}))
    submit(dramatiq, stores, run_id, jobs)
    assert dramatiq.backlog().depth == x + 1
    env = {**os.environ, **settings.as_env()}
    command = subprocess.Popen(  # the user's own command, as they run it
        [sys.executable, "-m", "dramatiq", "tests.targets.apps.dramatiq_tasks",
         "--processes", "1", "--threads", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        found = ended_by(stores, run_id, x + 1)
        assert found["processed"] == x and found["failed"] == 1, found
        assert found["lost"] == found["executedMoreThanOnce"] == found["unexpected"] == 0
        remembered = stores.redis.hgetall(f"{settings.prefix}:usertask")
        assert remembered == {str(seq): f"{run_id}-{seq}/{seq}" for seq in range(x)}
        tried = stores.redis.hgetall(f"{settings.prefix}:usertask:tries")
        assert tried == {str(seq): "2" for seq in range(0, x, 5)}  # failed once, retried once
        latency = stores.runs.latency(run_id, windows=False)
        assert latency is not None and latency["service"]["count"] == x + 1
        # What kill -9 of the `dramatiq` command does: its worker process lives on, reparented,
        # and goes on taking jobs (why lab's own workers run Dramatiq's Worker in one process).
        worker = int(
            Path(f"/proc/{command.pid}/task/{command.pid}/children").read_text().split()[0]
        )
        command.kill()
        command.wait(10)
        submit(dramatiq, stores, run_id, [run_job(run_id, x + 1, "task", payload)])
        assert ended_by(stores, run_id, x + 2)["processed"] == x + 1
        parent = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1]
        assert alive(worker) and int(parent) != command.pid
        os.kill(worker, signal.SIGTERM)  # it stops as it would have: counts flushed, beat gone
        wait_until(lambda: not alive(worker), 30, "the orphaned worker to stop")
        assert not stores.heartbeats.live()
        dramatiq.submit([run_job(run_id, x + 2, "task", payload)])  # nobody consumes it now
        assert dramatiq.backlog().depth == 1
        dramatiq.purge()
        assert dramatiq.backlog().depth == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(command.pid, signal.SIGKILL)  # the worker keeps the command's group
        command.wait(10)


def submit(dramatiq: Dramatiq, stores: Stores, run_id: str, jobs: list[Any]) -> None:
    """Submit as the scheduler does: every job confirmed, its id the message's."""
    outcomes = dramatiq.submit(jobs)
    assert [o.status for o in outcomes] == ["ok"] * len(jobs)
    assert [o.broker_id for o in outcomes] == [job.jobId for job in jobs]
    stores.release.submitted(run_id, by_status(jobs, outcomes))


def ended_by(stores: Stores, run_id: str, count: int) -> dict[str, Any]:
    """The run's verdict once `count` of its jobs ended."""
    found: dict[str, Any] = {}

    def ended() -> bool:
        found.update(verdicts.read(stores, None, run_id) or {})
        return found.get("processed", 0) + found.get("failed", 0) >= count

    wait_until(ended, 60, f"{count} jobs to end", lambda: str(found))
    return found
