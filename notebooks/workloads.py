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
# # Drill: does a run do what it declares?
#
# A run names its load shape and its workload; this drill holds the pipeline to both, on real
# services. **Shapes**: a ramp, steps and seeded Poisson arrivals, each released as its integral
# says, second by second (`GET /runs/{id}/timeline`). **Workload**: a `synthetic` run with a
# failure rate, a permanent failure rate and lognormal service times, whose observed failures,
# retries, dead letters and service-time quantiles must fall within their statistical intervals,
# with exact counts; the same seed again fails the same jobs. **Live change**: `PATCH /run`
# changes the released rate within a second. Run it with `lab report workloads`.

# %% tags=["parameters"]
SHAPE_SECONDS = 60          # how long each shaped run releases
SHAPE_PEAK = 12_000         # jobs a minute at each shape's top
GAP_JOBS = 1                # a second is within its shape when released - planned is at most
GAP_SHARE = 0.005           # this many jobs or this share of the plan, whichever is larger
SYNTHETIC_JOBS = 5_000      # jobs in the synthetic run
SYNTHETIC_Y = 6_000         # its release rate, jobs a minute
MEDIAN_MS = 80              # declared service time: lognormal median ...
P99_MS = 1_200              # ... and p99
FAIL_RATE = 0.05            # chance an attempt fails (retried)
PERMANENT_FAIL_RATE = 0.01  # chance a job fails for good on its first attempt
SAME_SEED_JOBS = 1_000      # the second run with the same seed
WORKERS = 2                 # worker processes
CONCURRENCY = 20            # slots per worker: rate × mean service time needs about 16
SEED = 20261204             # the seed of every run, so the drill repeats exactly
SUMMARY_PATH = None         # lab report sets this

# %% [markdown]
# ## Setup: a private lab namespace and its processes

# %%
import math
import time

import matplotlib.pyplot as plt

from lab.client import LabClient
from lab.measure.drill import Verdicts, drill_settings, save_summary, teardown
from lab.measure.jobtime import job_time
from lab.measure.workload import binomial_interval, quantile_agrees, shape_fit
from lab.ops import stack
from lab.ops.supervisor import Supervisor
from lab.runtime import distributions, shapes
from lab.runtime.stores import Stores
from lab.runtime.store import Store
from lab.wait import wait_until
from workers import synthetic

settings = drill_settings("workloads")
stack.up(settings)
supervisor = Supervisor(settings)
supervisor.up(workers=WORKERS, worker_args=["--concurrency", str(CONCURRENCY)])
supervisor.wait_api()
client, stores, store = LabClient.of(settings), Stores.of(settings), Store(settings)
verdicts = Verdicts()
figures, headline, run_ids = {}, {}, {}


def settle(run_id, timeout_s):
    wait_until(lambda: stores.runs.get(run_id).settled, timeout_s, f"run {run_id} to settle")
    return stores.runs.get(run_id)


def exact_counts(label, run_id, x):
    """processed + failed = X, and one document per processed job."""
    run = stores.runs.get(run_id)
    store.refresh()
    documents, distinct = store.count(run_id), store.distinct_job_ids(run_id)
    verdicts.check(f"{label}: every job settled once", run.processed + run.failed == x,
                   f"processed + failed = {x:,}", f"{run.processed:,} + {run.failed:,}")
    verdicts.check(f"{label}: one document per processed job", documents == distinct == run.processed,
                   f"{run.processed:,} documents, distinct", f"{documents:,}, {distinct:,} distinct")
    return run


# %% [markdown]
# ## Shapes: released by each second against the shape's integral
#
# Each run is exactly as long as its shape (X is the shape's integral over `SHAPE_SECONDS`), of
# `index` jobs, which a worker drains far faster than any shape here releases them. A second is
# judged unless the timeline marks it (forgiven after an outage, held back by the backlog bound,
# paused): by its end, the released total must be within one job, or 0.5 %, of the plan
# (`GAP_JOBS`, `GAP_SHARE`: the suite's short run on a busy machine allows more, since a tick
# the machine holds back for tens of ms moves a second's last jobs into the next).

