"""The `bullmq` target on real services and real Node processes: the Python client and the Node
worker run the same BullMQ scripts; the Node shim hands lab's counting script what Python
would; submits, backlog and purge on Redis; a user's own BullMQ worker measured in two lines;
a seeded synthetic run fails the same jobs on BullMQ as on lab's own pipeline; five agent jobs
run at once on one worker and stream their steps through lab's SSE; a worker frozen past its
lock has its jobs run twice, and the verdict counts them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.client import LabClient
from lab.config import Settings
from lab.ops import servers
from lab.ops.supervisor import Supervisor
from lab.runtime.messages import Job, run_job
from lab.runtime.scripts import script_source
from lab.runtime.store import MAPPINGS, Store
from lab.runtime.stores import Stores
from lab.runtime.submits import by_status
from lab.targets import bullmq, target, verdict
from lab.wait import wait_until
from tests.conftest import cleanup, make_settings
from tests.helpers import run_lab, settle
from tests.targets.seeded import seeded_run
from tests.targets.test_rq import documents
from workers.agent import step as agent_step

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "targets" / "bullmq"
APPS = Path(__file__).resolve().parent / "apps"
NODE = shutil.which("node") or "node"


@pytest.fixture
def bull(settings: Settings) -> Iterator[bullmq.Bullmq]:
    """The target; what BullMQ kept of its queue is purged after the test's processes stopped
    (a test asks for it before `lab`, whose teardown stops them)."""
    made = target("bullmq", settings)
    assert isinstance(made, bullmq.Bullmq)
    yield made
    made.purge()
    made.close()


def node(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    done = subprocess.run([NODE, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


# --- one BullMQ, two languages ------------------------------------------------------------------
def test_python_and_node_bullmq_run_the_same_scripts() -> None:
    """Same scripts, same Redis key layout: the pair package.json and pyproject.toml pin."""
    import bullmq as client

    listed = node("-e", (
        "const fs = require('fs'), path = require('path');"
        "const dir = 'targets/bullmq/node_modules/bullmq/dist/cjs/scripts'; const out = {};"
        "for (const f of fs.readdirSync(dir)) {"
        "  if (!f.endsWith('.js') || f === 'index.js') continue;"
        "  for (const s of Object.values(require(path.resolve(dir, f))))"
        "    if (s && s.content) out[`${s.name}-${s.keys}.lua`] = s.content; }"
        "console.log(JSON.stringify(out));"))  # fmt: skip
    scripts = json.loads(listed)
    commands = Path(client.__file__).parent / "commands"

    def words(text: str) -> list[str]:
        return [" ".join(line.split()) for line in text.splitlines() if line.strip()]

    python = {p.name: words(p.read_text()) for p in commands.glob("*.lua")}
    assert sorted(python) == sorted(scripts)
    different = [name for name, text in scripts.items() if words(text) != python[name]]
    assert not different, different
    package = json.loads((HOME / "package.json").read_text())
    assert package["dependencies"]["bullmq"] == "5.52.2" and client.__version__ == "2.15.0"


def test_the_shims_vectors_are_pythons_and_node_gives_the_same_answers() -> None:
    fresh = subprocess.run([sys.executable, "scripts/record_vectors.py", "--check"], cwd=ROOT)
    assert fresh.returncode == 0, "targets/bullmq/test/record-vectors.json is stale: rewrite it"
    out = node("--test", "targets/bullmq/test/record.test.js")
    assert "# fail 0" in out and "# pass " in out
    assert json.loads((HOME / "lib" / "mappings.json").read_text()) == MAPPINGS


def test_a_job_is_sent_with_labs_id_and_metadata_beside_its_message(settings: Settings) -> None:
    payload = {"serviceMs": {"dist": "fixed", "value": 1}, "seed": 2**60 + 1}
    job = run_job("r1", 4, "synthetic", payload)
    sent = bullmq.added(job, settings)
    assert sent["name"] == "synthetic" and sent["opts"]["jobId"] == "r1-4"
    assert sent["opts"]["attempts"] == settings.max_attempts
    assert sent["opts"]["backoff"]["type"] == "lab"
    assert sent["data"]["message"]["payload"]["seed"] == str(2**60 + 1)  # JavaScript's rounding
    lab = sent["data"]["lab"]
    assert lab == {"createdAt": job.createdAt, "kind": "synthetic", "attemptBase": 0,
                   "ladder": list(settings.retry_ladder), "single": False}  # fmt: skip
    named = {"task": "resize", "args": ["{seq}"], "kwargs": {"j": "{jobId}"}}
    task = run_job("r1", 5, "task", named)
    sent = bullmq.added(task, settings)
    assert sent["name"] == "resize" and "attempts" not in sent["opts"]
    assert sent["data"]["args"] == [5] and sent["data"]["kwargs"] == {"j": "r1-5"}
    for bad in ("12", "a:b"):
        with pytest.raises(ValueError, match="BullMQ takes no custom id"):
            bullmq.added(Job(bad, None, None, "sleep"), settings)


# --- submits, backlog, purge ------------------------------------------------------------------
def test_submits_backlog_and_purge_touch_only_the_queues_keys(
    settings: Settings, stores: Stores, bull: bullmq.Bullmq
) -> None:
    away = target("bullmq", settings.with_overrides(
        redis_url=f"redis://127.0.0.1:{servers.free_port()}/0", redis_timeout_s=1.0))  # fmt: skip
    jobs = [run_job("r1", seq, "sleep", {"seconds": 0}) for seq in range(3)]
    assert [o.status for o in away.submit(jobs)] == ["failed"] * 3
    away.close()
    # A number is no id BullMQ takes; the last is a second add of a job: BullMQ's no-op.
    outcomes = bull.submit([Job("123", None, None, "sleep"), *jobs, jobs[0]])
    assert [o.status for o in outcomes] == ["failed", "ok", "ok", "ok", "ok"]
    assert outcomes[1].broker_id == "r1-0"
    waiting = bull.backlog()
    assert waiting.depth == 3 and waiting.oldest_age_ms is not None and waiting.oldest_age_ms >= 0
    neighbour = f"{bullmq.PREFIX}:{bull.queue}x:wait"  # another queue whose name starts the same
    stores.redis.set(neighbour, "kept")
    try:
        bull.purge()
        assert not list(stores.redis.scan_iter(match=f"{bullmq.PREFIX}:{bull.queue}:*"))
        assert stores.redis.get(neighbour) == "kept" and bull.backlog().depth == 0
    finally:
        stores.redis.delete(neighbour)


def test_lab_reset_deletes_what_bullmq_keeps_of_the_namespaces_queue(
    settings: Settings, stores: Stores, bull: bullmq.Bullmq
) -> None:
    assert bull.submit([run_job("r1", 0, "sleep", {})])[0].status == "ok"
    pattern = f"{bullmq.PREFIX}:{bull.queue}:*"
    assert list(stores.redis.scan_iter(match=pattern))
    cleanup(settings)  # `lab reset`, as every test's namespace ends
    assert not list(stores.redis.scan_iter(match=pattern))


def test_a_store_publishes_the_sha_of_each_script_it_loads(settings: Settings) -> None:
    stores = Stores.of(settings)
    target("bullmq", settings).open()  # what the scheduler does before it submits a run
    sha = stores.redis.hget(stores.keys.scripts, "record")
    assert sha == hashlib.sha1(script_source("record").encode()).hexdigest()
    assert stores.redis.script_exists(sha) == [True]


# --- a user's own worker ----------------------------------------------------------------------
def node_env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's Node app: lab's settings, and `lab-bullmq` installed beside
    BullMQ (as `npm install <lab>/targets/bullmq` would)."""
    modules = tmp_path / "node_modules"
    if not modules.exists():
        modules.mkdir()
        (modules / "lab-bullmq").symlink_to(HOME)
    paths = f"{modules}{os.pathsep}{HOME / 'node_modules'}"
    return {**os.environ, **settings.as_env(), "NODE_PATH": paths, **extra}


