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
# # Drill: `GET /status` latency under load, and where it breaks
#
# While a fast run is active (`RUN_Y` jobs a minute on one worker), Locust in distributed mode
# (`LOCUST_PROCESSES` worker processes, user class `StatusRateUser`, each user offering a fixed 10
# requests a second) offers `GET /status` at rising rates. For each step: answered requests a
# second, p50, p95, p99, failures, and the pipeline's drain (jobs processed a second) beside it.
# The load rises until p95 passes the bar or a request fails; the **knee** is the highest answered
# rate that met the bar. Verdict: the knee is at least `TARGET_RPS` and the run kept going. Run it
# with `lab report latency`.

# %% tags=["parameters"]
OFFERED_STEPS = [250, 500, 1000, 1500, 2000, 3000]  # GET /status a second, one step each
STEP_SECONDS = 15           # how long each step lasts
P95_MS = 20.0               # the bar a step must meet
TARGET_RPS = 1000           # the knee must be at least this
DRAIN_SHARE = 0.9           # under load, jobs must drain at least this share of their rate with none
LOCUST_PROCESSES = 2        # Locust processes offering the load
API_PROCESSES = 1           # API processes sharing the port
RUN_X = 10_000_000          # a run that stays active during the whole drill
RUN_Y = 120_000             # jobs per minute while Locust runs
SUMMARY_PATH = None         # lab report sets this

# %% [markdown]
# ## Setup: a private lab namespace, its processes, an active run

# %%
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt

from lab.ops import stack
from lab.measure.bench_status import drain_per_second, load_step, named_pids
from lab.client import LabClient
from lab.measure.jobtime import add_job_time
from lab.measure.drill import Verdicts, drill_settings, save_summary, teardown
from lab.runtime.stores import Stores
from lab.ops.supervisor import Supervisor
from lab.wait import wait_until

settings = drill_settings("latency")
stack.up(settings)
supervisor = Supervisor(settings)
supervisor.up(workers=1, api_args=["--processes", str(API_PROCESSES)] if API_PROCESSES > 1 else None)
client = LabClient.of(settings)
run_id = client.run(RUN_X, RUN_Y)["runId"]
wait_until(lambda: Stores.of(settings).runs.get(run_id).processed > 0, 60, "the first jobs")
time.sleep(2)
idle = drain_per_second(Stores.of(settings), run_id, STEP_SECONDS / 2)
print(f"run {run_id} at {RUN_Y:,} jobs/min; drain with no load: {idle:,.0f} jobs/s; API {settings.api_url}")

# %% [markdown]
# ## The steps, until the bar breaks

# %%
out = Path(tempfile.mkdtemp(prefix="lab-latency-"))
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
      f"{status['processed']:,} processed")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
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
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Verdict

# %%
verdicts = Verdicts()
verdicts.check("knee (highest answered rate meeting the bar)", knee >= TARGET_RPS,
               f">= {TARGET_RPS:,}/s with p95 <= {P95_MS:g} ms", f"{knee:,.0f}/s")
for s in met:
    verdicts.check(f"drain at {s['answeredPerSecond']:,.0f} answered/s", s["drainPerSecond"] >= DRAIN_SHARE * idle,
                   f">= {DRAIN_SHARE:.0%} of {idle:,.0f}/s", f"{s['drainPerSecond']:,.0f}/s")
verdicts.check("a run was active throughout", status["running"], "running", status["state"])
figures = {"steps": steps, "kneePerSecond": knee, "p95BarMs": P95_MS, "idleDrainPerSecond": round(idle, 1),
           "apiProcesses": API_PROCESSES, "locustProcesses": LOCUST_PROCESSES, "runY": RUN_Y}
headline = {"knee": f"{knee:,.0f} answered/s with p95 <= {P95_MS:g} ms",
            "drain with no load": f"{idle:,.0f} jobs/s"}
for s in steps:
    headline[f"{s['offeredPerSecond']:,}/s offered"] = (
        f"{s['answeredPerSecond']:,.0f}/s answered; p50 {s['p50Ms']:g}, p95 {s['p95Ms']:g}, p99 {s['p99Ms']:g} ms; "
        f"drain {s['drainPerSecond']:,.0f} jobs/s")
add_job_time(settings, {"run under load": run_id}, figures, headline, verdicts)
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=fig)
verdicts

# %% [markdown]
# ## Teardown

# %%
client.stop()
supervisor.down()
teardown(settings)
shutil.rmtree(out, ignore_errors=True)
