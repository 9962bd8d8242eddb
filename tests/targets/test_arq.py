"""The arq target: lab's kinds on arq workers that `lab up --target arq` supervises, a user's
own arq task reported by the shim, and what the delivery verdict says after a kill -9.

Real Redis (arq's broker), real lab processes and real arq workers; arq's job timeout is 5 s
here (`LAB_ARQ_JOB_TIMEOUT_S`), so a killed worker's jobs come back 15 s after it took them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from arq import Retry
from arq.constants import result_key_prefix

from lab.client import LabClient
from lab.config import Settings
from lab.ops import servers
from lab.ops.supervisor import Supervisor
from lab.runtime.messages import run_job
from lab.runtime.store import Store
from lab.runtime.stores import Stores
from lab.runtime.submits import by_status
from lab.targets import verdict
from lab.targets.arq import Arq, Refused, call_of, sent_status
from lab.targets.arq_shim import Limits, outcome_of
from tests.helpers import SilentServer, settle, wait_until
from tests.targets.seeded import seeded_run

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ["--target", "arq"]


@pytest.fixture
def settings(settings: Settings) -> Iterator[Settings]:
    """The test's namespace, with arq's job timeout short and 10 jobs at once per worker; arq's
    keys of its runs purged after."""
    short = settings.with_overrides(arq_job_timeout_s=5, concurrency=10)
    yield short
    Arq(short).purge()


# --- pure ---------------------------------------------------------------------------------------
def test_a_users_task_is_called_by_name_with_seq_and_job_id_filled_in() -> None:
    payload = {"task": "greet", "args": ["{seq}", ["{jobId}"]],
               "kwargs": {"who": {"id": "{jobId}", "n": "{seq}"}, "{seq}": "x{seq}"}}  # fmt: skip
    job = run_job("r1", 4, "task", payload)
    assert call_of(job) == (
        "greet",
        (4, ["r1-4"]),
        {"who": {"id": "r1-4", "n": 4}, "{seq}": "x{seq}"},
    )
    name, args, kwargs = call_of(run_job("r1", 4, "synthetic", {"seed": 1}))
    assert (name, kwargs) == ("run_lab_job", {}) and '"seq":4' in args[0]
    for bad, field in [({"task": 3}, "payload.task"), ({"task": "t", "args": {}}, "payload.args"),
                       ({"task": "t", "kwargs": []}, "payload.kwargs"),
                       ({"task": "t", "kwargs": {"_job_id": 1}}, "kwargs._job_id")]:  # fmt: skip
        with pytest.raises(Refused, match=field):
            call_of(run_job("r1", 0, "task", bad))


def test_the_shim_reports_what_arq_will_do_with_an_attempt() -> None:
    import asyncio

    limits = Limits(max_tries=3, timeout_s=5.0)
    assert outcome_of(None, 1, limits, 0.1) == "done"
    assert outcome_of(Retry(1), 2, limits, 0.1) == "retry"
    assert outcome_of(Retry(1), 3, limits, 0.1) == "failed"  # arq fails it at its next pickup
    assert outcome_of(ValueError("x"), 1, limits, 0.1) == "failed"  # arq retries only Retry
    assert outcome_of(asyncio.CancelledError(), 1, limits, 0.1) == "retry"  # a shutdown
    assert outcome_of(asyncio.CancelledError(), 1, limits, 5.0) == "failed"  # its timeout
    assert outcome_of(Retry(1), 1, Limits(3, 5.0, retry_jobs=False), 0.1) == "failed"


def test_a_submit_error_says_whether_it_could_have_reached_redis() -> None:
    import redis

    assert sent_status(redis.ConnectionError("Error 111 connecting to 127.0.0.1:1.")) == "failed"
    assert sent_status(redis.TimeoutError("Timeout connecting to server")) == "failed"
    assert sent_status(redis.TimeoutError("Timeout reading from 127.0.0.1:6379")) == "indeterminate"
    assert sent_status(redis.ConnectionError("Connection closed by server.")) == "indeterminate"


# --- lab's kinds on arq workers ------------------------------------------------------------------
@pytest.mark.slow
def test_a_synthetic_run_on_arq_fails_exactly_what_its_seed_draws(
    lab: Supervisor, client: LabClient, stores: Stores, settings: Settings
) -> None:
    lab.up(workers=2, worker_args=WORKERS)
    # The shim's service time holds the document's write too: a few ms on top of the draw.
    run = seeded_run(client, stores, "arq", 300, seed=11, service_ms=(400, 800),
                     ramp=(1200, 6000, 5), attempts=settings.max_attempts, settle_s=90)  # fmt: skip
    assert run.verdict["executedMoreThanOnce"] == 0, run.verdict


@pytest.mark.slow
def test_a_killed_arq_worker_s_jobs_run_again_and_the_verdict_matches_the_documents(
    lab: Supervisor, client: LabClient, stores: Stores, settings: Settings
) -> None:
    """kill -9 of a worker holding jobs: arq keeps them in its queue under their in-progress
    keys, which expire 15 s later (job timeout + 10 s); the restarted worker runs them then."""
    lab.up(workers=2, worker_args=WORKERS)
    x = 200
    payload = {"serviceMs": {"dist": "fixed", "value": 300}}
    run_id = client.run(x, 6000, kind="synthetic", payload=payload, target="arq")["runId"]
    beat = stores.keys.worker(f"{socket.gethostname()}-{lab.pid('worker-1')}")

    def busy() -> bool:
        """Its shim's heartbeat says it holds jobs, and arq has more of the run's jobs in
        progress than one worker's ten: a heartbeat is up to a second old, and a worker it
        called busy may have ended its jobs since."""
        running = stores.redis.hget(beat, "running")
        held = sum(1 for _ in stores.redis.scan_iter(f"arq:in-progress:{run_id}-*", count=1000))
        return stores.runs.known(run_id).processed >= 40 and int(running or 0) > 0 and held > 10

    wait_until(busy, 60, "worker-1 holding jobs", lambda: str(stores.redis.hgetall(beat)))
    lab.kill("worker-1")
    killed_at = time.monotonic()
    lab.start("worker-1")
    run = settle(stores, run_id, 75)
    took_s = time.monotonic() - killed_at
    found = client.verdict(run_id)
    store = Store(settings)
    try:
        store.refresh()
        present = store.distinct_job_ids(run_id)
        query = {"term": {"runId": run_id}}
        docs = store.es.search(index=settings.es_index, query=query, size=x, version=True,
                               source=["seq", "attempt"])["hits"]["hits"]  # fmt: skip
    finally:
        store.close()
    rewritten = sum(1 for d in docs if int(d.get("_version") or 1) > 1)
    again = sorted(d["_source"]["seq"] for d in docs if d["_source"].get("attempt", 1) > 1)
    print(f"verdict {found}; re-run {again}; settled {took_s:.1f} s after the kill")
    assert found["submits"]["ok"] == found["released"] == x, found
    assert found["lost"] == x - present and found["duplicated"] == rewritten, (found, present)
    assert run.processed == present == x and found["lost"] == 0, found
    assert again, "the killed worker held jobs, which ran again on another attempt"


# --- a user's own task ---------------------------------------------------------------------------
@pytest.fixture
def user_worker(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """The user's app (`tests/targets/apps/arq_user.py`) under arq's own command."""
    env = {**os.environ, **settings.as_env()}
    log = open(Path(settings.home) / "arq-user.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "arq", "tests.targets.apps.arq_user.WorkerSettings"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    yield worker
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(5)
    log.close()


def test_a_users_own_task_is_submitted_by_name_and_counted_by_the_shim(
    settings: Settings, stores: Stores, user_worker: subprocess.Popen[bytes]
) -> None:
    payload = {"task": "greet", "args": ["{seq}"], "kwargs": {"who": "{jobId}"}}
    run_id = stores.runs.start(11, 600, kind="task", payload=payload, target="arq")
    jobs = [run_job(run_id, seq, "task", payload) for seq in range(10)]
    stray = run_job(run_id, 10, "task", {"task": "nosuch"})  # no such function in the app
    target = Arq(settings)
    target.open()
    try:
        outcomes = target.submit([*jobs, stray])
        stores.release.submitted(run_id, by_status([*jobs, stray], outcomes))
        assert [o.status for o in outcomes] == ["ok"] * 11, outcomes

        def ended() -> bool:
            run = stores.runs.known(run_id)
            return run.processed + run.failed >= 10 and bool(
                stores.redis.exists(result_key_prefix + stray.jobId)
            )

        wait_until(ended, 30, "the user's tasks to end", lambda: str(stores.runs.get(run_id)))
        ran = [r.split("|") for r in stores.redis.lrange(f"{settings.prefix}:user-greet", 0, -1)]
        assert sorted((int(s), who, int(t)) for s, who, t in ran) == sorted(
            [(s, f"{run_id}-{s}", 1) for s in range(10)] + [(3, f"{run_id}-3", 2)]
        )
        # A second submit of a job whose result arq keeps: refused by arq, so `ok`, run once.
        twice = target.submit(jobs[:1])
        assert twice[0].status == "ok" and "duplicate" in twice[0].error, twice
        assert stores.redis.zscore(target.queue, jobs[0].jobId) is None
    finally:
        target.close()
    found = verdict.read(stores, None, run_id)
    assert found is not None
    # arq fails a job whose function the app lacks without calling a hook: lab never hears of
    # it, and the verdict says so.
    assert (found["processed"], found["failed"], found["lost"]) == (9, 1, 1), found
    assert found["executedMoreThanOnce"] == 0 and found["unexpected"] == 0, found


def test_submits_report_a_broker_away_and_backlog_and_purge_see_arq_s_keys(
    settings: Settings, stores: Stores
) -> None:
    run_id = stores.runs.start(5, 600, kind="synthetic", target="arq")
    jobs = [run_job(run_id, seq, "synthetic", {}) for seq in range(5)]
    away = Arq(settings.with_overrides(redis_url=f"redis://127.0.0.1:{servers.free_port()}/0"))
    outcomes = away.submit(jobs)
    away.close()
    assert [o.status for o in outcomes] == ["failed"] * 5 and "connecting" in outcomes[0].error
    silent = SilentServer()
    hung = Arq(settings.with_overrides(redis_url=f"redis://127.0.0.1:{silent.port}/0",
                                       redis_timeout_s=0.5))  # fmt: skip
    try:
        statuses = {o.status for o in hung.submit(jobs)}
    finally:
        hung.close()
        silent.close()
    assert statuses <= {"indeterminate", "failed"} and "indeterminate" in statuses, statuses
    target = Arq(settings)
    try:
        assert [o.status for o in target.submit(jobs)] == ["ok"] * 5
    finally:
        target.close()
    backlog = target.backlog()
    assert backlog.depth == 5 and backlog.oldest_age_ms is not None and backlog.oldest_age_ms >= 0
    target.purge()
    leftovers = list(stores.redis.scan_iter(match=f"arq:*{run_id}*", count=1000))
    assert not leftovers and not stores.redis.exists(target.queue), leftovers
    assert target.backlog().depth == 0
