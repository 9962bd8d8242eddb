# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Drill: resilience
#
# One run, and during it, one fault after another — each through the supervisor or the private
# services this drill starts, never a shortcut:
#
# 1. `kill -9` a worker; the supervisor starts a new one, as `lab up` does;
# 2. restart the API while an event-stream client is connected;
# 3. restart the scheduler;
# 4. restart the broker that carries the jobs (a private node of this drill);
# 5. make Elasticsearch unreachable for a while (stop this drill's ES-API server's Elasticsearch
#    service, `noida-db stop elasticsearch`), then bring it back.
#
# Then: Elasticsearch holds exactly X documents with X distinct jobIds, `processed` == X, the event
# client caught up, how long each fault took to recover from, and `GET /status` p95 during the drill.
# Run it with `lab report resilience`.
#
# `TARGET` picks whose workers run the jobs (`lab target list`): lab's own (the default), or
# Celery's, Dramatiq's, RQ's, arq's or BullMQ's, started by the same supervisor, so the same
# kill -9 and restarts hit them. Fault 4 restarts *that target's* broker: a private RabbitMQ node
# for lab, celery and dramatiq; a private Redis for rq, arq and bullmq (which is also where this
# drill's lab keeps its counts, so they must survive it too). Another framework may ack a job as it
# starts, or run it twice: for it the drill reports the delivery verdict (lost, duplicated, executed
# more than once, unexpected) and checks that it accounts for all X jobs and agrees with the
# documents in Elasticsearch, instead of demanding exactly-once; its run is drained once nothing
# of it has ended for 10 s, as `lab experiment` drains one. `lab report resilience -p TARGET celery`.

# %% tags=["parameters"]
X = 60_000                # jobs in the run
Y = 60_000                # jobs per minute (the run lasts X / Y minutes)
SHAPE = None              # or a load shape instead of Y, e.g. {"type": "ramp", "from": 6000, "to": 60000, "seconds": 60}
KIND = "index"            # the job kind (a kind that fails on purpose fails the exactly-once checks)
TARGET = "lab"            # whose workers run the jobs: lab, celery, dramatiq, rq, arq, bullmq
PAYLOAD = {}              # every job's payload (lab kind show KIND)
WORKERS = 2               # worker processes
SETTLE_SECONDS = 4        # quiet time between faults
ES_DOWN_SECONDS = 5       # how long Elasticsearch stays away
KEEP_DATA = False         # True: leave the drill's keys, queues and index for a closer look
SUMMARY_PATH = None       # lab report sets this

# %% [markdown]
# ## Setup
#
# A private broker for the target (a RabbitMQ node, or Redis for rq, arq and bullmq) and a private
# Elasticsearch-API server on free ports (so restarting them disturbs nothing else), the machine's
# other broker in this drill's own namespace, and the lab's processes with the target's workers
# under a supervisor that restarts any that exit — as `lab up` does.

# %%
import atexit
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt

from lab.ops import servers
from lab.client import LabClient
from lab.config import redacted
from lab.measure import delivery
from lab.measure.jobtime import add_job_time
from lab.measure.drill import (EventFollower, Keeper, StatusSampler, Verdicts, drill_settings, end_drill,
                               save_summary)
from lab.runtime.stores import Stores
from lab.runtime.store import Store
from lab.ops.supervisor import Supervisor
from lab.wait import wait_until

delivery.check(TARGET)
BROKER = delivery.broker(TARGET)  # "rabbitmq" or "redis": what fault 4 restarts
BROKER_NAME = {"rabbitmq": "RabbitMQ", "redis": "Redis"}[BROKER]
start_broker = servers.start_rabbitmq if BROKER == "rabbitmq" else servers.start_redis
home = Path(tempfile.mkdtemp(prefix="lab-resilience-"))
home.chmod(0o755)  # the private RabbitMQ node runs as the rabbitmq user
broker_port, es_port = servers.free_port(), servers.free_port()
broker = start_broker(broker_port, home)
es = servers.start_elasticsearch(es_port, home)
if not KEEP_DATA:  # stopped by the teardown cell, or when the kernel exits after a failure
    atexit.register(es.stop)  # one handler each: one that fails does not keep the other from running
    atexit.register(lambda: broker.stop())
