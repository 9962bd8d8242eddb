# ruff: noqa: E501 - the strings are notebook cells, kept as a reader sees them
"""Writes the drill notebooks (notebooks/latency.ipynb, scaleout.ipynb, resilience.ipynb).

The notebooks are the source of truth once written; this script is how they were made and how to
remake them after a change to the cells below: `python scripts/make_drill_notebooks.py`.
"""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def write(name: str, cells: list) -> None:
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbf.write(nb, NOTEBOOKS / f"{name}.ipynb")


def params(text: str):
    return code(text, metadata={"tags": ["parameters"]})


LATENCY = [
    md("""# Drill: `GET /status` latency under load

While a run is active, Locust (`loadtests/locustfile.py`, user class `StatusUser`, each user
polling `GET /status` every 0.05–0.25 s) loads the API at several user counts. For each step: requests, p50, p95,
p99 and failures; the verdict is **p95 under the threshold (200 ms) with no failures** at every
step. Run it with `lab report latency`."""),
    params("""USER_STEPS = [10, 50, 100]   # concurrent Locust users, one step each
STEP_SECONDS = 20            # how long each step lasts
P95_MS = 200.0               # the bar
WORKERS = 1
RUN_X = 10_000_000           # a run that stays active during the whole drill
RUN_Y = 60_000               # jobs per minute while Locust runs
SUMMARY_PATH = None          # lab report sets this"""),
    md("## Setup: a private lab namespace, its processes, an active run"),
    code("""import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from lab import stack
from lab.client import LabClient
from lab.drill import Verdicts, drill_settings, save_summary, teardown
from lab.loadtest import run_locust
from lab.supervisor import Supervisor

settings = drill_settings("latency")
stack.up(settings)
supervisor = Supervisor(settings)
supervisor.up(workers=WORKERS)
client = LabClient(settings.api_url)
run = client.run(RUN_X, RUN_Y)
print("run", run["runId"], "at", RUN_Y, "jobs/min; API", settings.api_url)"""),
    md("## The steps"),
    code("""out = Path(tempfile.mkdtemp(prefix="lab-latency-"))
steps = []
for users in USER_STEPS:
    result = run_locust(settings.api_url, users, spawn_rate=max(users / 2, 1), duration_s=STEP_SECONDS,
                        out_dir=out, scenario="status", p95_ms=P95_MS)
    steps.append(result)
    print(f"{users:>4} users: {result.requests:>7,} requests, {result.rps:>6,.0f}/s, "
          f"p50 {result.p50_ms:.0f} ms, p95 {result.p95_ms:.0f} ms, p99 {result.p99_ms:.0f} ms, "
          f"{result.failures} failures")
status = client.status()
print("the run kept going:", status["state"], status["processed"], "processed")"""),
    code("""fig, ax = plt.subplots(figsize=(7, 3.5))
users = [s.users for s in steps]
for key, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
    ax.plot(users, [getattr(s, key) for s in steps], marker="o", label=label)
ax.axhline(P95_MS, color="#b42318", linestyle="--", label=f"bar: p95 < {P95_MS:.0f} ms")
ax.set_xlabel("Locust users"); ax.set_ylabel("GET /status latency (ms)")
ax.set_title("GET /status latency while a run is active"); ax.legend(); ax.grid(alpha=0.3)
plt.show()"""),
    md("## Verdict"),
    code("""verdicts = Verdicts()
for s in steps:
    verdicts.check(f"p95 at {s.users} users", s.p95_ms < P95_MS, f"< {P95_MS:.0f} ms", f"{s.p95_ms:.0f} ms")
    verdicts.check(f"failures at {s.users} users", s.failures == 0 and s.requests > 0, "0",
                   f"{s.failures} of {s.requests}")
verdicts.check("a run was active throughout", status["running"], "running", status["state"])
top = steps[-1]
figures = {"steps": [s.summary() for s in steps], "highestUsers": top.users,
           "highestP95Ms": top.p95_ms, "highestP99Ms": top.p99_ms, "highestRps": top.rps}
save_summary(SUMMARY_PATH, figures, verdicts)
verdicts"""),
    md("## Teardown"),
    code("""client.stop()
supervisor.down()
teardown(settings)"""),
]