# %%
third = SHAPE_SECONDS / 3
SHAPES = {
    "ramp": {"type": "ramp", "from": SHAPE_PEAK / 20, "to": SHAPE_PEAK, "seconds": SHAPE_SECONDS},
    "steps": {"type": "steps", "steps": [{"seconds": third, "y": SHAPE_PEAK / 4},
                                         {"seconds": third, "y": SHAPE_PEAK},
                                         {"seconds": third, "y": SHAPE_PEAK / 2}]},
    "poisson": {"type": "poisson", "y": SHAPE_PEAK / 2},
}
fits = {}
for name, spec in SHAPES.items():
    x = 1 + math.floor(shapes.parse(spec, SEED).count(SHAPE_SECONDS))
    run_id = client.run(x, shape=spec, seed=SEED)["runId"]
    run_ids[name] = run_id
    settle(run_id, SHAPE_SECONDS + 120)
    exact_counts(name, run_id, x)
    fit = fits[name] = shape_fit(client.timeline(run_id)["points"], x, GAP_JOBS, GAP_SHARE)
    verdicts.check(f"{name}: released as the shape says, second by second",
                   fit["judged"] > 0 and fit["within"] == fit["judged"],
                   f"every judged second within {GAP_JOBS:g} job(s) or {GAP_SHARE:.1%} of the plan",
                   f"{fit['within']} of {fit['judged']} seconds; worst gap {fit['worstGap']:+d} "
                   f"at {fit['worstAt']:,} planned; {fit['marked']} marked")
    headline[f"{name} ({shapes.describe(spec)})"] = (
        f"{fit['within']}/{fit['judged']} seconds within tolerance, worst gap {fit['worstGap']:+d} jobs")
    print(f"{name}: {x:,} jobs; {fit['within']}/{fit['judged']} seconds within; worst {fit['worstGap']:+d}")
figures["shapes"] = {name: {k: v for k, v in fit.items() if k != "seconds"} for name, fit in fits.items()}

# %% [markdown]
# ## Workload: a synthetic run against its declared distributions
#
# `cpuShare` 0 (the service time is spent waiting), so a job's observed time (`tookMs`) is what was
# declared plus the worker's overhead. Failures are judged twice: exactly (the failed jobs are the
# ones the seed draws, `workers/synthetic.draw`) and statistically (counts within 99.9 % binomial
# intervals of the declared rates); quantiles within the 99.9 % interval of their order statistics.

# %%
payload = {
    "serviceMs": {"dist": "lognormal", "median": MEDIAN_MS, "p99": P99_MS},
    "cpuShare": 0,
    "failRate": FAIL_RATE,
    "permanentFailRate": PERMANENT_FAIL_RATE,
    "docBytes": {"dist": "uniform", "min": 200, "max": 4000},
}
declared = distributions.parse(payload["serviceMs"], 600_000)
attempts = settings.max_attempts
run_id = run_ids["synthetic"] = client.run(
    SYNTHETIC_JOBS, SYNTHETIC_Y, kind="synthetic", payload=payload, seed=SEED)["runId"]
run = settle(run_id, SYNTHETIC_JOBS / SYNTHETIC_Y * 60 + 300)
exact_counts("synthetic", run_id, SYNTHETIC_JOBS)
drawn = {**payload, "seed": SEED}


def fails(seq):
    tries = [synthetic.draw(drawn, seq, a) for a in range(1, attempts + 1)]
    return tries[0]["permanent"] or all(t["fails"] for t in tries)


expected = {seq for seq in range(SYNTHETIC_JOBS) if fails(seq)}
failed = {s for s in range(SYNTHETIC_JOBS) if stores.redis.getbit(stores.keys.run_failed(run_id), s)}
verdicts.check("synthetic: the jobs that failed are the ones the seed draws", failed == expected,
               f"{len(expected):,} seqs", f"{len(failed):,} seqs, {len(failed ^ expected)} differ")
