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


def write(name: str, cells: list, folder: Path = NOTEBOOKS) -> None:
    nb = nbf.v4.new_notebook()
    # Ids by position, so regenerating an unchanged notebook changes nothing (a test checks it).
    for number, cell in enumerate(cells, 1):
        cell.id = f"{name}-{number}"
    nb.cells = cells
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nbf.write(nb, folder / f"{name}.ipynb")


def params(text: str):
    return code(text, metadata={"tags": ["parameters"]})


LATENCY = [
    md("""# Drill: `GET /status` latency under load, and where it breaks

While a fast run is active (`RUN_Y` jobs a minute on one worker), Locust in distributed mode
(`LOCUST_PROCESSES` worker processes, user class `StatusRateUser`, each user offering a fixed 10
requests a second) offers `GET /status` at rising rates. For each step: answered requests a
second, p50, p95, p99, failures, and the pipeline's drain (jobs processed a second) beside it.
The load rises until p95 passes the bar or a request fails; the **knee** is the highest answered
rate that met the bar. Verdict: the knee is at least `TARGET_RPS` and the run kept going. Run it
with `lab report latency`."""),
    params("""OFFERED_STEPS = [250, 500, 1000, 1500, 2000, 3000]  # GET /status a second, one step each
STEP_SECONDS = 15           # how long each step lasts
P95_MS = 20.0               # the bar a step must meet
TARGET_RPS = 1000           # the knee must be at least this
LOCUST_PROCESSES = 2
API_PROCESSES = 1
RUN_X = 10_000_000          # a run that stays active during the whole drill
RUN_Y = 120_000             # jobs per minute while Locust runs
SUMMARY_PATH = None         # lab report sets this"""),
    md("## Setup: a private lab namespace, its processes, an active run"),
    code("""import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt

from lab.ops import stack
from lab.measure.bench_status import drain_per_second, load_step, named_pids
from lab.client import LabClient
from lab.measure.drill import Verdicts, drill_settings, save_summary, teardown
from lab.runtime.state import State
from lab.ops.supervisor import Supervisor
from lab.wait import wait_until

settings = drill_settings("latency")
stack.up(settings)
supervisor = Supervisor(settings)
supervisor.up(workers=1, api_args=["--processes", str(API_PROCESSES)] if API_PROCESSES > 1 else None)
client = LabClient.of(settings)
run_id = client.run(RUN_X, RUN_Y)["runId"]
wait_until(lambda: State(settings).run(run_id).processed > 0, 60, "the first jobs")
time.sleep(2)
idle = drain_per_second(State(settings), run_id, STEP_SECONDS / 2)
print(f"run {run_id} at {RUN_Y:,} jobs/min; drain with no load: {idle:,.0f} jobs/s; API {settings.api_url}")"""),
    md("## The steps, until the bar breaks"),
    code("""out = Path(tempfile.mkdtemp(prefix="lab-latency-"))
steps = []
for offered in OFFERED_STEPS:
    step = load_step(settings, run_id, offered, STEP_SECONDS, out, LOCUST_PROCESSES, named_pids(supervisor))
    step["met"] = step["p95Ms"] <= P95_MS and step["failures"] == 0 and step["requests"] > 0
    steps.append(step)
    print(f"offered {offered:>5,}/s: answered {step['answeredPerSecond']:>7,.0f}/s, p50 {step['p50Ms']:.0f} ms, "
          f"p95 {step['p95Ms']:.0f} ms, p99 {step['p99Ms']:.0f} ms, {step['failures']} failures, "
          f"drain {step['drainPerSecond']:,.0f} jobs/s {'' if step['met'] else '<- past the bar'}")
    if not step["met"]:
        break
met = [s for s in steps if s["met"]]
knee = max((s["answeredPerSecond"] for s in met), default=0.0)
status = client.status()
print(f"knee: {knee:,.0f} answered/s with p95 <= {P95_MS:g} ms; the run: {status['state']}, "
      f"{status['processed']:,} processed")"""),
    code("""fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
answered = [s["answeredPerSecond"] for s in steps]
for key, label in (("p50Ms", "p50"), ("p95Ms", "p95"), ("p99Ms", "p99")):
    left.plot(answered, [s[key] for s in steps], marker="o", label=label)
left.axhline(P95_MS, color="#b42318", linestyle="--", label=f"bar: p95 <= {P95_MS:g} ms")
if knee:
    left.axvline(knee, color="#067647", linestyle=":", label=f"knee {knee:,.0f}/s")
left.set_xlabel("answered GET /status a second"); left.set_ylabel("latency (ms)")
left.set_title("GET /status latency while a run is active"); left.legend(); left.grid(alpha=0.3)
right.plot(answered, [s["drainPerSecond"] for s in steps], marker="o", label="drain under load")
right.axhline(idle, color="#667085", linestyle="--", label=f"drain with no load ({idle:,.0f}/s)")
right.set_xlabel("answered GET /status a second"); right.set_ylabel("jobs processed a second")
right.set_title("the pipeline beside it"); right.legend(); right.grid(alpha=0.3)
plt.tight_layout(); plt.show()"""),
    md("## Verdict"),
    code("""verdicts = Verdicts()
verdicts.check("knee (highest answered rate meeting the bar)", knee >= TARGET_RPS,
               f">= {TARGET_RPS:,}/s with p95 <= {P95_MS:g} ms", f"{knee:,.0f}/s")
for s in met:
    verdicts.check(f"drain at {s['answeredPerSecond']:,.0f} answered/s", s["drainPerSecond"] >= 0.9 * idle,
                   f">= 90 % of {idle:,.0f}/s", f"{s['drainPerSecond']:,.0f}/s")
verdicts.check("a run was active throughout", status["running"], "running", status["state"])
figures = {"steps": steps, "kneePerSecond": knee, "p95BarMs": P95_MS, "idleDrainPerSecond": round(idle, 1),
           "apiProcesses": API_PROCESSES, "locustProcesses": LOCUST_PROCESSES, "runY": RUN_Y}
headline = {"knee": f"{knee:,.0f} answered/s with p95 <= {P95_MS:g} ms",
            "drain with no load": f"{idle:,.0f} jobs/s"}
for s in steps:
    headline[f"{s['offeredPerSecond']:,}/s offered"] = (
        f"{s['answeredPerSecond']:,.0f}/s answered; p50 {s['p50Ms']:g}, p95 {s['p95Ms']:g}, p99 {s['p99Ms']:g} ms; "
        f"drain {s['drainPerSecond']:,.0f} jobs/s")
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=fig)
verdicts"""),
    md("## Teardown"),
    code("""client.stop()
supervisor.down()
teardown(settings)
shutil.rmtree(out, ignore_errors=True)"""),
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

from lab.ops import stack
from lab.client import LabClient
from lab.measure.drill import Verdicts, drill_settings, save_summary, teardown
from lab.runtime.state import State
from lab.runtime.store import Store
from lab.ops.supervisor import Supervisor
from lab.wait import wait_until

settings = drill_settings("scaleout")
stack.up(settings)
state, store = State(settings), Store(settings)
supervisor = Supervisor(settings)
supervisor.up(workers=0)
client = LabClient.of(settings)


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
headline = {}
for label, rows in (("fast", fast), ("agent", agent)):
    for r in rows:
        r["speedup"] = round(r["jobsPerSecond"] / rows[0]["jobsPerSecond"], 2)
        headline[f"{label}, {r['workers']} worker{'s' if r['workers'] > 1 else ''}"] = (
            f"{r['jobsPerSecond']:,.1f} jobs/s, speed-up {r['speedup']:.2f}x, fairness (Jain) {r['jain']}")
save_summary(SUMMARY_PATH, {"fast": fast, "agent": agent}, verdicts, headline, chart=fig)
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
import shutil
import tempfile
import threading
import time
from pathlib import Path

import matplotlib.pyplot as plt

from lab.ops import servers
from lab.client import LabClient
from lab.config import redacted
from lab.measure.drill import EventFollower, StatusSampler, Verdicts, drill_settings, save_summary, teardown
from lab.runtime.state import State
from lab.runtime.store import Store
from lab.ops.supervisor import Supervisor
from lab.wait import wait_until

home = Path(tempfile.mkdtemp(prefix="lab-resilience-"))
home.chmod(0o755)  # the private RabbitMQ node runs as the rabbitmq user
rabbit_port, es_port = servers.free_port(), servers.free_port()
rabbit = servers.start_rabbitmq(rabbit_port, home)
es = servers.start_elasticsearch(es_port, home)
if not KEEP_DATA:  # stopped by the teardown cell, or when the kernel exits after a failure
    atexit.register(es.stop)  # one handler each: one that fails does not keep the other from running
    atexit.register(lambda: rabbit.stop())
settings = drill_settings("resilience", keep=KEEP_DATA, amqp_url=rabbit.url, es_url=es.url, home=str(home),
                          heartbeat_s=0.5, heartbeat_ttl_s=3.0, lease_ms=2000)
supervisor = Supervisor(settings)
supervisor.up(workers=WORKERS)
client = LabClient.of(settings)
keeper_done = threading.Event()
keeper = threading.Thread(target=supervisor.watch, kwargs={"until": keeper_done.is_set, "poll_s": 0.5},
                          daemon=True)
keeper.start()
print("RabbitMQ", redacted(settings)["LAB_AMQP_URL"], "| Elasticsearch", es.url, "| API", settings.api_url)"""),
    md("""An event-stream client follows `/events` for the whole drill, reconnecting with
`Last-Event-ID` whenever the stream breaks, as a dashboard would."""),
    code("""stream = EventFollower(settings).start()"""),
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
    rabbit = servers.start_rabbitmq(rabbit_port, home)  # same node, same data: durable messages stay

def es_outage():
    es.pause_service()     # the ES-API server stops serving Elasticsearch: connections refused
    time.sleep(ES_DOWN_SECONDS)
    es.resume_service()    # same port, same data

with StatusSampler(settings.api_url, interval_s=0.1, token=settings.api_token) as sampler:
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
plt.show()
chart = fig  # the report's main chart"""),
    md("""The run's own timeline (`GET /runs/{id}/timeline`): jobs per second as the counting scripts
recorded them in Redis, so the API restart above lost none of it."""),
    code("""timeline = client.timeline(run_id)["points"]
t0 = timeline[0]["t"]
fig, ax = plt.subplots(figsize=(11, 2.6))
ax.bar([p["t"] - t0 for p in timeline], [p["processed"] for p in timeline], width=1.0, color="#1a7f37")
ax.set_xlabel("seconds since the run started"); ax.set_ylabel("processed / s"); ax.grid(alpha=0.3)
plt.show()"""),
    code("""wait_until(lambda: stream.last and stream.last.get("processed") == X, 30, "the event client to catch up")
stream.stop()
store = Store(settings)
store.refresh()
documents, distinct = store.count(run_id), store.distinct_job_ids(run_id)
latency = sampler.latency()
recoveries = [f["recoverySeconds"] for f in faults]
verdicts = Verdicts()
verdicts.check("Elasticsearch count", documents == X, X, documents)
verdicts.check("duplicate jobIds", documents == distinct, 0, documents - distinct)
verdicts.check("processed", run.processed == X and run.failed == 0, f"{X}, 0 failed", f"{run.processed}, {run.failed} failed")
verdicts.check("event client caught up", stream.last["processed"] == X, X,
               f"{stream.last['processed']} after {stream.reconnects} reconnects")
verdicts.check("every fault hit a run with work left", all(f["jobsLeft"] > 0 for f in faults),
               "jobs left at each (else raise X)", [f["jobsLeft"] for f in faults])
verdicts.check("every fault recovered", all(r is not None for r in recoveries), "progress after each", recoveries)
verdicts.check("GET /status p95 during the drill", latency["p95Ms"] < 200, "< 200 ms", f"{latency['p95Ms']} ms")
in_timeline = sum(p["processed"] for p in timeline)
verdicts.check("the timeline kept every job through the restarts", in_timeline == X, X, in_timeline)
figures = {"runId": run_id, "x": X, "y": Y, "documents": documents, "distinct": distinct,
           "lost": X - distinct, "duplicates": documents - distinct,
           "processed": run.processed, "faults": faults, "status": latency,
           "stream": {"events": stream.events, "reconnects": stream.reconnects}, "seconds": run.durationSeconds}
headline = {"lost": f"{X - distinct:,} of {X:,}", "duplicates": f"{documents - distinct:,}"}
for f in faults:
    headline[f"recovery: {f['fault']}"] = f"{f['recoverySeconds']} s"
headline["GET /status during the drill"] = f"p95 {latency['p95Ms']} ms"
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=chart)
verdicts"""),
    md("## Teardown"),
    code("""keeper_done.set()
supervisor.down()
if KEEP_DATA:
    print("kept:", redacted(settings))
else:
    teardown(settings)
    rabbit.stop()
    es.stop()
    shutil.rmtree(home, ignore_errors=True)"""),
]