SCALEOUT = [
    md("""# Drill: scale-out with 1, 2 and 4 workers

The same work with 1, 2 and 4 workers (`docker compose up --scale worker=N` in compose terms),
for two kinds of job:

* **fast** — a run of `index` jobs released as fast as possible: the pipeline's own overhead;
* **I/O-bound** — `agent` jobs that wait between steps, five at a time per worker.

For each: throughput, the share of the jobs each worker took (fairness as Jain's index, 1.0 =
perfectly even) and errors (there must be none; every job exactly once). Run it with
`lab report scaleout`."""),
    params("""WORKER_COUNTS = [1, 2, 4]
FAST_JOBS = 20_000          # jobs of the fast run per worker count
AGENT_JOBS = 40             # agent jobs per worker count
AGENT_SECONDS = 2.0         # each agent job's duration (steps of 0.5 s)
SUMMARY_PATH = None         # lab report sets this"""),
    md("## Setup"),
    code("""import time

import matplotlib.pyplot as plt

from lab import stack
from lab.client import LabClient
from lab.drill import Verdicts, drill_settings, save_summary, teardown
from lab.state import State
from lab.store import Store
from lab.supervisor import Supervisor, wait_until

settings = drill_settings("scaleout")
stack.up(settings)
state, store = State(settings), Store(settings)
supervisor = Supervisor(settings)
supervisor.up(workers=0)
client = LabClient(settings.api_url)


def jain(shares):
    shares = [s for s in shares]
    return round(sum(shares) ** 2 / (len(shares) * sum(s * s for s in shares)), 3) if any(shares) else 0.0


def with_workers(n):
    \"\"\"Exactly n fresh workers (fresh, so their counters are this step's).\"\"\"
    for name in supervisor.workers():
        supervisor.stop(name)
    for _ in range(n):
        supervisor.add_worker()
    wait_until(lambda: len(client.status()["workers"]) == n, 60, f"{n} workers to announce")"""),
    md("## Fast jobs: one run per worker count"),
    code("""fast = []
for n in WORKER_COUNTS:
    with_workers(n)
    run_id = client.run(FAST_JOBS, 60_000_000)["runId"]
    wait_until(lambda: state.run(run_id).settled, 600, f"the run with {n} workers")
    run = state.run(run_id)
    store.refresh()
    # Heartbeats report each worker's count every LAB_HEARTBEAT_S: wait until they add up.
    def shares():
        counts = [w["processed"] for w in client.status()["workers"]]
        return counts if sum(counts) >= FAST_JOBS else None
    per_worker = wait_until(shares, 30, "the workers' heartbeats to report every job")
    fast.append({"workers": n, "jobs": run.processed, "failed": run.failed,
                 "seconds": run.durationSeconds, "jobsPerSecond": round(run.processed / run.durationSeconds, 1),
                 "documents": store.count(run_id), "distinct": store.distinct_job_ids(run_id),
                 "perWorker": per_worker, "jain": jain(per_worker)})
    print(fast[-1])"""),
    md("## I/O-bound jobs: agent jobs per worker count"),
    code("""agent = []
payload = {"durationSeconds": AGENT_SECONDS, "stepIntervalSeconds": 0.5}
for n in WORKER_COUNTS:
    with_workers(n)
    started = time.time()
    ids = [client.create_job("agent", payload)["id"] for _ in range(AGENT_JOBS)]
    def finished():
        jobs = [client.job(i) for i in ids]
        return jobs if all(j["state"] in ("completed", "failed", "cancelled") for j in jobs) else None
    jobs = wait_until(finished, 600, f"the agent jobs with {n} workers", poll_s=0.25)
    seconds = time.time() - started
    by_worker = {}
    for j in jobs:
        by_worker[j["worker"]] = by_worker.get(j["worker"], 0) + 1
    shares = list(by_worker.values()) + [0] * (n - len(by_worker))
    agent.append({"workers": n, "jobs": AGENT_JOBS, "completed": sum(j["state"] == "completed" for j in jobs),
                  "failed": sum(j["state"] != "completed" for j in jobs), "seconds": round(seconds, 2),
                  "jobsPerSecond": round(AGENT_JOBS / seconds, 2), "perWorker": shares, "jain": jain(shares)})
    print(agent[-1])"""),
    code("""fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for ax, rows, title in ((axes[0], fast, "fast (index) jobs"), (axes[1], agent, "I/O-bound (agent) jobs")):
    ax.bar([str(r["workers"]) for r in rows], [r["jobsPerSecond"] for r in rows], color="#2e90fa")
    for i, r in enumerate(rows):
        ax.text(i, r["jobsPerSecond"], f"{r['jobsPerSecond']:,.1f}\\nJain {r['jain']}", ha="center", va="bottom")
    ax.set_title(title); ax.set_xlabel("workers"); ax.set_ylabel("jobs per second"); ax.margins(y=0.25)
plt.tight_layout(); plt.show()"""),
    md("""## Verdict

No errors and every job exactly once at every worker count; the I/O-bound kind scales with
workers (each adds five slots). On a machine with few cores the fast kind is CPU-bound: more
workers there are reported, not judged."""),
    code("""verdicts = Verdicts()
for r in fast:
    verdicts.check(f"fast, {r['workers']} workers: exactly once", r["jobs"] == r["documents"] == r["distinct"] == FAST_JOBS and r["failed"] == 0,
                   f"{FAST_JOBS} processed, documents, distinct; 0 failed",
                   f"{r['jobs']}, {r['documents']}, {r['distinct']}; {r['failed']} failed")
for r in agent:
    verdicts.check(f"agent, {r['workers']} workers: no errors", r["completed"] == AGENT_JOBS, f"{AGENT_JOBS} completed",
                   f"{r['completed']} completed, {r['failed']} not")
if len(agent) > 1:
    gain = agent[1]["jobsPerSecond"] / agent[0]["jobsPerSecond"]
    verdicts.check(f"agent: {agent[1]['workers']} workers vs {agent[0]['workers']}", gain >= 1.5, "≥ 1.5× the throughput", f"{gain:.2f}×")
for r in agent[1:]:
    verdicts.check(f"agent, {r['workers']} workers: fair share", r["jain"] >= 0.8, "Jain ≥ 0.8", r["jain"])
save_summary(SUMMARY_PATH, {"fast": fast, "agent": agent}, verdicts)
verdicts"""),
    md("## Teardown"),
    code("""supervisor.down()
teardown(settings)"""),
]