own_broker = {"amqp_url" if BROKER == "rabbitmq" else "redis_url": broker.url}
settings = drill_settings("resilience", keep=KEEP_DATA, es_url=es.url, home=str(home),
                          heartbeat_s=0.5, heartbeat_ttl_s=3.0, lease_ms=2000, **own_broker)
supervisor = Supervisor(settings)
delivery.start(supervisor, settings, WORKERS, TARGET)
client = LabClient.of(settings)
keeper = Keeper(supervisor)  # restarts whatever exits, as lab up does
shown = redacted(settings)
print("target", TARGET, "| RabbitMQ", shown["LAB_AMQP_URL"], "| Redis", shown["LAB_REDIS_URL"],
      "| Elasticsearch", es.url, "| API", settings.api_url)

# %% [markdown]
# An event-stream client follows `/events` for the whole drill, reconnecting with
# `Last-Event-ID` whenever the stream breaks, as a dashboard would.

# %%
stream = EventFollower(settings).start()

# %% [markdown]
# ## The run and the faults

# %%
faults = []   # {fault, at, backAt, recoverySeconds, ...}: seconds of drill time

def fault(name, action):
    """Inject a fault; `at` is when it began, `backAt` when the broken part was back."""
    at = time.time() - sampler.started
    action()
    back = time.time() - sampler.started
    left = X - Stores.of(settings).runs.get(run_id).processed
    faults.append({"fault": name, "at": round(at, 2), "backAt": round(back, 2), "jobsLeft": left})
    print(f"t={at:6.1f}s  {name} (back after {back - at:.1f} s; {left:,} jobs still to process)")
    time.sleep(SETTLE_SECONDS)

def restart_broker():
    global broker
    broker.stop()
    broker = start_broker(broker_port, home)  # same node, same data: durable messages stay

def es_outage():
    es.pause_service()     # the ES-API server stops serving Elasticsearch: connections refused
    time.sleep(ES_DOWN_SECONDS)
    es.resume_service()    # same port, same data

with StatusSampler(settings.api_url, interval_s=0.1, token=settings.api_token) as sampler:
    run_id = client.run(X, None if SHAPE else Y, shape=SHAPE, kind=KIND, payload=PAYLOAD, target=TARGET)["runId"]
    wait_until(lambda: Stores.of(settings).runs.get(run_id).processed > 0, 60, "the first jobs")
    time.sleep(SETTLE_SECONDS)
    fault("kill -9 worker-1 (the supervisor starts a new one)", lambda: supervisor.kill("worker-1"))
    fault("restart the API", lambda: supervisor.restart("api"))
    fault("restart the scheduler", lambda: supervisor.restart("scheduler"))
    fault(f"restart {BROKER_NAME}", restart_broker)
    fault(f"Elasticsearch away for {ES_DOWN_SECONDS} s", es_outage)
    run = delivery.settle(Stores.of(settings), run_id, TARGET, 900)
    time.sleep(1.0)

# Recovered: the first moment after the part was back at which `processed` grew again (jobs a
# worker held when the fault hit may still be counted during the fault; they do not count).
for f in faults:
    resumed = sampler.first_progress_after(f["backAt"]) if f["jobsLeft"] > 0 else None
    f["recoverySeconds"] = round(resumed - f["at"], 2) if resumed is not None else None
    f["resumedAfterBackSeconds"] = round(resumed - f["backAt"], 2) if resumed is not None else None
for f in faults:
    print(f"{f['fault']:<52} recovered after {f['recoverySeconds']} s "
          f"({f['resumedAfterBackSeconds']} s after it was back)")

# %% [markdown]
# ## What the pipeline did

# %%
fig, ax = plt.subplots(figsize=(11, 4))
ts = [s["t"] for s in sampler.samples]
ax.plot(ts, [s["enqueued"] for s in sampler.samples], label="enqueued")
ax.plot(ts, [s["processed"] for s in sampler.samples], label="processed")
for i, f in enumerate(faults, start=1):
    ax.axvline(f["at"], color="#b42318", linestyle=":")
    ax.text(f["at"], X * (1.02 - 0.07 * i), f" {i}. {f['fault']}", color="#b42318", fontsize=8)