HOSTILE = [
    md("""# Drill: hostile input and outages

`lab` exists to show how a pipeline behaves under faults, so its own boundaries must hold first.
With `WORKERS` workers running under a supervisor that would restart any that exits:

1. **poison messages** — bodies no job can be made of (a 5,000-digit attempt, JSON nested
   50,000 deep, ids that name other Redis keys, 2 MB bodies, unknown kinds, a document
   Elasticsearch refuses) published straight to the queue with raw pika;
2. **hostile requests** — NaN and out-of-range rates, ids that name other keys, bodies too
   large or too deep, event ids past 2^64, a foreign `Host` or `Origin` (`lab.measure.hostile`);
3. **outages** — during a run, Redis, Elasticsearch and RabbitMQ each go away for a while and
   come back (private instances of this drill, with their data).

Verdicts: every poison message dead-lettered with its reason, every hostile request answered
with the 4xx it deserves (none with a 5xx), no worker exited or was restarted, the event stream
never cut, and the run exact: Elasticsearch holds X documents with X distinct jobIds and
`processed` == X. Run it with `lab report hostile`."""),
    params("""X = 30_000                # jobs in the run that lives through the outages
Y = 120_000               # jobs per minute
WORKERS = 2
OUTAGE_SECONDS = 5        # how long each service stays away
SETTLE_SECONDS = 3        # quiet time between outages
SUMMARY_PATH = None       # lab report sets this"""),
    md("""## Setup

Private Redis, RabbitMQ and Elasticsearch-API servers on free ports (taking them away disturbs
nothing else), and the lab's processes under a supervisor that restarts any that exits, as
`lab up` does: a restart would show in the verdicts."""),
    code("""import atexit
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt

from lab.runtime import broker

from lab.measure import hostile

from lab.ops import servers
from lab.client import LabClient
from lab.measure.drill import EventFollower, StatusSampler, Verdicts, drill_settings, save_summary, teardown
from lab.runtime.state import State
from lab.runtime.store import Store
from lab.ops.supervisor import Supervisor
from lab.wait import wait_until

home = Path(tempfile.mkdtemp(prefix="lab-hostile-"))
home.chmod(0o755)  # the private RabbitMQ node runs as the rabbitmq user
redis_port, rabbit_port = servers.free_port(), servers.free_port()
services = {"redis": servers.start_redis(redis_port, home / "redis"),
            "rabbitmq": servers.start_rabbitmq(rabbit_port, home),
            "elasticsearch": servers.start_elasticsearch(servers.free_port(), home)}

def stop_services():
    for local in services.values():
        local.stop()
    shutil.rmtree(home, ignore_errors=True)

atexit.register(stop_services)  # also when a cell fails and the kernel exits
settings = drill_settings("hostile", redis_url=services["redis"].url, amqp_url=services["rabbitmq"].url,
                          es_url=services["elasticsearch"].url, home=str(home / "lab"),
                          heartbeat_s=0.5, heartbeat_ttl_s=3.0, retry_ladder_ms="200,400,800")
supervisor = Supervisor(settings)
supervisor.up(workers=WORKERS)
client = LabClient.of(settings)
keeper_done = threading.Event()
threading.Thread(target=supervisor.watch, kwargs={"until": keeper_done.is_set, "poll_s": 0.5},
                 daemon=True).start()
pids = {name: supervisor.pid(name) for name in supervisor.workers()}
print("workers", pids, "| API", settings.api_url)"""),
    md("## 1. Poison messages"),
    code("""connection = broker.connect(settings.amqp_url, "lab-drill-hostile")
channel = connection.channel()
reasons_expected = hostile.publish_poison(channel, settings.queue)
expected = sum(reasons_expected.values())
dead = f"{settings.queue}.dead"
wait_until(lambda: channel.queue_declare(dead, passive=True).method.message_count >= expected, 120,
           f"{expected} dead letters")
letters = list(hostile.dead_letters(channel, settings.queue))
connection.close()
reasons = Counter(h["x-lab-reason"] for _, h in letters)
for body, headers in letters:
    print(f"{headers['x-lab-reason']:<13} {len(body):>9,} bytes  {headers['x-lab-error'][:90]}")"""),
    md("## 2. Hostile requests"),
    code("""answers = hostile.send_probes(settings.api_url, settings.api_token)
server_errors = [a for a in answers if a.status >= 500]
wrong = [a for a in answers if not a.right]
print(f"{len(answers)} hostile requests: {len(server_errors)} answered 5xx, {len(wrong)} answered wrong")
for a in wrong:
    print(f"  {a.probe.method} {a.probe.path[:70]}: expected {a.probe.expected}, got {a.status}")"""),
    md("""## 3. Outages during a run

An event-stream client follows `/events` the whole time, as a dashboard would, and counts how
often its stream was cut."""),
    code("""stream = EventFollower(settings).start()
outages = []

def outage(name, take_away, bring_back):
    at = time.time() - sampler.started
    left = X - State(settings).run(run_id).processed
    take_away()
    time.sleep(OUTAGE_SECONDS)
    bring_back()
    back = time.time() - sampler.started
    outages.append({"service": name, "at": round(at, 2), "backAt": round(back, 2), "jobsLeft": left})
    print(f"t={at:6.1f}s  {name} away for {back - at:.1f} s ({left:,} jobs still to process)")
    time.sleep(SETTLE_SECONDS)

def restart(name, start):
    def again():
        services[name] = start()
    return again

with StatusSampler(settings.api_url, interval_s=0.1, token=settings.api_token) as sampler:
    run_id = client.run(X, Y)["runId"]
    wait_until(lambda: State(settings).run(run_id).processed > 0, 60, "the first jobs")
    time.sleep(SETTLE_SECONDS)
    outage("Redis", services["redis"].stop, restart("redis", lambda: servers.start_redis(redis_port, home / "redis")))
    outage("Elasticsearch", services["elasticsearch"].pause_service, services["elasticsearch"].resume_service)
    outage("RabbitMQ", services["rabbitmq"].stop, restart("rabbitmq", lambda: servers.start_rabbitmq(rabbit_port, home)))
    run = wait_until(lambda: (r := State(settings).run(run_id)) and r.settled and r, 600, "the run to settle", poll_s=0.5)
    time.sleep(1.0)
for o in outages:
    resumed = sampler.first_progress_after(o["backAt"]) if o["jobsLeft"] > 0 else None
    o["resumedAfterBackSeconds"] = round(resumed - o["backAt"], 2) if resumed is not None else None
    print(f"{o['service']:<14} work resumed {o['resumedAfterBackSeconds']} s after it was back")"""),
    code("""fig, ax = plt.subplots(figsize=(11, 4))
ts = [s["t"] for s in sampler.samples]
ax.plot(ts, [s["enqueued"] for s in sampler.samples], label="enqueued")
ax.plot(ts, [s["processed"] for s in sampler.samples], label="processed")
for o in outages:
    ax.axvspan(o["at"], o["backAt"], color="#b42318", alpha=0.15)
    ax.text(o["at"], X * 0.95, f" {o['service']} away", color="#b42318", fontsize=8)
ax.set_xlabel("seconds"); ax.set_ylabel("jobs"); ax.set_title(f"run {run_id}: X={X:,}, Y={Y:,}/min")
ax.legend(loc="lower right"); ax.grid(alpha=0.3)
plt.show()"""),
    md("## Verdict"),
    code("""stream.stop()
store = Store(settings)
store.refresh()
documents, distinct = store.count(run_id), store.distinct_job_ids(run_id)
now = {name: supervisor.pid(name) for name in supervisor.workers()}
restarts = sum(supervisor.children[name].restarts for name in pids)
verdicts = Verdicts()
verdicts.check("poison messages dead-lettered with their reason", dict(reasons) == reasons_expected,
               reasons_expected, dict(reasons))
verdicts.check("hostile requests answered 5xx", not server_errors, 0, len(server_errors))
verdicts.check("hostile requests answered wrong", not wrong, f"0 of {len(answers)}", len(wrong))
verdicts.check("workers exited or restarted", now == pids and restarts == 0, 0,
               f"{restarts} restarts; pids {'unchanged' if now == pids else 'changed'}")
verdicts.check("event stream cut", stream.reconnects == 0, 0, f"{stream.reconnects} ({stream.events} events)")
verdicts.check("every outage hit a run with work left", all(o["jobsLeft"] > 0 for o in outages),
               "jobs left at each (else raise X or lower Y)", [o["jobsLeft"] for o in outages])
verdicts.check("every outage waited out", all(o["resumedAfterBackSeconds"] is not None for o in outages),
               "work resumed after each", [o["resumedAfterBackSeconds"] for o in outages])
verdicts.check("Elasticsearch count", documents == X, X, documents)
verdicts.check("duplicate jobIds", documents == distinct, 0, documents - distinct)
verdicts.check("processed", run.processed == X and run.failed == 0, f"{X}, 0 failed",
               f"{run.processed}, {run.failed} failed")
figures = {"runId": run_id, "x": X, "y": Y, "documents": documents, "distinct": distinct,
           "processed": run.processed, "poison": dict(reasons), "requests": len(answers),
           "serverErrors": len(server_errors), "wrongAnswers": len(wrong), "workerRestarts": restarts,
           "streamCuts": stream.reconnects, "outages": outages, "status": sampler.latency(),
           "lost": X - distinct, "duplicates": documents - distinct}
headline = {"hostile requests answered 5xx": f"{len(server_errors)} of {len(answers)}",
            "answered wrong": f"{len(wrong)} of {len(answers)}",
            "poison messages dead-lettered": ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())),
            "worker restarts": restarts, "lost": f"{X - distinct:,} of {X:,}", "duplicates": documents - distinct}
for o in outages:
    headline[f"{o['service']} away: work resumed"] = f"{o['resumedAfterBackSeconds']} s after it was back"
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=fig)
verdicts"""),
    md("## Teardown"),
    code("""keeper_done.set()
supervisor.down()
teardown(settings)
stop_services()"""),
]


