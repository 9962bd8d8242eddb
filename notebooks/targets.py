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
# # Drill: every target, side by side
#
# The same seeded workload, the same load shape and the same fault on every target lab drives
# (`lab target list`: lab's own pipeline, Celery, Dramatiq, RQ, arq, BullMQ), one after another,
# each in a namespace of its own with its own processes under lab's supervisor (`lab up --target
# NAME`), run by the experiment's trial runner. While each run runs, one worker gets `kill -9`
# through the supervisor, which starts it again; then the run is drained and its delivery verdict
# read: **lost**, **duplicated**, **executed more than once**, **unexpected**, then what it
# processed and failed, its throughput, and its queue-wait, service and end-to-end latency from
# its histograms. Run it with `lab report targets`.
#
# A framework that acks a job before running it loses what a killed worker was running: that is a
# finding the table shows, not a failed check. The checks hold every target to its own books:
# every job accounted for, the failures exactly the ones the seed draws, the verdict's counts
# what the documents show; and lab's own pipeline to nothing lost and nothing duplicated.

# %% tags=["parameters"]
TARGETS = ["lab", "celery", "dramatiq", "rq", "arq", "bullmq"]  # one run each, in this order
X = 3000                    # jobs in each run
SHAPE = {"type": "ramp", "from": 600, "to": 12000, "seconds": 30}  # jobs a minute over time
PAYLOAD = {"serviceMs": {"dist": "lognormal", "median": 20, "p99": 200}, "failRate": 0.02, "permanentFailRate": 0.01}  # the synthetic kind's draws (lab kind show synthetic)
SEED = 20261206             # the seed of every run: each target gets the same jobs
WORKERS = 2                 # worker processes per target
CONCURRENCY = 8             # slots per worker (LAB_CONCURRENCY; an RQ worker runs one job at a time)
KILL_AT = 0.5               # share of the jobs ended when worker-1 gets kill -9 (None: no kill)
FREEZE_SECONDS = 0          # > 0: the last worker is also frozen (SIGSTOP) this long ...
FREEZE_AT = 0.75            # ... once this share of the jobs ended
QUIET_SECONDS = 20          # another target's run is drained after this long with no job ending
DRAIN_LIMIT_S = 600         # the longest one target's run may take
ARQ_JOB_TIMEOUT_S = 5       # arq runs a killed worker's jobs again this + 10 s after it took them
SUMMARY_PATH = None         # lab report sets this

# %% [markdown]
# ## Setup
#
# Each target's namespace comes from `drill_settings` (deleted after its run, and when the kernel
# exits). arq holds a job a worker took for its job timeout plus 10 s, so a killed worker's jobs
# come back only then: the drill shortens the timeout (`ARQ_JOB_TIMEOUT_S`) and drains each
# target until nothing ended for `QUIET_SECONDS`, longer than that. BullMQ's worker holds a job's
# lock 10 s (`LAB_BULLMQ_LOCK_MS`), so its killed worker's jobs are run again within that too.

# %%
import html

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, display

from lab import targets
from lab.experiment.factors import Setup
from lab.experiment.trial import one_run
from lab.measure.drill import Verdicts, drill_settings, save_summary, teardown
from lab.measure.targets import (Evidence, Faults, failures_agree, lost_by_documents, table_row,
                                 target_figures)
from lab.ops import stack
from workers import synthetic

base = drill_settings("targets", concurrency=CONCURRENCY, arq_job_timeout_s=ARQ_JOB_TIMEOUT_S)
stack.up(base)
body = {"x": X, "shape": SHAPE, "kind": "synthetic", "payload": PAYLOAD, "seed": SEED}
faults = Faults(X, KILL_AT, FREEZE_AT, FREEZE_SECONDS)
drawn = {**PAYLOAD, "seed": SEED}
expected = sum(1 << s for s in range(X) if synthetic.fails_for_good(drawn, s, base.max_attempts))
print(f"{X:,} jobs a target; the seed fails {expected.bit_count()} of them for good")

# %% [markdown]
# ## One run per target
#
# A target this machine cannot drive (its packages, or Node for BullMQ, missing) is skipped with
# the reason `lab target list` gives.

# %%
rows, evidence, notes = {}, {}, {}
for name in TARGETS:
    missing = targets.describe(name)["missing"]
    if missing:
        notes[name] = f"skipped: {missing}"
        print(f"{name}: {notes[name]}")
        continue
    settings = drill_settings(f"targets-{name}", concurrency=CONCURRENCY,
                              arq_job_timeout_s=ARQ_JOB_TIMEOUT_S)

    def observe(run_settings, run_id, _row, name=name):
        evidence[name] = Evidence.read(run_settings, run_id, name)

    try:
        rows[name] = one_run(Setup({**body, "target": name}, workers=WORKERS), settings,
                             observe=observe, fault=faults, quiet_s=QUIET_SECONDS, limit_s=DRAIN_LIMIT_S)
    except Exception as exc:  # one target's failure is its row's, not the drill's end
        notes[name] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        print(f"{name}: {notes[name]}")
        continue
    r = rows[name]
    print(f"{name}: processed {r['processed']:,}, failed {r['failed']:,}, lost {r['verdict.lost']}, "
          f"duplicated {r['verdict.duplicated']}, killed at {r.get('fault.killedAt')}")

# %% [markdown]
# ## The table
#
# One row per target, the delivery verdict first. `uncounted effects`: jobs whose document exists
# though their end was never counted (a worker killed between the two). `jobs/s`: jobs ended a
# second from the run's start to its last job's end. Latencies from the run's histograms
# (`GET /runs/{id}/latency`), in ms.

