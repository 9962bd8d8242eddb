"""The celery target on real services and real processes: Celery workers under lab's supervisor
run a seeded synthetic run and lab counts every job once (failures exactly the ones the seed
draws, latency histograms complete, the verdict clean); a worker killed mid-run loses what it
held, and the verdict says exactly what the documents show; a user's own task, sent by
`lab run start --task`, is reported by the shim in the user's own app; a submit says ok,
failed or indeterminate as the broker answered; and `task` runs are checked at the door."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import targets
from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime import broker
from lab.runtime.messages import run_job
from lab.runtime.store import Store
from lab.runtime.stores import Stores
from lab.targets.celery import Celery
from tests.helpers import run_lab, settle, wait_until
from tests.targets.relay import Relay
from tests.targets.seeded import seeded_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery(settings: Settings, lab: Supervisor) -> Iterator[Celery]:
    """The test's celery target; its queue (and the exchange a user's worker declares for it)
    deleted after, once the workers are gone (a Celery worker declares its queue again)."""
    target = targets.target("celery", settings)
    assert isinstance(target, Celery)
    yield target
    target.close()
    lab.down(grace_s=10)
    connection = broker.connect(settings.amqp_url, "lab-test-celery")
    try:
        channel = connection.channel()
        channel.queue_delete(target.queue)
        channel.exchange_delete(target.queue)
    finally:
        connection.close()


def up(lab: Supervisor, workers: int, concurrency: int) -> LabClient:
    args = ["--target", "celery", "--concurrency", str(concurrency)]
    lab.up(workers=workers, worker_args=args)
    return LabClient.of(lab.settings)


def bits(stores: Stores, key: str, x: int) -> set[int]:
    pipe = stores.redis.pipeline(transaction=False)
    for seq in range(x):
        pipe.getbit(key, seq)
    return {seq for seq, bit in enumerate(pipe.execute()) if bit}


def documents(settings: Settings, run_id: str, x: int) -> dict[int, dict[str, Any]]:
    """seq → {version, worker} of the run's documents."""
    store = Store(settings)
    try:
        store.refresh()
        found = store.es.search(index=settings.es_index, query={"term": {"runId": run_id}},
                                size=x, version=True, source=["seq", "worker"])  # fmt: skip
        hits = found["hits"]["hits"]
    finally:
        store.close()
    return {h["_source"]["seq"]: {"version": h["_version"], **h["_source"]} for h in hits}


@pytest.mark.slow
def test_a_synthetic_run_on_celery_counts_each_job_once_and_fails_what_the_seed_draws(
    lab: Supervisor, settings: Settings, stores: Stores, celery: Celery
) -> None:
    client = up(lab, workers=2, concurrency=16)
    # A median long beside what a task adds to its work (its document's write, a busy
    # machine's late wake-ups), so the service time lab measures is the one declared.
    x = 300
    run = seeded_run(client, stores, "celery", x, seed=4321, service_ms=(500, 1000),
                     ramp=(1200, 4800, 6), attempts=settings.max_attempts)  # fmt: skip
    assert run.verdict["released"] == x