p_failed = PERMANENT_FAIL_RATE + (1 - PERMANENT_FAIL_RATE) * FAIL_RATE ** attempts
low, high = binomial_interval(SYNTHETIC_JOBS, p_failed)
verdicts.check("synthetic: jobs failed for good", low <= run.failed <= high,
               f"{low:,.0f}..{high:,.0f} (p = {p_failed:.4f})", f"{run.failed:,}")

store.refresh()
hits = store.es.search(index=settings.es_index, query={"term": {"runId": run_id}}, size=SYNTHETIC_JOBS,
                       source=["seq", "attempt", "result.tookMs", "result.serviceMs"])["hits"]["hits"]
docs = [h["_source"] for h in hits]
retried = sum(d["attempt"] > 1 for d in docs)
p_retried = (FAIL_RATE - FAIL_RATE ** attempts) / (1 - FAIL_RATE ** attempts)  # given it was written
low, high = binomial_interval(len(docs), p_retried)
verdicts.check("synthetic: written jobs that needed a retry", low <= retried <= high,
               f"{low:,.0f}..{high:,.0f} of {len(docs):,} (p = {p_retried:.4f})", f"{retried:,}")

letters, offset = [], 0
while True:
    page = client.dead_letters(limit=500, offset=offset)["letters"]
    letters += [letter for letter in page if letter.get("runId") == run_id]
    offset += len(page)
    if len(page) < 500:
        break
reasons = {}
for letter in letters:
    reasons[letter.get("reason")] = reasons.get(letter.get("reason"), 0) + 1
permanent = sum(synthetic.draw(drawn, seq, 1)["permanent"] for seq in range(SYNTHETIC_JOBS))
verdicts.check("synthetic: one dead letter per failed job, permanent ones as such",
               len(letters) == run.failed and reasons.get("permanent", 0) == permanent,
               f"{run.failed:,} letters, {permanent:,} permanent",
               f"{len(letters):,} letters: " + ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items(), key=str)))

took = [d["result"]["tookMs"] for d in docs]
overheads = sorted(d["result"]["tookMs"] - d["result"]["serviceMs"] for d in docs)
overhead_p99 = overheads[int(0.99 * len(overheads)) - 1] if overheads else 0.0
quantile_rows = []
for q in (0.5, 0.9, 0.99):
    agreement = quantile_agrees(took, q, declared.quantile(q), slack=max(overhead_p99, 0.0))
    quantile_rows.append(agreement)
    verdicts.check(f"synthetic: service time p{q * 100:g}", agreement["agrees"],
                   f"{agreement['declared']:,.1f} ms declared, within the 99.9 % interval",
                   f"{agreement['observed']:,.1f} ms (interval {agreement['low']:,.1f}..{agreement['high']:,.1f})")
    headline[f"synthetic: service p{q * 100:g}"] = (
        f"{agreement['observed']:,.1f} ms observed, {agreement['declared']:,.1f} ms declared "
        f"({(agreement['observed'] / agreement['declared'] - 1) * 100:+.1f} %)")
headline["synthetic: failures"] = (f"{run.failed:,} failed for good ({p_failed * SYNTHETIC_JOBS:,.1f} expected), "
                                   f"{retried:,} retried ({p_retried * len(docs):,.1f} expected)")
headline["worker overhead per job"] = (f"median {overheads[len(overheads) // 2]:.2f} ms, p99 {overhead_p99:.2f} ms"
                                       if overheads else "none")
figures["synthetic"] = {
    "jobs": SYNTHETIC_JOBS, "failed": run.failed, "expectedFailed": round(p_failed * SYNTHETIC_JOBS, 1),
    "retried": retried, "expectedRetried": round(p_retried * len(docs), 1), "deadLetters": len(letters),
    "quantiles": quantile_rows, "overheadP99Ms": overhead_p99,
}