# %%
per_target = {name: target_figures(rows[name], evidence.get(name)) for name in rows}
table = [table_row(name, per_target[name]) if name in rows else {"target": name} for name in TARGETS]
for line in table:
    line["note"] = notes.get(line["target"], "")
frame = pd.DataFrame(table).set_index("target")
display(frame)

# %%
ran = [line for line in table if line["target"] in rows]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for ax, column, title in ((axes[0], "jobs/s", "throughput (jobs/s)"),
                          (axes[1], "endToEnd p99 ms", "end to end p99 (ms)")):
    values = [line[column] or 0 for line in ran]
    colours = ["#b42318" if line["lost"] or line["duplicated"] else "#2e90fa" for line in ran]
    ax.bar([line["target"] for line in ran], values, color=colours)
    for i, value in enumerate(values):
        ax.text(i, value, f"{value:,.0f}", ha="center", va="bottom")
    ax.set_title(title); ax.margins(y=0.2); ax.grid(alpha=0.3, axis="y")
fault = f"kill -9 of worker-1 at {KILL_AT:.0%}" if KILL_AT is not None else "no kill"
fig.suptitle(f"X={X:,}, {fault} (red: jobs lost or duplicated)")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Verdict
#
# For every target that ran: the fault hit its run; every job is accounted for (processed,
# failed for good, lost, or an uncounted effect: `X` in all); the jobs that failed for good are
# the ones the seed draws (over the jobs that ended exactly once: the fault's are left out); the
# verdict's lost and duplicated are what the Elasticsearch documents show (each job's document,
# `_version` above 1 for one written again). For lab: nothing lost, nothing duplicated.

# %%
verdicts = Verdicts()
for name in TARGETS:
    if name not in rows:
        verdicts.check(f"{name}: ran", notes[name].startswith("skipped"), "ran, or skipped (missing here)",
                       notes[name])
        continue
    r, seen = rows[name], evidence[name]
    lost, duplicated, uncounted = r["verdict.lost"], r["verdict.duplicated"], r["verdict.uncountedEffects"]
    if KILL_AT is not None:
        verdicts.check(f"{name}: worker-1 killed mid-run", r.get("fault.killedAt") is not None,
                       f"at {KILL_AT:.0%} of the jobs ended", r.get("fault.killedAt", r.get("fault.error")))
    unfinished = r.get("verdict.indeterminate.unfinished") or 0  # timed-out submits never ended
    verdicts.check(f"{name}: every job accounted for", r["processed"] + r["failed"] + lost + uncounted + unfinished == X,
                   f"processed + failed + lost + uncounted effects + unfinished indeterminate = {X:,}",
                   f"{r['processed']:,} + {r['failed']:,} + {lost} + {uncounted} + {unfinished}")
    agree = failures_agree(seen.maps, expected)
    verdicts.check(f"{name}: the failed jobs are the seeded ones", agree["agree"],
                   f"{agree['expected']} seqs", f"{agree['observed']} seqs, {agree['differ']} differ "
                   f"({agree['leftOut']} the fault touched left out)")
    by_docs = lost_by_documents(X, seen.maps, seen.docs)
    verdicts.check(f"{name}: lost and duplicated as the documents show", (lost, duplicated) == (by_docs, seen.docs.duplicated),
                   f"{by_docs} without a document, {seen.docs.duplicated} written again", f"{lost} lost, {duplicated} duplicated")
    if name == "lab":
        verdicts.check("lab: nothing lost, nothing duplicated despite the kill",
                       (lost, duplicated, r["processed"] + r["failed"]) == (0, 0, X),
                       f"0 lost, 0 duplicated, processed + failed = {X:,}",
                       f"{lost} lost, {duplicated} duplicated, {r['processed'] + r['failed']:,}")


def said(line):
    """A target's line of the headline: its verdict first, then its rate and latency."""
    if line["target"] not in rows:
        return notes[line["target"]]
    verdict = (f"lost {line['lost']}, duplicated {line['duplicated']}, run twice "
               f"{line['executed more than once']}, unexpected {line['unexpected']}")
    return (f"{verdict}; {line['processed']:,} processed, {line['failed']:,} failed; "
            f"{line['jobs/s'] or 0:,.1f} jobs/s, end to end p99 {line['endToEnd p99 ms']} ms")


clean = [line["target"] for line in ran if not (line["lost"] or line["duplicated"] or line["unexpected"])]
lossy = [f"{line['target']} (lost {line['lost']}, duplicated {line['duplicated']}, unexpected {line['unexpected']})"
         for line in ran if line["target"] not in clean]
headline = {f"delivery ({fault})": f"clean: {', '.join(clean) or 'none'}" + (f"; not: {', '.join(lossy)}" if lossy else "")}
headline.update({line["target"]: said(line) for line in table})
figures = {"targets": per_target, "notes": notes, "x": X, "shape": SHAPE, "payload": PAYLOAD, "seed": SEED, "workers": WORKERS,
           "concurrency": CONCURRENCY, "killAt": KILL_AT, "freezeSeconds": FREEZE_SECONDS,
           "seededFailures": expected.bit_count()}
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=fig)
display(HTML("<p>" + html.escape(next(iter(headline.values()))) + "</p>"))
verdicts

# %% [markdown]
# ## Teardown
#
# Each target's run deleted its namespace when it ended; what is left is the drill's own.

# %%
teardown(base)
