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
# # Drill: scale-out with 1, 2 and 4 workers
#
# The same work with 1, 2 and 4 workers (`docker compose up --scale worker=N` in compose terms),
# for two kinds of job:
#
# * **fast** — a run of `index` jobs released as fast as possible: the pipeline's own overhead;
# * **I/O-bound** — a run of `agent` jobs that wait between steps, five at a time per worker.
#
# For each: throughput, the share of the jobs each worker took (fairness as Jain's index, 1.0 =
# perfectly even) and errors (there must be none; every job exactly once). Each is a built-in
# experiment with `workers` as its factor, run by the same trial runner as `lab experiment run`
# (every trial in its own namespace, from the same state), so its rows are in `results.csv` and
# `lab experiment report` can take them. Run it with `lab report scaleout`.
#
# `TARGET` picks whose workers run the jobs (`lab target list`): lab's own (the default), or
# Celery's, Dramatiq's, RQ's, arq's or BullMQ's; every run's body names it, and the trial runner
# starts that target's workers and drains its runs as `lab experiment` does. No fault hits these
# runs, so another target is held to a clean delivery verdict (nothing lost, duplicated or
# unexpected; a job run twice is reported, not judged) that accounts for every job and agrees with
# the documents, instead of lab's exactly-once counts. `lab report scaleout -p TARGET arq`.

# %% tags=["parameters"]
WORKER_COUNTS = [1, 2, 4]   # worker processes of each trial, in turn
FAST_JOBS = 20_000          # jobs of the fast run per worker count
AGENT_JOBS = 40             # agent jobs per worker count
AGENT_SECONDS = 2.0         # each agent job's duration (steps of 0.5 s)
REPETITIONS = 1             # trials per worker count and kind
TARGET = "lab"              # whose workers run the jobs: lab, celery, dramatiq, rq, arq, bullmq
RESULTS = None              # where the trials' rows go (default: a temporary folder)
SUMMARY_PATH = None         # lab report sets this

# %% [markdown]
# ## Setup

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from lab.experiment import Spec
from lab.experiment.runner import Runner
from lab.measure import delivery
from lab.measure.drill import Verdicts, drill_settings, save_summary, teardown
from lab.measure.jobtime import add_job_time, observe
from lab.ops import stack

delivery.check(TARGET)
settings = drill_settings("scaleout")
stack.up(settings)
folder = Path(RESULTS or tempfile.mkdtemp(prefix="lab-scaleout-"))
observed = {}


def experiment(name, run):
    return Spec.of({"name": f"scaleout-{name}", "repetitions": REPETITIONS, "order": "sequential",
                    "run": {**run, "target": TARGET}, "factors": {"workers": WORKER_COUNTS}})


def trials(name, run):
    """Each worker count's trials; what the fast runs' latency was, read before their keys go."""
    def seen(trial_settings, run_id, _row):
        if name == "fast":
            observed[run_id] = observe(trial_settings, run_id)
    rows = Runner(experiment(name, run), folder / name, settings, say=print, observe=seen).run()
    failed = [r for r in rows if r.get("error")]
    assert not failed, failed[0]["error"]
    return rows


def figures_of(rows):
    """One line per worker count (its first repetition's shares; the mean rate of them all)."""
    out = []
    for n in WORKER_COUNTS:
        mine = [r for r in rows if r["workers"] == n]
        first = mine[0]
        rate = sum(r["processed"] / r["seconds"] for r in mine) / len(mine)
        out.append({"workers": n, "jobs": first["processed"], "failed": first["failed"],
                    "seconds": first["seconds"], "jobsPerSecond": round(rate, 2),
                    "documents": first["documents"], "distinct": first["distinctDocuments"],
                    "perWorker": first["perWorker"] or [], "jain": first["jain"] or 0.0,
                    "runId": first["runId"], "repetitions": len(mine), "verdict": delivery.of_row(first)})
    return out


# %% [markdown]
# ## Fast jobs: one run per worker count

# %%
fast_rows = trials("fast", {"x": FAST_JOBS, "y": 60_000_000})
fast = figures_of(fast_rows)
for r in fast:
    print(r)

# %% [markdown]
# ## I/O-bound jobs: a run of agent jobs per worker count

# %%
agent_run = {"x": AGENT_JOBS, "y": 60_000_000, "kind": "agent",
             "payload": {"durationSeconds": AGENT_SECONDS, "stepIntervalSeconds": 0.5}}
agent = figures_of(trials("agent", agent_run))
for r in agent:
    r["completed"] = r["jobs"]
    print(r)

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
# No errors and every job exactly once at every worker count (another target: a clean verdict that
# agrees with the documents); the I/O-bound kind scales with workers (each adds slots). On a
# machine with few cores the fast kind is CPU-bound: more workers there are reported, not judged.

# %%
verdicts = Verdicts()
for r in fast:
    if TARGET != "lab":
        delivery.judge(verdicts, r["verdict"], FAST_JOBS, r["documents"], r["distinct"],
                       label=f"fast, {r['workers']} workers: ", clean=True)
        continue
    verdicts.check(f"fast, {r['workers']} workers: exactly once", r["jobs"] == r["documents"] == r["distinct"] == FAST_JOBS and r["failed"] == 0,
                   f"{FAST_JOBS} processed, documents, distinct; 0 failed",
                   f"{r['jobs']}, {r['documents']}, {r['distinct']}; {r['failed']} failed")
for r in agent:
    verdicts.check(f"agent, {r['workers']} workers: no errors, one document each",
                   r["completed"] == r["documents"] == r["distinct"] == AGENT_JOBS and r["failed"] == 0,
                   f"{AGENT_JOBS} completed and documents", f"{r['completed']} completed, {r['failed']} not, "
                   f"{r['documents']} documents")
    if TARGET != "lab":
        verdicts.check(f"agent, {r['workers']} workers: a clean verdict", bool(r["verdict"]["clean"]),
                       "nothing lost, duplicated or unexpected", delivery.summary(r["verdict"]))
if len(agent) > 1:
    gain = agent[1]["jobsPerSecond"] / agent[0]["jobsPerSecond"]
    verdicts.check(f"agent: {agent[1]['workers']} workers vs {agent[0]['workers']}", gain >= 1.5, "≥ 1.5× the throughput", f"{gain:.2f}×")
for r in agent[1:]:
    verdicts.check(f"agent, {r['workers']} workers: fair share", r["jain"] >= 0.8, "Jain ≥ 0.8", r["jain"])
headline = {"target": TARGET}
for label, rows in (("fast", fast), ("agent", agent)):
    for r in rows:
        r["speedup"] = round(r["jobsPerSecond"] / rows[0]["jobsPerSecond"], 2)
        headline[f"{label}, {r['workers']} worker{'s' if r['workers'] > 1 else ''}"] = (
            f"{r['jobsPerSecond']:,.1f} jobs/s, speed-up {r['speedup']:.2f}x, fairness (Jain) {r['jain']}")
labels = {r["runId"]: f"{r['workers']} worker{'s' if r['workers'] > 1 else ''}" for r in fast}
figures = {"target": TARGET, "fast": fast, "agent": agent}
add_job_time(settings, {labels[run_id]: seen for run_id, seen in observed.items() if run_id in labels},
             figures, headline, verdicts, label_prefix="fast, ")
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=fig)
verdicts

# %% [markdown]
# ## Teardown

# %%
teardown(settings)
print("the trials' rows:", folder)