def test_a_users_worker_is_measured_through_the_sha_lab_published(
    settings: Settings, stores: Stores, bull: bullmq.Bullmq, tmp_path: Path
) -> None:
    x, key = 20, f"{settings.prefix}:user-seen"
    payload = {"task": "resize", "args": ["{seq}", "{jobId}"], "kwargs": {"fail": 3}}
    run_id = stores.runs.start(x, 6000, kind="task", payload=payload, target="bullmq")
    jobs = [run_job(run_id, seq, "task", payload) for seq in range(x)]
    bull.open()  # publishes the counting script, as the scheduler does
    # Half the jobs for a worker that finds the script only by the SHA lab published (no Lua
    # files at hand), half after Redis lost it (a SHA it does not know: the source is loaded).
    for half, extra in ((jobs[:10], {"LAB_LUA_DIR": str(tmp_path / "none")}),
                        (jobs[10:], {})):  # fmt: skip
        if not extra:
            stores.redis.hset(stores.keys.scripts, "record", "0" * 40)
        outcomes = bull.submit(half)
        stores.release.submitted(run_id, by_status(half, outcomes))
        node(str(APPS / "bullmq_user.js"), bull.queue, key, str(len(half)),
             env=node_env(settings, tmp_path, **extra))  # fmt: skip
    seen = {int(seq): json.loads(v) for seq, v in stores.redis.hgetall(key).items()}
    assert sorted(seen) == [s for s in range(x) if s != 3]
    for job in jobs:
        if job.seq != 3:
            assert seen[job.seq] == {"jobId": job.jobId, "name": "resize", "seqType": "number",
                                     "createdAt": job.createdAt, "bullId": job.jobId}  # fmt: skip
    judged = verdict.read(stores, None, run_id)
    assert judged is not None
    assert (judged["processed"], judged["failed"], judged["lost"]) == (x - 1, 1, 0), judged
    assert judged["clean"] and judged["submits"]["ok"] == x
    timed = stores.runs.latency(run_id, windows=False)
    assert timed is not None and timed["service"]["count"] == x