# %%
fig, axes = plt.subplots(1, len(fits) + 1, figsize=(4 * (len(fits) + 1), 3.4))
for ax, (name, fit) in zip(axes, fits.items()):
    rows = fit["seconds"]
    t0 = rows[0]["t"] if rows else 0
    ts = [r["t"] + 1 - t0 for r in rows]
    ax.plot(ts, [r["planned"] for r in rows], color="#667085", linestyle="--", label="planned")
    ax.plot(ts, [r["released"] for r in rows], color="#1570ef", label="released")
    ax.set_title(name); ax.set_xlabel("seconds"); ax.set_ylabel("jobs released by then")
    ax.grid(alpha=0.3); ax.legend(loc="upper left")
ax = axes[-1]
ax.step(sorted(took), [(i + 1) / len(took) for i in range(len(took))], where="post", label="observed (tookMs)")
grid = [declared.quantile(q / 1000) for q in range(1, 1000)]
ax.plot(grid, [q / 1000 for q in range(1, 1000)], color="#667085", linestyle="--", label="declared")
ax.set_xscale("log"); ax.set_xlabel("service time (ms, log)"); ax.set_ylabel("share at or below")
ax.set_title("synthetic service time"); ax.grid(alpha=0.3, which="both"); ax.legend(loc="lower right")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## The same seed again

# %%
again = client.run(SAME_SEED_JOBS, SYNTHETIC_Y, kind="synthetic", payload=payload, seed=SEED)["runId"]
settle(again, SAME_SEED_JOBS / SYNTHETIC_Y * 60 + 300)
failed_again = {s for s in range(SAME_SEED_JOBS) if stores.redis.getbit(stores.keys.run_failed(again), s)}
first_part = {s for s in failed if s < SAME_SEED_JOBS}
verdicts.check("the same seed fails the same jobs", failed_again == first_part,
               f"{len(first_part):,} seqs as the first run", f"{len(failed_again):,}, {len(failed_again ^ first_part)} differ")

# %% [markdown]
# ## A live change of rate
#
# A run at 600 jobs a minute (10 a second) is changed to 6,000 (100 a second). Measured: from the
# moment `PATCH /run` is sent until 20 more jobs than the change's starting point are released,
# which the old rate would take 2 s to do and the new one 0.2 s.

# %%
live = client.run(1_000_000, 600)["runId"]
wait_until(lambda: stores.runs.get(live).enqueued >= 5, 30, "the first jobs")
sent = time.monotonic()
changed = client.change_run(y=6_000)
wait_until(lambda: stores.runs.get(live).enqueued >= changed["from"] + 20, 10, "the new rate")
applied_s = time.monotonic() - sent
client.stop()

def released_for_good():
    """The run settled once no scheduler releases it any more: a tick in flight at the stop
    still records what RabbitMQ confirmed, after the stop (those jobs are then processed too)."""
    releasing = any(s.get("runId") == live for s in client.status()["schedulers"])
    run = stores.runs.get(live)
    return not releasing and run.settled and run

live_run = wait_until(released_for_good, 60, f"run {live} to settle with nothing left in flight")
verdicts.check("PATCH /run changes the released rate within a second", applied_s <= 1.0,
               "20 jobs past the change within 1 s", f"{applied_s:.2f} s")
verdicts.check("the changed run is counted exactly", live_run.processed == live_run.enqueued and not live_run.failed,
               f"{live_run.enqueued:,} processed", f"{live_run.processed:,} processed, {live_run.failed:,} failed")
headline["PATCH /run applied"] = f"in {applied_s:.2f} s (20 jobs past the change)"
figures["liveChangeSeconds"] = round(applied_s, 3)

# %% [markdown]
# ## Verdict

# %%
figures["jobTime"] = job_time(settings, run_ids, verdicts)
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=fig)
verdicts

# %% [markdown]
# ## Teardown

# %%
supervisor.down()
store.close()
teardown(settings)
