"""RQ as the system under test (`lab.targets.rq`): its ids, its submits, a user's own task through
the shim, a synthetic run on `lab up --target rq`, and a kill -9 of one of its workers, whose
verdict must say what the documents show, whatever RQ did with the job the worker held."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rq import Queue
from rq import Worker as RqWorker
from rq.job import JOB_ID_PATTERN, Job, JobStatus
from rq.worker import SimpleWorker

from lab.client import LabClient
from lab.config import Settings
from lab.ops import servers
from lab.ops.supervisor import Supervisor
from lab.runtime import messages
from lab.runtime.messages import run_job
from lab.runtime.store import Store
from lab.runtime.stores import Stores
from lab.runtime.stores.runs import new_run_id
from lab.runtime.submits import by_status
from lab.targets import Target, rq, target, verdict
from lab.wait import wait_until
from tests.targets.seeded import seeded_run
from workers import synthetic

APPS = Path(__file__).resolve().parent / "apps"
QUIET_S = 3.0  # nothing of the run ended for this long: drained


@pytest.fixture
def rq_target(settings: Settings) -> Iterator[Target]:
    """The target; what RQ kept of its queue is purged after the test's processes stopped (a
    test asks for it before `lab`, whose teardown stops them)."""
    found = target("rq", settings)
    yield found
    found.purge()
    found.close()


# --- pure ---------------------------------------------------------------------------------------
def test_every_run_job_id_is_an_id_rq_takes() -> None:
    assert rq.RQ_ID.pattern == JOB_ID_PATTERN.pattern  # the same rule as RQ's own
    for seq in (0, 7, messages.MAX_SEQ - 1):
        job_id = run_job(new_run_id(), seq).jobId
        assert rq.RQ_ID.fullmatch(job_id), job_id


def test_retries_follow_the_ladder_in_whole_seconds_and_count_attempts() -> None:
    assert rq.intervals((200, 400, 800), 2) == [1, 1]
    assert rq.intervals((1000, 5000), 4) == [1, 5, 5, 5]  # the last step repeats
    meta = {"lab": {"retries": 2}}
    assert [rq.attempt_of(meta, left) for left in (2, 1, 0)] == [1, 2, 3]
    assert rq.attempt_of({}, None) == rq.attempt_of({"lab": {"retries": "x"}}, 1) == 1


# --- submits ------------------------------------------------------------------------------------
def test_a_batch_redis_cannot_take_fails_and_a_job_rq_refuses_fails_alone(
    settings: Settings, rq_target: Target
) -> None:
    away = target("rq", settings.with_overrides(
        redis_url=f"redis://127.0.0.1:{servers.free_port()}/0", redis_timeout_s=1.0))  # fmt: skip
    jobs = [run_job("r1", seq, "sleep", {"ms": 1}) for seq in range(3)]
    assert [o.status for o in away.submit(jobs)] == ["failed"] * 3
    away.close()
    dotted = messages.Job("r.1-0", "r.1", 0, "sleep", payload={"ms": 1})
    outcomes = rq_target.submit([dotted, *jobs])
    assert [o.status for o in outcomes] == ["failed", "ok", "ok", "ok"]
    assert "letters, digits" in outcomes[0].error and outcomes[1].broker_id == "r1-0"
    waiting = rq_target.backlog()
    assert waiting.depth == 3 and waiting.oldest_age_ms is not None and waiting.oldest_age_ms >= 0


# --- a user's own task --------------------------------------------------------------------------
def test_a_users_task_runs_by_name_with_labs_metadata_beside_its_args(
    settings: Settings, stores: Stores, rq_target: Target
) -> None:
    x, key = 20, f"{settings.prefix}:user-seen"
    payload = {"task": "rq_user.record", "args": ["{seq}", "{jobId}"],
               "kwargs": {"key": key, "fail": 3}}  # fmt: skip
    run_id = stores.runs.start(x, 6000, kind="task", payload=payload, target="rq")
    jobs = [run_job(run_id, seq, "task", payload) for seq in range(x)]
    outcomes = rq_target.submit(jobs)
    assert {o.status for o in outcomes} == {"ok"}
    stores.release.submitted(run_id, by_status(jobs, outcomes))
    # The user's worker, as they run it, with the shim's class and lab's settings in its env.
    worker = subprocess.run(
        [sys.executable, "-m", "rq.cli", "worker", "--burst", "-w", "lab.targets.rq_shim.Worker",
         "--url", settings.redis_url, "--path", str(APPS), "--logging_level", "WARNING",
         rq_target.queue],
        env={**os.environ, **settings.as_env()}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr[-2000:]
    seen = {int(seq): json.loads(v) for seq, v in stores.redis.hgetall(key).items()}
    assert sorted(seen) == list(range(x))
    for job in jobs:
        assert seen[job.seq] == {"jobId": job.jobId, "seqType": "int",
                                 "createdAt": job.createdAt, "rqId": job.jobId}  # fmt: skip
    judged = judge(stores, run_id)
    assert (judged["processed"], judged["failed"], judged["lost"]) == (x - 1, 1, 0), judged
    assert judged["clean"] and judged["submits"]["ok"] == x
    failed = Job.fetch(f"{run_id}-3", connection=rq_target.connection())
    assert failed.get_status() == JobStatus.FAILED  # no retry: RQ's default for a user's task


def test_a_job_rq_abandons_with_no_retry_left_counts_as_failed(
    settings: Settings, stores: Stores, rq_target: Target
) -> None:
    payload = {"task": "time.sleep", "args": [0]}
    run_id = stores.runs.start(1, 6000, kind="task", payload=payload, target="rq")
    job = run_job(run_id, 0, "task", payload)
    assert rq_target.submit([job])[0].status == "ok"
    stores.release.submitted(run_id, {"ok": [0], "failed": [], "indeterminate": []})
    # A worker takes the job and dies holding it: RQ has it started, and nobody runs it.
    connection = rq_target.connection()
    worker = SimpleWorker([rq_target.queue], connection=connection)
    taken, _queue = worker.dequeue_job_and_maintain_ttl(timeout=5)
    worker.prepare_execution(taken)
    worker.prepare_job_execution(taken, remove_from_intermediate_queue=True)
    connection.unlink(worker.key, worker.executions_key)
    assert judge(stores, run_id)["lost"] == 1
    # RQ's maintenance, minutes later, in a process with lab's settings (as a worker's is):
    # the job's heartbeat has lapsed, it has no retry left, RQ fails it and tells lab.
    abandon = ("import sys, time; from redis import Redis; from rq import Queue; "
               "Queue(sys.argv[1], connection=Redis.from_url(sys.argv[2]))"
               ".started_job_registry.cleanup(timestamp=time.time() + 3600)")  # fmt: skip
    subprocess.run([sys.executable, "-c", abandon, rq_target.queue, settings.redis_url],
                   env={**os.environ, **settings.as_env()}, check=True, timeout=60)  # fmt: skip
    assert Job.fetch(job.jobId, connection=connection).get_status() == JobStatus.FAILED
    judged = judge(stores, run_id)
    assert (judged["processed"], judged["failed"], judged["lost"]) == (0, 1, 0), judged


def judge(stores: Stores, run_id: str) -> dict[str, Any]:
    found = verdict.read(stores, None, run_id)
    assert found is not None, run_id
    return found


# --- lab up --target rq ---------------------------------------------------------------------------
def up(lab: Supervisor, settings: Settings) -> LabClient:
    lab.up(workers=2, worker_args=["--target", "rq"])
    return LabClient(settings.api_url)


@pytest.mark.slow
def test_a_synthetic_run_on_rq_fails_what_its_seed_draws_and_is_clean(
    rq_target: Target, lab: Supervisor, settings: Settings, stores: Stores
) -> None:
    client = up(lab, settings)
    # A job fails for good on its first attempt, or on every attempt RQ gives it (its Retry's
    # max + 1 = LAB_MAX_ATTEMPTS).
    run = seeded_run(client, stores, "rq", 200, seed=2, service_ms=(100, 300),
                     ramp=(600, 6000, 5), attempts=settings.max_attempts, settle_s=150)  # fmt: skip
    assert any(synthetic.draw(run.drawn, s, 1)["fails"] for s in range(200))  # RQ retried some


def busy(connection: Any, queue: str, pid: int) -> tuple[str, float] | None:
    """The job the RQ worker of process `pid` runs, and how long ago it started (s)."""
    rq_queue = Queue(queue, connection=connection)
    names = [w.name for w in RqWorker.all(queue=rq_queue) if w.pid == pid]
    ids = rq_queue.started_job_registry.get_job_ids(cleanup=False)
    for job in Job.fetch_many(ids, connection=connection):
        if job is not None and job.worker_name in names and job.started_at is not None:
            return job.id, time.time() - job.started_at.timestamp()
    return None


def documents(settings: Settings, run_id: str, x: int) -> tuple[set[int], set[int]]:
    """The run's documents: the seqs written, and those written more than once."""
    store = Store(settings)
    try:
        store.refresh()
        hits = store.es.search(index=store.index, version=True, size=x, source=["seq"],
                               query={"term": {"runId": run_id}})["hits"]["hits"]  # fmt: skip
    finally:
        store.close()
    present = {h["_source"]["seq"] for h in hits}
    return present, {h["_source"]["seq"] for h in hits if int(h.get("_version") or 1) > 1}