# --- lab up --target bullmq -----------------------------------------------------------------------
@pytest.mark.slow
def test_a_synthetic_run_fails_the_same_jobs_on_bullmq_as_on_labs_pipeline(
    bull: bullmq.Bullmq, lab: Supervisor, settings: Settings, stores: Stores
) -> None:
    lab.up(workers=1, worker_args=["--target", "bullmq", "--concurrency", "5"])
    lab.add_worker([])  # lab's own worker beside it: each consumes its own queue
    client = LabClient(settings.api_url)
    x = 200
    found = {name: seeded_run(client, stores, name, x, seed=2, service_ms=(100, 300),
                              ramp=(600, 6000, 5), attempts=settings.max_attempts)
             for name in ("bullmq", "lab")}  # fmt: skip
    expected = found["lab"].failed
    assert found["bullmq"].failed == expected
    # Each p50 was held to the same draws by `seeded_run`.
    present, _ = documents(settings, found["bullmq"].run_id, x)
    assert present == set(range(x)) - expected


@pytest.fixture
def short_lock(es_url: str, tmp_path: Path) -> Iterator[Settings]:
    """A namespace whose BullMQ workers hold a job's lock 2 s (its stalled check: every 1 s)."""
    made = make_settings(es_url, tmp_path, bullmq_lock_ms=2000)
    yield made
    cleanup(made)