ax.set_xlabel("seconds"); ax.set_ylabel("jobs"); ax.set_title(f"run {run_id}: X={X:,}, {Stores.of(settings).runs.get(run_id).shapeText}")
ax.legend(loc="lower right"); ax.grid(alpha=0.3)
plt.show()
chart = fig  # the report's main chart

# %% [markdown]
# The run's own timeline (`GET /runs/{id}/timeline`): jobs per second as the counting scripts
# recorded them in Redis, so the API restart above lost none of it.

# %%
timeline = client.timeline(run_id)["points"]
t0 = timeline[0]["t"]
fig, ax = plt.subplots(figsize=(11, 2.6))
ax.bar([p["t"] - t0 for p in timeline], [p["processed"] for p in timeline], width=1.0, color="#1a7f37")
ax.set_xlabel("seconds since the run started"); ax.set_ylabel("processed / s"); ax.grid(alpha=0.3)
plt.show()

# %%
wait_until(lambda: stream.last and stream.last.get("processed") == run.processed, 30, "the event client to catch up")
stream.stop()
store = Store(settings)
store.refresh()
documents, distinct = store.count(run_id), store.distinct_job_ids(run_id)
found = delivery.read(settings, run_id)  # the delivery verdict
latency = sampler.latency()
recoveries = [f["recoverySeconds"] for f in faults]
verdicts = Verdicts()
if TARGET == "lab":  # lab's promise: exactly-once effects, whatever the faults
    verdicts.check("Elasticsearch count", documents == X, X, documents)
    verdicts.check("duplicate jobIds", documents == distinct, 0, documents - distinct)
    verdicts.check("processed", run.processed == X and run.failed == 0, f"{X}, 0 failed", f"{run.processed}, {run.failed} failed")
else:  # another framework's: what it did, accounted for and agreeing with the documents
    delivery.judge(verdicts, found, X, documents, distinct)
verdicts.check("event client caught up", stream.last["processed"] == run.processed, run.processed,
               f"{stream.last['processed']} after {stream.reconnects} reconnects")
verdicts.check("every fault hit a run with work left", all(f["jobsLeft"] > 0 for f in faults),
               "jobs left at each (else raise X)", [f["jobsLeft"] for f in faults])
verdicts.check("every fault recovered", all(r is not None for r in recoveries), "progress after each", recoveries)
verdicts.check("GET /status p95 during the drill", latency["p95Ms"] < 200, "< 200 ms", f"{latency['p95Ms']} ms")
in_timeline = sum(p["processed"] for p in timeline)
verdicts.check("the timeline kept every job through the restarts", in_timeline == run.processed, run.processed, in_timeline)
lost = X - distinct if TARGET == "lab" else found["lost"]
figures = {"runId": run_id, "target": TARGET, "x": X, "y": Y, "shape": SHAPE, "kind": KIND, "documents": documents,
           "distinct": distinct, "lost": lost, "duplicates": documents - distinct,
           "processed": run.processed, "failed": run.failed, "verdict": found, "faults": faults, "status": latency,
           "stream": {"events": stream.events, "reconnects": stream.reconnects}, "seconds": run.durationSeconds}
headline = {"target": TARGET, "lost": f"{lost:,} of {X:,}", "duplicates": f"{documents - distinct:,}"}
if TARGET != "lab":
    headline["delivery verdict"] = delivery.summary(found)
for f in faults:
    headline[f"recovery: {f['fault']}"] = f"{f['recoverySeconds']} s"
headline["GET /status during the drill"] = f"p95 {latency['p95Ms']} ms"
add_job_time(settings, {"run": run_id}, figures, headline, verdicts, outages=True)
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=chart)
verdicts

# %% [markdown]
# ## Teardown

# %%
keeper.down()
end_drill(settings, KEEP_DATA, broker, es, home=home)