RESILIENCE = [
    md("""# Drill: resilience

One run, and during it, one fault after another — each through the supervisor or the private
services this drill starts, never a shortcut:

1. `kill -9` a worker; the supervisor starts a new one, as `lab up` does;
2. restart the API while an event-stream client is connected;
3. restart the scheduler;
4. restart the RabbitMQ broker (a private node of this drill);
5. make Elasticsearch unreachable for a while (stop this drill's ES-API server's Elasticsearch
   service, `noida-db stop elasticsearch`), then bring it back.

Then: Elasticsearch holds exactly X documents with X distinct jobIds, `processed` == X, the event
client caught up, how long each fault took to recover from, and `GET /status` p95 during the drill.
Run it with `lab report resilience`."""),
    params("""X = 60_000                # jobs in the run
Y = 60_000                # jobs per minute (the run lasts X / Y minutes)
WORKERS = 2
SETTLE_SECONDS = 4        # quiet time between faults
ES_DOWN_SECONDS = 5       # how long Elasticsearch stays away
KEEP_DATA = False         # True: leave the drill's keys, queues and index for a closer look
SUMMARY_PATH = None       # lab report sets this"""),
    md("""## Setup

A private RabbitMQ node and a private Elasticsearch-API server on free ports (so restarting them
disturbs nothing else), the machine's Redis, and the lab's processes under a supervisor that
restarts any that exit — as `lab up` does."""),
    code("""import atexit
import json
import tempfile
import threading
import time
from pathlib import Path

import matplotlib.pyplot as plt

from lab import stack
from lab.client import ApiError, LabClient
from lab.drill import StatusSampler, Verdicts, drill_settings, save_summary, teardown
from lab.state import State
from lab.store import Store
from lab.supervisor import Supervisor, wait_until

home = Path(tempfile.mkdtemp(prefix="lab-resilience-"))
home.chmod(0o755)  # the private RabbitMQ node runs as the rabbitmq user
rabbit_port, es_port = stack.free_port(), stack.free_port()
rabbit = stack.start_rabbitmq(rabbit_port, home)
es = stack.start_elasticsearch(es_port, home)
if not KEEP_DATA:  # stopped by the teardown cell, or when the kernel exits after a failure
    atexit.register(lambda: (rabbit.stop(), es.stop()))
settings = drill_settings("resilience", keep=KEEP_DATA, amqp_url=rabbit.url, es_url=es.url, home=str(home),
                          heartbeat_s=0.5, heartbeat_ttl_s=3.0, lease_ms=2000)
supervisor = Supervisor(settings)
supervisor.up(workers=WORKERS)
client = LabClient(settings.api_url)
keeper_done = threading.Event()
keeper = threading.Thread(target=supervisor.watch, kwargs={"until": keeper_done.is_set, "poll_s": 0.5},
                          daemon=True)
keeper.start()
print("RabbitMQ", rabbit.url, "| Elasticsearch", es.url, "| API", settings.api_url)"""),
    md("""An event-stream client follows `/events` for the whole drill, reconnecting with
`Last-Event-ID` whenever the stream breaks, as a dashboard would."""),
    code("""stream = {"events": 0, "reconnects": 0, "last": None, "lastId": None}
stream_done = threading.Event()

def follow():
    own = LabClient(settings.api_url)
    while not stream_done.is_set():
        try:
            for event in own.events(stream["lastId"]):
                if stream_done.is_set():
                    return
                if "data" in event:
                    stream["events"] += 1
                    stream["lastId"] = event["id"]
                    if event["event"] in ("run", "status"):
                        stream["last"] = event["data"]
        except ApiError:
            pass
        stream["reconnects"] += 1
        stream_done.wait(0.5)

threading.Thread(target=follow, daemon=True).start()"""),
    md("## The run and the faults"),
    code("""faults = []   # {fault, at, backAt, recoverySeconds, ...}: seconds of drill time

def fault(name, action):
    \"\"\"Inject a fault; `at` is when it began, `backAt` when the broken part was back.\"\"\"
    at = time.time() - sampler.started
    action()
    back = time.time() - sampler.started
    left = X - State(settings).run(run_id).processed
    faults.append({"fault": name, "at": round(at, 2), "backAt": round(back, 2), "jobsLeft": left})
    print(f"t={at:6.1f}s  {name} (back after {back - at:.1f} s; {left:,} jobs still to process)")
    time.sleep(SETTLE_SECONDS)

def restart_rabbitmq():
    global rabbit
    rabbit.stop()
    rabbit = stack.start_rabbitmq(rabbit_port, home)  # same node, same data: durable messages stay

def es_outage():
    es.pause_service()     # the ES-API server stops serving Elasticsearch: connections refused
    time.sleep(ES_DOWN_SECONDS)
    es.resume_service()    # same port, same data

with StatusSampler(settings.api_url, interval_s=0.1) as sampler:
    run_id = client.run(X, Y)["runId"]
    wait_until(lambda: State(settings).run(run_id).processed > 0, 60, "the first jobs")
    time.sleep(SETTLE_SECONDS)
    fault("kill -9 worker-1 (the supervisor starts a new one)", lambda: supervisor.kill("worker-1"))
    fault("restart the API", lambda: supervisor.restart("api"))
    fault("restart the scheduler", lambda: supervisor.restart("scheduler"))
    fault("restart RabbitMQ", restart_rabbitmq)
    fault(f"Elasticsearch away for {ES_DOWN_SECONDS} s", es_outage)
    run = wait_until(lambda: (r := State(settings).run(run_id)) and r.settled and r, 900, "the run to settle", poll_s=0.5)
    time.sleep(1.0)

# Recovered: the first moment after the part was back at which `processed` grew again (jobs a
# worker held when the fault hit may still be counted during the fault; they do not count).
for f in faults:
    resumed = sampler.first_progress_after(f["backAt"]) if f["jobsLeft"] > 0 else None
    f["recoverySeconds"] = round(resumed - f["at"], 2) if resumed is not None else None
    f["resumedAfterBackSeconds"] = round(resumed - f["backAt"], 2) if resumed is not None else None
for f in faults:
    print(f"{f['fault']:<52} recovered after {f['recoverySeconds']} s "
          f"({f['resumedAfterBackSeconds']} s after it was back)")"""),
    md("## What the pipeline did"),
    code("""fig, ax = plt.subplots(figsize=(11, 4))
ts = [s["t"] for s in sampler.samples]
ax.plot(ts, [s["enqueued"] for s in sampler.samples], label="enqueued")
ax.plot(ts, [s["processed"] for s in sampler.samples], label="processed")
for i, f in enumerate(faults, start=1):
    ax.axvline(f["at"], color="#b42318", linestyle=":")
    ax.text(f["at"], X * (1.02 - 0.07 * i), f" {i}. {f['fault']}", color="#b42318", fontsize=8)
ax.set_xlabel("seconds"); ax.set_ylabel("jobs"); ax.set_title(f"run {run_id}: X={X:,}, Y={Y:,}/min")
ax.legend(loc="lower right"); ax.grid(alpha=0.3)
plt.show()"""),
    code("""stream_done.set()
wait_until(lambda: stream["last"] and stream["last"].get("processed") == X, 30, "the event client to catch up")
store = Store(settings)
store.refresh()
documents, distinct = store.count(run_id), store.distinct_job_ids(run_id)
latency = sampler.latency()
recoveries = [f["recoverySeconds"] for f in faults]
verdicts = Verdicts()
verdicts.check("Elasticsearch count", documents == X, X, documents)
verdicts.check("duplicate jobIds", documents == distinct, 0, documents - distinct)
verdicts.check("processed", run.processed == X and run.failed == 0, f"{X}, 0 failed", f"{run.processed}, {run.failed} failed")
verdicts.check("event client caught up", stream["last"]["processed"] == X, X,
               f"{stream['last']['processed']} after {stream['reconnects']} reconnects")
verdicts.check("every fault hit a run with work left", all(f["jobsLeft"] > 0 for f in faults),
               "jobs left at each (else raise X)", [f["jobsLeft"] for f in faults])
verdicts.check("every fault recovered", all(r is not None for r in recoveries), "progress after each", recoveries)
verdicts.check("GET /status p95 during the drill", latency["p95Ms"] < 200, "< 200 ms", f"{latency['p95Ms']} ms")
figures = {"runId": run_id, "x": X, "y": Y, "documents": documents, "distinct": distinct,
           "processed": run.processed, "faults": faults, "status": latency,
           "stream": {k: stream[k] for k in ("events", "reconnects")}, "seconds": run.durationSeconds}
save_summary(SUMMARY_PATH, figures, verdicts)
verdicts"""),
    md("## Teardown"),
    code("""keeper_done.set()
supervisor.down()
if KEEP_DATA:
    print("kept:", settings.as_env())
else:
    teardown(settings)
    rabbit.stop()
    es.stop()"""),
]


if __name__ == "__main__":
    write("latency", LATENCY)
    write("scaleout", SCALEOUT)
    write("resilience", RESILIENCE)