@pytest.mark.slow
def test_a_worker_frozen_past_its_lock_has_its_jobs_run_twice_and_the_verdict_counts_them(
    short_lock: Settings,
) -> None:
    settings, stores = short_lock, Stores.of(short_lock)
    bull = target("bullmq", settings)
    lab = Supervisor(settings, log_dir=Path(settings.home) / "logs")
    store = Store(settings)
    try:
        lab.up(workers=2, worker_args=["--target", "bullmq", "--concurrency", "5"])
        client = LabClient(settings.api_url)
        x, service_ms = 60, 1000
        payload = {"serviceMs": {"dist": "fixed", "value": service_ms}}
        run_id = client.run(x, 6000, kind="synthetic", payload=payload, target="bullmq")["runId"]
        worker = stores.keys.worker_template

        def holding() -> bool:
            """worker-1's shim says it runs 5 jobs."""
            pid = lab.pid("worker-1")
            for member in stores.redis.smembers(stores.keys.workers):
                beat = stores.redis.hgetall(worker % member)
                if beat.get("pid") == str(pid) and beat.get("running") == "5":
                    return True
            return False

        wait_until(holding, 60, "worker-1 to hold five jobs", poll_s=0.05)
        # Frozen for twice its lock and then some: worker-2 finds the locks lapsed and runs
        # the jobs again; thawed, worker-1 finishes them too.
        frozen = run_lab("fault", "freeze", "worker-1", "--seconds", "6",
                         env={**os.environ, **settings.as_env()})  # fmt: skip
        assert frozen.returncode == 0, frozen.stderr
        run = settle(stores, run_id, 120)
        judged: dict[str, Any] = {}

        def counted() -> bool:
            judged.update(verdict.read(stores, store, run_id) or {})
            twice = judged.get("executedMoreThanOnce", 0)
            return twice > 0 and judged.get("duplicated") == twice

        wait_until(counted, 30, "worker-1's second ends to be counted", lambda: str(judged))
        _, rewritten = documents(settings, run_id, x)
        again = {s for s in range(x) if stores.redis.getbit(stores.keys.run_again(run_id), s)}
        print(f"\nbullmq freeze: verdict {judged}; documents written twice {sorted(rewritten)}")
        assert run.processed == x and judged["lost"] == 0 and judged["unexpected"] == 0
        assert again == rewritten and 1 <= len(again) <= 5  # what worker-1 held, at most
        assert judged["executedMoreThanOnce"] == judged["duplicated"] == len(rewritten)
    finally:
        store.close()
        lab.down(grace_s=10)
        bull.purge()
        bull.close()