CLUSTER = [
    md("""# Drill: a RabbitMQ cluster loses a node

A private cluster of `NODES` RabbitMQ nodes on free ports (own node names and data directories,
joined with `rabbitmqctl`, as hosts would run them), the lab's queues as **quorum queues**
replicated over them, and every lab process given all the nodes (`LAB_AMQP_URL` lists them). One
run, and during it:

1. `kill -9` the node that leads the job queue (a follower takes over);
2. `DOWN_SECONDS` later, start it again: it rejoins with its data;
3. stop a follower node (gracefully) and leave it stopped: the queue keeps its majority.

Then: Elasticsearch holds exactly X documents with X distinct jobIds, `processed` == X, how long
each fault took to recover from, and throughput before, during and after the faults from the
run's timeline. Beside it, the same run on one node with classic queues: the cost of
replication. Run it with `lab report cluster`."""),
    params("""X = 100_000               # jobs in the run
Y = 120_000               # jobs per minute
NODES = 3
WORKERS = 2
DOWN_SECONDS = 8          # how long the killed leader stays down
SETTLE_SECONDS = 5        # quiet time after each fault
COMPARE_SINGLE = True     # also run X on one node with classic queues
KEEP_DATA = False         # True: leave the drill's keys, queues and index for a closer look
SUMMARY_PATH = None       # lab report sets this"""),
    md("## Setup: the cluster, an Elasticsearch-API server and the lab's processes"),
    code("""import atexit
import shutil
import tempfile
import threading
import time
from pathlib import Path

import matplotlib.pyplot as plt

from lab.ops import servers
from lab.client import LabClient
from lab.config import redacted
from lab.measure.drill import StatusSampler, Verdicts, drill_settings, save_summary, teardown
from lab.runtime.state import State
from lab.runtime.store import Store
from lab.ops.supervisor import Supervisor
from lab.wait import wait_until

home = Path(tempfile.mkdtemp(prefix="lab-cluster-"))
home.chmod(0o755)  # the private RabbitMQ nodes run as the rabbitmq user
began = time.time()
cluster = servers.start_rabbitmq_cluster(NODES, home)
es = servers.start_elasticsearch(servers.free_port(), home)
if not KEEP_DATA:  # stopped by the teardown cell, or when the kernel exits after a failure
    atexit.register(es.stop)  # one handler each: one that fails does not keep the other from running
    atexit.register(lambda: cluster.stop())
print(f"{NODES} nodes clustered in {time.time() - began:.1f} s:", [n.node for n in cluster.nodes])
settings = drill_settings("cluster", keep=KEEP_DATA, amqp_url=cluster.url, es_url=es.url, home=str(home),
                          queue_type="quorum", heartbeat_s=0.5, heartbeat_ttl_s=3.0, lease_ms=2000)
supervisor = Supervisor(settings)
supervisor.up(workers=WORKERS)
client = LabClient.of(settings)
keeper_done = threading.Event()
keeper = threading.Thread(target=supervisor.watch, kwargs={"until": keeper_done.is_set, "poll_s": 0.5},
                          daemon=True)
keeper.start()
print("RabbitMQ", redacted(settings)["LAB_AMQP_URL"], "| API", settings.api_url)"""),
    md("## The run and the faults"),
    code("""faults = []

def progress():
    return State(settings).run(run_id).processed

def fault(name, action):
    \"\"\"Inject a fault: `at` when it began (and how much work was left then), `backAt` when the
    action returned.\"\"\"
    at, left = time.time() - sampler.started, X - progress()
    detail = action()
    back = time.time() - sampler.started
    faults.append({"fault": name, "at": round(at, 2), "backAt": round(back, 2), "jobsLeft": left, **detail})
    print(f"t={at:6.1f}s  {name}: {detail['node']} ({back - at:.1f} s; {left:,} jobs were left)")
    time.sleep(SETTLE_SECONDS)

def kill_the_leader():
    leader = cluster.leader_of(settings.queue)
    cluster.node_of(leader).kill()
    return {"node": leader}

def restart_it():
    time.sleep(DOWN_SECONDS)
    killed = cluster.node_of(faults[0]["node"])
    cluster.restart(killed)  # same name, same data: it rejoins and catches up
    return {"node": killed.node}

def stop_a_follower():
    leader = cluster.leader_of(settings.queue)
    follower = next(n for n in cluster.nodes if n.node != leader)
    follower.stop()  # two of three stay: the queue keeps its majority
    return {"node": follower.node, "leader": leader}

with StatusSampler(settings.api_url, interval_s=0.1, token=settings.api_token) as sampler:
    run_id = client.run(X, Y)["runId"]
    wait_until(lambda: progress() >= X * 0.15, 300, "15 % of the run")
    fault("kill -9 the job queue's leader node", kill_the_leader)
    fault(f"start it again ({DOWN_SECONDS} s later)", restart_it)
    wait_until(lambda: progress() >= X * 0.55, 600, "55 % of the run")
    fault("stop a follower node (left stopped)", stop_a_follower)
    run = wait_until(lambda: (r := State(settings).run(run_id)) and r.settled and r, 900, "the run to settle", poll_s=0.5)

# Recovered: how low the processing rate fell after each fault, and how long until it was back
# at 80 % of its rate before the first fault (0 when it never fell below that). A dip belongs
# to a fault if it began before the next one; its recovery may come later.
settled_at = max(s["t"] for s in sampler.samples if s["processed"] < X) if sampler.samples else 0
before = [s for s in sampler.samples if s["t"] <= faults[0]["at"]]
baseline = (before[-1]["processed"] - before[0]["processed"]) / max(0.1, before[-1]["t"] - before[0]["t"])
for i, f in enumerate(faults):
    until = min(settled_at, faults[i + 1]["at"] if i + 1 < len(faults) else settled_at)
    f.update(sampler.dip_after(f["at"], baseline, until, end=settled_at))
    print(f"{f['fault']:<44} {f['node']}: lowest {f['lowestJobsPerSecond']} jobs/s, "
          f"back at 80 % of {baseline:,.0f}/s after {f['recoverySeconds']} s")"""),
    md("""## Throughput before, during and after

From the run's own timeline (`GET /runs/{id}/timeline`: jobs per second as the counting scripts
recorded them in Redis)."""),
    code("""timeline = client.timeline(run_id)["points"]
t0 = timeline[0]["t"]
started_at = sampler.started  # drill time 0, in unix seconds

def rate(first, last):
    \"\"\"Jobs processed per second between two drill times.\"\"\"
    points = [p for p in timeline if first <= p["t"] - started_at < last]
    return round(sum(p["processed"] for p in points) / max(1, len(points)), 1)

first_at, last_at = faults[0]["at"], faults[-1]["at"]
end = max(p["t"] for p in timeline) - started_at + 1
throughput = {
    "before": rate(0, first_at),
    "during": rate(first_at, last_at),  # from the kill until the follower's stop began
    "after": rate(last_at, end),        # from then on: two nodes of three
    "whole": round(X / run.durationSeconds, 1),
}
print(throughput)
fig, ax = plt.subplots(figsize=(11, 3.6))
ax.bar([p["t"] - started_at for p in timeline], [p["processed"] for p in timeline], width=1.0, color="#1a7f37",
       label="processed / s")
for i, f in enumerate(faults, start=1):
    ax.axvline(f["at"], color="#b42318", linestyle=":")
    ax.text(f["at"], ax.get_ylim()[1] * (0.95 - 0.08 * i), f" {i}. {f['fault']}", color="#b42318", fontsize=8)
ax.set_xlabel("seconds"); ax.set_ylabel("jobs / s"); ax.set_title(f"run {run_id} on {NODES} nodes, quorum queues")
ax.grid(alpha=0.3); ax.legend(loc="lower right")
plt.show()"""),
    code("""store = Store(settings)
store.refresh()
documents, distinct = store.count(run_id), store.distinct_job_ids(run_id)
store.close()
print(f"Elasticsearch: {documents:,} documents, {distinct:,} distinct jobIds; processed {run.processed:,}")"""),
    md("""## The same run on one node with classic queues

What replication costs: the same X and Y, on one private node, classic queues, the same number
of workers."""),
    code("""single = None
if COMPARE_SINGLE:
    node = servers.start_rabbitmq(servers.free_port(), home)
    one = drill_settings("cluster-single", keep=KEEP_DATA, amqp_url=node.url, es_url=es.url, home=str(home),
                         queue_type="classic")
    other = Supervisor(one)
    other.up(workers=WORKERS)
    single_run_id = LabClient.of(one).run(X, Y)["runId"]
    done = wait_until(lambda: (r := State(one).run(single_run_id)) and r.settled and r, 900, "the one-node run")
    single = {"seconds": done.durationSeconds, "jobsPerSecond": round(X / done.durationSeconds, 1)}
    other.down()
    if not KEEP_DATA:
        teardown(one)
    node.stop()
    print(f"one node, classic: {single['jobsPerSecond']:,} jobs/s; "
          f"{NODES} nodes, quorum, with faults: {throughput['whole']:,} jobs/s")"""),
    md("## Verdicts"),
    code("""recoveries = [f["recoverySeconds"] for f in faults]
verdicts = Verdicts()
verdicts.check("Elasticsearch count", documents == X, X, documents)
verdicts.check("duplicate jobIds", documents == distinct, 0, documents - distinct)
verdicts.check("processed", run.processed == X and run.failed == 0, f"{X}, 0 failed", f"{run.processed}, {run.failed} failed")
verdicts.check("every fault hit a run with work left", all(f["jobsLeft"] > 0 for f in faults),
               "jobs left at each (else raise X)", [f["jobsLeft"] for f in faults])
verdicts.check("every fault recovered", all(r is not None for r in recoveries), "progress after each", recoveries)
verdicts.check("throughput on two nodes after the faults", throughput["after"] > 0, "> 0 jobs/s", throughput["after"])
figures = {"runId": run_id, "x": X, "y": Y, "nodes": NODES, "queueType": "quorum", "documents": documents,
           "distinct": distinct, "lost": X - distinct, "duplicates": documents - distinct,
           "processed": run.processed, "faults": faults, "throughput": throughput,
           "single": single, "status": sampler.latency(), "seconds": run.durationSeconds}
headline = {"lost": f"{X - distinct:,} of {X:,}", "duplicates": f"{documents - distinct:,}"}
for f in faults:
    headline[f"recovery: {f['fault']}"] = f"{f['recoverySeconds']} s (lowest {f['lowestJobsPerSecond']} jobs/s)"
headline["throughput"] = (f"{throughput['whole']:,} jobs/s on {NODES} nodes with faults; "
                          f"{single['jobsPerSecond']:,} on one node, classic")
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=fig)
verdicts"""),
    md("## Teardown"),
    code("""keeper_done.set()
supervisor.down()
if KEEP_DATA:
    print("kept:", redacted(settings))
else:
    teardown(settings)
    cluster.stop()
    es.stop()
    shutil.rmtree(home, ignore_errors=True)"""),
]


DRILLS = {
    "latency": LATENCY,
    "scaleout": SCALEOUT,
    "resilience": RESILIENCE,
    "hostile": HOSTILE,
    "cluster": CLUSTER,
}


def main(folder: Path = NOTEBOOKS) -> None:
    for name, cells in DRILLS.items():
        write(name, cells, folder)


if __name__ == "__main__":
    main()
