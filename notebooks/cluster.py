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
# # Drill: a RabbitMQ cluster loses a node
#
# A private cluster of `NODES` RabbitMQ nodes on free ports (own node names and data directories,
# joined with `rabbitmqctl`, as hosts would run them), the lab's queues as **quorum queues**
# replicated over them, and every lab process given all the nodes (`LAB_AMQP_URL` lists them). One
# run, and during it:
#
# 1. `kill -9` the node that leads the job queue (a follower takes over);
# 2. `DOWN_SECONDS` later, start it again: it rejoins with its data;
# 3. stop a follower node (gracefully) and leave it stopped: the queue keeps its majority.
#
# Then: Elasticsearch holds exactly X documents with X distinct jobIds, `processed` == X, how long
# each fault took to recover from, and throughput before, during and after the faults from the
# run's timeline. Beside it, the same run on one node with classic queues: the cost of
# replication. Run it with `lab report cluster`.

# %% tags=["parameters"]
X = 100_000               # jobs in the run
Y = 120_000               # jobs per minute
NODES = 3                 # RabbitMQ nodes of the private cluster
WORKERS = 2               # worker processes
DOWN_SECONDS = 8          # how long the killed leader stays down
SETTLE_SECONDS = 5        # quiet time after each fault
COMPARE_SINGLE = True     # also run X on one node with classic queues
KEEP_DATA = False         # True: leave the drill's keys, queues and index for a closer look
SUMMARY_PATH = None       # lab report sets this

# %% [markdown]
# ## Setup: the cluster, an Elasticsearch-API server and the lab's processes

# %%
import atexit
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt

from lab.ops import servers
from lab.client import LabClient
from lab.config import redacted
from lab.measure.jobtime import add_job_time
from lab.measure.drill import (Keeper, StatusSampler, Verdicts, drill_settings, end_drill, save_summary,
                               teardown)
from lab.runtime.stores import Stores
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
keeper = Keeper(supervisor)  # restarts whatever exits, as lab up does
print("RabbitMQ", redacted(settings)["LAB_AMQP_URL"], "| API", settings.api_url)

# %% [markdown]
# ## The run and the faults

# %%
faults = []

def progress():
    return Stores.of(settings).runs.get(run_id).processed

def fault(name, action):
    """Inject a fault: `at` when it began (and how much work was left then), `backAt` when the
    action returned."""
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
    run = wait_until(lambda: (r := Stores.of(settings).runs.get(run_id)) and r.settled and r, 900, "the run to settle", poll_s=0.5)

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
          f"back at 80 % of {baseline:,.0f}/s after {f['recoverySeconds']} s")

# %% [markdown]
# ## Throughput before, during and after
#
# From the run's own timeline (`GET /runs/{id}/timeline`: jobs per second as the counting scripts
# recorded them in Redis).

# %%
timeline = client.timeline(run_id)["points"]
t0 = timeline[0]["t"]
started_at = sampler.started  # drill time 0, in unix seconds

def rate(first, last):
    """Jobs processed per second between two drill times: each point covers its second, and counts
    by the share of that second inside the window (a fault rarely falls on a whole second)."""
    shares = [(p["processed"], min(last, p["t"] - started_at + 1) - max(first, p["t"] - started_at))
              for p in timeline]
    shares = [(n, s) for n, s in shares if s > 0]
    return round(sum(n * s for n, s in shares) / max(1e-9, sum(s for _n, s in shares)), 1) if shares else 0.0

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
plt.show()

# %%
store = Store(settings)
store.refresh()
documents, distinct = store.count(run_id), store.distinct_job_ids(run_id)
store.close()
print(f"Elasticsearch: {documents:,} documents, {distinct:,} distinct jobIds; processed {run.processed:,}")

# %% [markdown]
# ## The same run on one node with classic queues
#
# What replication costs: the same X and Y, on one private node, classic queues, the same number
# of workers.

# %%
single = None
if COMPARE_SINGLE:
    node = servers.start_rabbitmq(servers.free_port(), home)
    one = drill_settings("cluster-single", keep=KEEP_DATA, amqp_url=node.url, es_url=es.url, home=str(home),
                         queue_type="classic")
    other = Supervisor(one)
    other.up(workers=WORKERS)
    single_run_id = LabClient.of(one).run(X, Y)["runId"]
    done = wait_until(lambda: (r := Stores.of(one).runs.get(single_run_id)) and r.settled and r, 900, "the one-node run")
    single = {"seconds": done.durationSeconds, "jobsPerSecond": round(X / done.durationSeconds, 1)}
    other.down()
    if not KEEP_DATA:
        teardown(one)
    node.stop()
    print(f"one node, classic: {single['jobsPerSecond']:,} jobs/s; "
          f"{NODES} nodes, quorum, with faults: {throughput['whole']:,} jobs/s")

# %% [markdown]
# ## Verdicts

# %%
recoveries = [f["recoverySeconds"] for f in faults]
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
headline["throughput"] = f"{throughput['whole']:,} jobs/s on {NODES} nodes with faults" + (
    f"; {single['jobsPerSecond']:,} on one node, classic" if single else "")
add_job_time(settings, {"3 nodes": run_id}, figures, headline, verdicts, outages=True)
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=fig)
verdicts

# %% [markdown]
# ## Teardown

# %%
keeper.down()
# The cluster is deleted with its data: its quorum queues are not deleted one by one first
# (with the stopped follower down, that waits about 10 s a queue).
end_drill(settings, KEEP_DATA, cluster, es, home=home, queues=False)