# --- single jobs on BullMQ ----------------------------------------------------------------------
def followed(settings: Settings, job_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each job's events through lab's SSE (`GET /jobs/{id}/stream`), all followed at once,
    until each ended."""
    events: dict[str, list[dict[str, Any]]] = {job_id: [] for job_id in job_ids}

    def follow(job_id: str) -> None:
        client = LabClient(settings.api_url)
        try:
            for event in client.follow_job(job_id):
                if "data" in event:
                    events[job_id].append(event["data"])
        finally:
            client.close()

    threads = [threading.Thread(target=follow, args=(i,), daemon=True) for i in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(t.is_alive() for t in threads), {i: e[-1:] for i, e in events.items()}
    return events


@pytest.mark.slow
def test_five_agent_jobs_run_at_once_on_one_worker_and_stream_their_steps(
    bull: bullmq.Bullmq, lab: Supervisor, settings: Settings, stores: Stores
) -> None:
    lab.up(workers=1, worker_args=["--target", "bullmq", "--concurrency", "5"])
    client = LabClient(settings.api_url)
    ids = [client.create_job("agent", {}, target="bullmq")["id"] for _ in range(5)]

    def in_status() -> bool:
        """/status shows the worker running the five, by their ids."""
        workers = client.status()["workers"]
        return any(w["running"] == 5 and sorted(w["jobs"]) == sorted(ids) for w in workers)

    wait_until(in_status, 8, "/status to show the worker's five jobs", lambda: str(client.status()))
    events = followed(settings, ids)
    jobs = [client.job(job_id) for job_id in ids]
    for job, job_id in zip(jobs, ids, strict=True):
        steps = [e for e in events[job_id] if e["state"] == "active" and e.get("step")]
        # The steps lab's own agent kind tells for this job and attempt, one a second.
        told = [agent_step(job_id, 1, n, "https://example.com/")[0] for n in range(1, 11)]
        assert [e["step"] for e in steps] == told and steps[-1]["progress"] == 100, steps
        assert events[job_id][-1]["state"] == "completed" and job["target"] == "bullmq"
        assert job["result"]["steps"] == 10 and job["worker"].startswith(socket.gethostname())
        took = (iso_ms(job["finishedAt"]) - iso_ms(job["startedAt"])) / 1000
        assert 9 <= took <= 20, job
    # All five at once on the one worker: each started before any ended.
    assert max(iso_ms(j["startedAt"]) for j in jobs) < min(iso_ms(j["finishedAt"]) for j in jobs)
    assert len({j["worker"] for j in jobs}) == 1


def stepping(lab: Supervisor, settings: Settings, seconds: float) -> tuple[LabClient, str]:
    """One BullMQ worker under `lab up`, and an agent job on it of `seconds` in half-second
    steps, past its first step."""
    lab.up(workers=1, worker_args=["--target", "bullmq"])
    client = LabClient(settings.api_url)
    payload = {"durationSeconds": seconds, "stepIntervalSeconds": 0.5}
    job_id = client.create_job("agent", payload, target="bullmq")["id"]
    wait_until(lambda: client.job(job_id)["progress"] > 0, 30, "the job's first step")
    return client, job_id


@pytest.mark.slow
def test_a_bullmq_job_is_cancelled_retried_and_deleted_through_bullmq(
    bull: bullmq.Bullmq, lab: Supervisor, settings: Settings
) -> None:
    client, job_id = stepping(lab, settings, 3)
    assert client.cancel_job(job_id)["state"] == "active"  # asked: it stops at its next step
    wait_until(lambda: client.job(job_id)["state"] == "cancelled", 30, "the cancel")
    assert client.retry_job(job_id)["attempt"] == 2
    watched = run_lab("job", "watch", job_id, env={**os.environ, **settings.as_env()})
    assert watched.returncode == 0, watched.stdout + watched.stderr  # `lab job watch`: completed
    assert "step 6/6" in watched.stdout and "completed" in watched.stdout
    log = [line["message"] for line in client.job(job_id)["log"]]
    assert any("cancelled" in m for m in log) and log[-1] == "attempt 2 completed"
    assert client.delete_job(job_id)["deleted"] == job_id
    assert not bull.has(job_id)  # BullMQ's job went with the record
    refused = httpx.post(f"{settings.api_url}/jobs", json={"kind": "agent", "target": "bullmq",
                                                          "delaySeconds": 5})  # fmt: skip
    assert refused.status_code == 422 and refused.json()["fields"] == ["runAt"]


@pytest.mark.slow
def test_the_relay_resumes_where_it_stopped_when_the_api_is_killed(
    bull: bullmq.Bullmq, lab: Supervisor, settings: Settings, stores: Stores
) -> None:
    _, job_id = stepping(lab, settings, 4)
    lab.kill("api")  # its steps go on in BullMQ's stream meanwhile
    wait_until(lambda: stores.redis.hget(f"bull:{bull.queue}:{job_id}", "finishedOn"), 30,
               "BullMQ to finish the job")  # fmt: skip
    lab.start("api")
    lab.wait_api()
    events = followed(settings, [job_id])[job_id]
    steps = [e["step"] for e in events if e["state"] == "active" and e.get("step")]
    assert steps == [agent_step(job_id, 1, n, "https://example.com/")[0] for n in range(1, 9)]
    assert events[-1]["state"] == "completed"


def iso_ms(text: str) -> float:
    return datetime.fromisoformat(text).timestamp() * 1000
