# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Drill: scale-out with 1, 2 and 4 workers
#
# The same work with 1, 2 and 4 workers (`docker compose up --scale worker=N` in compose terms),
# for two kinds of job:
#
# * **fast** — a run of `index` jobs released as fast as possible: the pipeline's own overhead;
# * **I/O-bound** — `agent` jobs that wait between steps, five at a time per worker.
#
# For each: throughput, the share of the jobs each worker took (fairness as Jain's index, 1.0 =
# perfectly even) and errors (there must be none; every job exactly once). Run it with
# `lab report scaleout`.

# %% tags=["parameters"]
WORKER_COUNTS = [1, 2, 4]
FAST_JOBS = 20_000          # jobs of the fast run per worker count
AGENT_JOBS = 40             # agent jobs per worker count
AGENT_SECONDS = 2.0         # each agent job's duration (steps of 0.5 s)
SUMMARY_PATH = None         # lab report sets this

# %% [markdown]
# ## Setup

# %%
import time

import matplotlib.pyplot as plt

from lab.ops import stack
from lab.client import LabClient
from lab.measure.jobtime import job_time
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
    """Exactly n fresh workers (fresh, so their counters are this step's)."""
    for name in supervisor.workers():
        supervisor.stop(name)
    for _ in range(n):
        supervisor.add_worker()
    wait_until(lambda: len(client.status()["workers"]) == n, 60, f"{n} workers to announce")


# %% [markdown]
# ## Fast jobs: one run per worker count

# %%
fast, fast_runs = [], {}
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
    fast_runs[f"{n} worker{'s' if n > 1 else ''}"] = run_id
    fast.append({"workers": n, "jobs": run.processed, "failed": run.failed,
                 "seconds": run.durationSeconds, "jobsPerSecond": round(run.processed / run.durationSeconds, 1),
                 "documents": store.count(run_id), "distinct": store.distinct_job_ids(run_id),
                 "perWorker": per_worker, "jain": jain(per_worker)})
    print(fast[-1])

# %% [markdown]
# ## I/O-bound jobs: agent jobs per worker count

# %%
agent = []
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
    print(agent[-1])

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for ax, rows, title in ((axes[0], fast, "fast (index) jobs"), (axes[1], agent, "I/O-bound (agent) jobs")):
    ax.bar([str(r["workers"]) for r in rows], [r["jobsPerSecond"] for r in rows], color="#2e90fa")
    for i, r in enumerate(rows):
        ax.text(i, r["jobsPerSecond"], f"{r['jobsPerSecond']:,.1f}\nJain {r['jain']}", ha="center", va="bottom")
    ax.set_title(title); ax.set_xlabel("workers"); ax.set_ylabel("jobs per second"); ax.margins(y=0.25)
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Verdict
#
# No errors and every job exactly once at every worker count; the I/O-bound kind scales with
# workers (each adds five slots). On a machine with few cores the fast kind is CPU-bound: more
# workers there are reported, not judged.

# %%
verdicts = Verdicts()
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
job_times = job_time(settings, fast_runs, verdicts)
for label, entry in job_times.items():
    headline[f"fast, {label}: end to end"] = (
        f"p50 {entry['endToEnd']['p50Ms']:,.0f} ms, p99 {entry['endToEnd']['p99Ms']:,.0f} ms")
save_summary(SUMMARY_PATH, {"fast": fast, "agent": agent, "jobTime": job_times}, verdicts, headline, chart=fig)
verdicts

# %% [markdown]
# ## Teardown

# %%
supervisor.down()
teardown(settings)