def drained(stores: Stores, run_id: str, target: Celery, quiet_s: float = 3.0) -> None:
    """Until the run is settled, or everything is released, nothing waits in the queue and
    nothing has ended for `quiet_s` (what is still missing then will not come)."""
    seen = {"ended": -1, "since": time.monotonic()}

    def quiet() -> bool:
        run = stores.runs.get(run_id)
        assert run is not None
        ended = run.processed + run.failed
        if ended != seen["ended"] or run.enqueued < run.xTotal or target.backlog().depth:
            seen.update(ended=ended, since=time.monotonic())
            return run.settled
        return time.monotonic() - seen["since"] >= quiet_s

    wait_until(quiet, 120, f"run {run_id} to drain", lambda: str(stores.runs.get(run_id)), 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("acks", ["early", "late"])
def test_kill_9_of_a_celery_worker_and_the_verdict_says_what_the_documents_show(
    acks: str, lab: Supervisor, settings: Settings, stores: Stores, celery: Celery
) -> None:
    lab.settings = settings.with_overrides(celery_acks=acks)  # what its workers are started with
    client = up(lab, workers=2, concurrency=4)
    x = 120  # released faster than 8 slots of 200 ms run them: every slot stays busy
    payload = {"serviceMs": {"dist": "fixed", "value": 200}}
    run_id = client.run(x, 3600, kind="synthetic", payload=payload, target="celery")["runId"]
    wait_until(lambda: (r := stores.runs.get(run_id)) and r.processed >= 30, 60, "30 processed")
    killed = f"{socket.gethostname()}-{lab.pid('worker-1')}"  # its shim's id: its documents'
    lab.kill("worker-1")
    lab.start("worker-1")
    drained(stores, run_id, celery)
    verdict = client.verdict(run_id)
    docs = documents(settings, run_id, x)
    ended = bits(stores, stores.keys.run_done(run_id), x) | bits(
        stores, stores.keys.run_failed(run_id), x)  # fmt: skip
    lost = set(range(x)) - ended
    missing = set(range(x)) - set(docs)
    print(f"verdict after kill -9, acks {acks}:", json.dumps(verdict))
    assert verdict["released"] == verdict["submits"]["ok"] == x
    assert verdict["lost"] == len(missing) and missing <= lost
    # Never ended, with a document: the killed worker wrote it and died before the shim sent its
    # end (ends go to Redis in batches, every 50 ms): an uncounted effect, not lost.
    assert verdict["uncountedEffects"] == len(lost - missing), verdict
    assert all(docs[seq]["worker"] == killed for seq in lost - missing), (lost, missing)
    assert verdict["duplicated"] == sum(1 for d in docs.values() if d["version"] > 1)
    assert verdict["unexpected"] == 0
    if acks == "early":
        # Celery's default (task_acks_late off) acks a message as its task starts: the tasks
        # the killed worker was running are gone, effect and all, and the verdict says so.
        assert missing and not verdict["clean"]
    else:
        # Acked after the task: what the killed worker ran is delivered again and runs again.
        assert not missing


def test_a_user_s_own_task_is_sent_by_name_and_reported_by_the_shim_in_their_app(
    lab: Supervisor, settings: Settings, stores: Stores, celery: Celery
) -> None:
    lab.up(workers=0)
    env = {**os.environ, **settings.as_env(), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "celery", "-A", "tests.targets.apps.celery_user", "worker",
               "--queues", celery.queue, "--pool", "threads", "--concurrency", "4",
               "--without-gossip", "--without-mingle", "--without-heartbeat",
               "--loglevel", "WARNING"]  # fmt: skip
    log = open(Path(settings.home) / "userapp.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        x = 40
        started = run_lab("run", "start", "--target", "celery", "--task", "userapp.tasks.record",
                          "--args", '["{seq}"]', "--kwargs", '{"job": "{jobId}", "tag": "t"}',
                          "--x", str(x), "--y", "6000", env={**env, "NO_COLOR": "1"})  # fmt: skip
        assert started.returncode == 0, started.stderr
        run_id = started.stdout.strip()
        run = settle(stores, run_id, 60)
        assert (run.processed, run.failed) == (x - 1, 1)  # seq 7 fails for good
        recorded = {int(k): json.loads(v) for k, v in
                    stores.redis.hgetall(f"{settings.prefix}:userapp").items()}  # fmt: skip
        assert recorded == {
            seq: [f"{run_id}-{seq}", "t", 1 if seq % 10 == 3 else 0] for seq in range(x) if seq != 7
        }
        verdict = LabClient.of(settings).verdict(run_id)
        assert verdict["clean"] and verdict["executedMoreThanOnce"] == 0
        latency = LabClient.of(settings).latency(run_id, windows=False)
        assert latency["service"]["count"] == x
    finally:
        # Its work is checked: ended at once (Celery's idle event loop notices a shutdown
        # signal only when its poll ends, up to 10 s later).
        worker.kill()
        worker.wait(15)
        log.close()


def test_a_submit_is_ok_failed_or_indeterminate_as_the_broker_answered(
    settings: Settings, celery: Celery
) -> None:
    jobs = [run_job("run1", seq) for seq in range(3)]
    closed = targets.target("celery", settings.with_overrides(amqp_url="amqp://127.0.0.1:1/"))
    assert [o.status for o in closed.submit(jobs)] == ["failed"] * 3
    host, port = "127.0.0.1", 5672
    with Relay((host, port)) as relay:
        url = f"amqp://guest:guest@127.0.0.1:{relay.port}/%2F"
        through = targets.target("celery", settings.with_overrides(amqp_url=url,
                                                                  amqp_timeout_s=1.0))  # fmt: skip
        assert isinstance(through, Celery)
        try:
            assert [o.status for o in through.submit(jobs[:1])] == ["ok"]
            relay.hold()  # the broker's answers stop coming: sent, never confirmed
            outcomes = through.submit(jobs[1:])
            assert [o.status for o in outcomes] == ["indeterminate", "failed"], outcomes
            relay.release()
            assert [o.status for o in through.submit(jobs[2:])] == ["ok"]  # a new connection
        finally:
            through.close()
    assert celery.backlog().depth in (2, 3)  # the indeterminate one may or may not be there
    celery.purge()
    assert celery.backlog().depth == 0


def test_task_runs_are_checked_at_the_door(lab: Supervisor, settings: Settings) -> None:
    lab.start("api")
    lab.wait_api()
    client = LabClient.of(settings)
    good = {"task": "app.tasks.t", "args": ["{seq}"], "kwargs": {}}
    cases = [
        ({"target": "lab", "payload": good}, "kind"),
        ({"target": "celery", "payload": {**good, "task": "1bad"}}, "payload.task"),
        ({"target": "celery", "payload": {**good, "task": "a" * 201}}, "payload.task"),
        ({"target": "celery", "payload": {**good, "args": {"a": 1}}}, "payload.args"),
        ({"target": "celery", "payload": {**good, "kwargs": [1]}}, "payload.kwargs"),
        ({"target": "celery", "payload": {**good, "queue": "q"}}, "payload.queue"),
        ({"target": "celery", "payload": {"args": []}}, "payload.task"),
    ]
    for body, field in cases:
        answer = client.http.post("/run", json={"x": 1, "y": 60, "kind": "task", **body})
        assert answer.status_code == 422 and answer.json()["fields"] == [field], (body, answer)
    assert client.runs() == []