@pytest.mark.slow
def test_kill_9_of_an_rq_worker_gives_the_verdict_the_documents_show(
    rq_target: Target, lab: Supervisor, settings: Settings, stores: Stores
) -> None:
    client = up(lab, settings)
    x, service_ms = 60, 300
    payload = {"serviceMs": {"dist": "fixed", "value": service_ms}}
    run_id = client.run(x, 6000, kind="synthetic", payload=payload, target="rq")["runId"]
    connection = rq_target.connection()
    pid = lab.pid("worker-1")

    def mid_job() -> str | None:
        # Killed while the job sleeps, before it writes anything, so "documents present" is
        # exactly "the job was done" (a kill between a write and its count is another test's).
        found = busy(connection, rq_target.queue, pid)
        return found[0] if found and found[1] < service_ms / 3000 else None

    held = wait_until(mid_job, 30, "worker-1 in the first third of a job", poll_s=0.005)
    lab.kill("worker-1")
    lab.start("worker-1")
    last: list[Any] = [None, time.monotonic()]

    def drained() -> bool:
        run = stores.runs.get(run_id)
        ended = run and (run.enqueued, run.processed, run.failed)
        if ended != last[0]:
            last[:] = [ended, time.monotonic()]
        return bool(run and run.enqueued == x and rq_target.backlog().depth == 0
                    and time.monotonic() - last[1] >= QUIET_S)  # fmt: skip

    def explain() -> str:
        return str(stores.runs.get(run_id))

    wait_until(drained, 90, "the run to drain", explain)
    judged = client.verdict(run_id)
    present, rewritten = documents(settings, run_id, x)
    missing = set(range(x)) - present
    state = Job.fetch(held, connection=connection).get_status()
    print(
        f"\nrq kill -9: held {held} (RQ: {state}); verdict {judged}; "
        f"documents missing {sorted(missing)}, written again {sorted(rewritten)}"
    )
    assert judged["submits"] == {"ok": x, "failed": 0, "indeterminate": 0}
    assert judged["lost"] == len(missing) and judged["duplicated"] == len(rewritten)
    assert judged["processed"] == len(present) and judged["unexpected"] == 0
    # What RQ does minutes later, now: its StartedJobRegistry abandons what it still holds as
    # started (RQ's own cleanup, with the clock past the held job's heartbeat) and retries it.
    Queue(rq_target.queue, connection=connection).started_job_registry.cleanup(
        timestamp=time.time() + 3600
    )

    def ended_all() -> bool:
        run = stores.runs.get(run_id)
        return bool(run and run.processed + run.failed == x)

    wait_until(ended_all, 60, "RQ to run the abandoned job again", explain)
    judged = client.verdict(run_id)
    present, rewritten = documents(settings, run_id, x)
    print(f"after RQ abandoned {held}: verdict {judged}; rewritten {sorted(rewritten)}")
    assert judged["lost"] == x - len(present) == 0 and judged["duplicated"] == len(rewritten)
    assert judged["processed"] == x
