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
# # Drill: hostile input and outages
#
# `lab` exists to show how a pipeline behaves under faults, so its own boundaries must hold first.
# With `WORKERS` workers running under a supervisor that would restart any that exits:
#
# 1. **poison messages** — bodies no job can be made of (a 5,000-digit attempt, JSON nested
#    50,000 deep, ids that name other Redis keys, 2 MB bodies, unknown kinds, a document
#    Elasticsearch refuses) published straight to the queue with raw pika;
# 2. **hostile requests** — NaN and out-of-range rates, ids that name other keys, bodies too
#    large or too deep, event ids past 2^64, a foreign `Host` or `Origin` (`lab.measure.hostile`);
# 3. **the fault proxy's API** — the requests a web page or a neighbour could send it
#    (`lab.measure.hostile_faults`);
# 4. **every second's work** — a run whose shape once made a tick take seconds, and a run whose
#    workers are all frozen, which must breach its latency objective and stop;
# 5. **outages** — during a run, Redis, Elasticsearch and RabbitMQ each go away for a while and
#    come back (private instances of this drill, with their data).
#
# Verdicts: every poison message dead-lettered with its reason, every hostile request answered
# with the 4xx it deserves (none with a 5xx), no worker exited or was restarted, the event stream
# never cut, and the run exact: Elasticsearch holds X documents with X distinct jobIds and
# `processed` == X. Run it with `lab report hostile`.

# %% tags=["parameters"]
X = 30_000                # jobs in the run that lives through the outages
Y = 120_000               # jobs per minute
WORKERS = 2               # worker processes
OUTAGE_SECONDS = 5        # how long each service stays away
SETTLE_SECONDS = 3        # quiet time between outages
TICK_WATCH_SECONDS = 5    # how long the million-job Poisson run is watched
SUMMARY_PATH = None       # lab report sets this

# %% [markdown]
# ## Setup
#
# Private Redis, RabbitMQ and Elasticsearch-API servers on free ports (taking them away disturbs
# nothing else), and the lab's processes under a supervisor that restarts any that exits, as
# `lab up` does: a restart would show in the verdicts.

# %%
import atexit
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt

from lab.runtime import broker

from lab.measure import hostile

from lab.ops import servers
from lab.client import LabClient
from lab.measure.jobtime import add_job_time
from lab.measure.drill import EventFollower, Keeper, StatusSampler, Verdicts, drill_settings, save_summary, teardown
from lab.runtime.stores import Stores
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
keeper = Keeper(supervisor)  # restarts whatever exits, as lab up does
pids = {name: supervisor.pid(name) for name in supervisor.workers()}
print("workers", pids, "| API", settings.api_url)

# %% [markdown]
# ## 1. Poison messages

# %%
connection = broker.connect(settings.amqp_url, "lab-drill-hostile")
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
    print(f"{headers['x-lab-reason']:<13} {len(body):>9,} bytes  {headers['x-lab-error'][:90]}")

# %% [markdown]
# ## 2. Hostile requests

# %%
answers = hostile.send_probes(settings.api_url, settings.api_token)
server_errors = [a for a in answers if a.status >= 500]
wrong = [a for a in answers if not a.right]
print(f"{len(answers)} hostile requests: {len(server_errors)} answered 5xx, {len(wrong)} answered wrong")
for a in wrong:
    print(f"  {a.probe.method} {a.probe.path[:70]}: expected {a.probe.expected}, got {a.status}")

# %% [markdown]
# ## 3. The fault proxy's API
#
# A fault proxy of this drill's own: every probe of `lab.measure.hostile_faults` (foreign `Host`
# and `Origin`, `text/plain` bodies, 80 MB bodies, `listen` strings for a shell or every
# interface, names that cannot be deleted, digits only Python counts) must be refused, none with
# a 5xx, and the proxies must be as they were.

# %%
from lab.measure import hostile_faults

fault_proxy = servers.start_faults(servers.free_port(), home, [])
faults = hostile_faults.send_probes(fault_proxy.url).summary()
fault_proxy.stop()
print(faults)

# %% [markdown]
# ## 4. What the scheduler does every second
#
# A valid run whose shape once cost a tick seconds (a million Poisson arrivals at 60 a minute),
# followed for a few seconds: the scheduler's slowest tick, from its heartbeat. Then a run whose
# workers are all frozen: its latency objective must breach (the jobs that have not finished
# count at their age so far) and `abortOnBreach` must stop it.

# %%
import os
import signal

def slowest_tick_ms():
    return max((s.get("slowestTickMs") or 0) for s in client.status()["schedulers"])

big = client.run(1_000_000, shape={"type": "poisson", "y": 60})["runId"]
ticks = []
until = time.time() + TICK_WATCH_SECONDS
while time.time() < until:
    ticks.append(slowest_tick_ms())
    time.sleep(0.5)
client.stop()
slowest_tick = max(ticks)
print(f"slowest scheduler tick over {TICK_WATCH_SECONDS} s of a million-job Poisson run: {slowest_tick} ms")

stalled = client.run(100_000, 1200, slo=[{"metric": "endToEnd.p99", "maxMs": 2000, "windowSeconds": 5}],
                     abort_on_breach=True)["runId"]
wait_until(lambda: Stores.of(settings).runs.get(stalled).processed > 0, 60, "the first jobs")
for pid in pids.values():
    os.kill(pid, signal.SIGSTOP)
try:
    breach = wait_until(lambda: (r := Stores.of(settings).runs.get(stalled)).state == "breached" and r, 60,
                        "the frozen run to breach")
finally:
    for pid in pids.values():
        os.kill(pid, signal.SIGCONT)
breach_value = next(o["value"] for o in breach.slo if o.get("state") == "breached")
print(f"frozen workers: run {stalled} breached endToEnd.p99 at {breach_value:,.0f} ms")
wait_until(lambda: Stores.of(settings).runs.get(stalled).settled, 120, "the breached run to settle")

# %% [markdown]
# ## 5. Outages during a run
#
# An event-stream client follows `/events` the whole time, as a dashboard would, and counts how
# often its stream was cut.

# %%
stream = EventFollower(settings).start()
outages = []

def outage(name, take_away, bring_back):
    at = time.time() - sampler.started
    left = X - Stores.of(settings).runs.get(run_id).processed
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
    wait_until(lambda: Stores.of(settings).runs.get(run_id).processed > 0, 60, "the first jobs")
    time.sleep(SETTLE_SECONDS)
    outage("Redis", services["redis"].stop, restart("redis", lambda: servers.start_redis(redis_port, home / "redis")))
    outage("Elasticsearch", services["elasticsearch"].pause_service, services["elasticsearch"].resume_service)
    outage("RabbitMQ", services["rabbitmq"].stop, restart("rabbitmq", lambda: servers.start_rabbitmq(rabbit_port, home)))
    run = wait_until(lambda: (r := Stores.of(settings).runs.get(run_id)) and r.settled and r, 600, "the run to settle", poll_s=0.5)
    time.sleep(1.0)
for o in outages:
    resumed = sampler.first_progress_after(o["backAt"]) if o["jobsLeft"] > 0 else None
    o["resumedAfterBackSeconds"] = round(resumed - o["backAt"], 2) if resumed is not None else None
    print(f"{o['service']:<14} work resumed {o['resumedAfterBackSeconds']} s after it was back")

# %%
fig, ax = plt.subplots(figsize=(11, 4))
ts = [s["t"] for s in sampler.samples]
ax.plot(ts, [s["enqueued"] for s in sampler.samples], label="enqueued")
ax.plot(ts, [s["processed"] for s in sampler.samples], label="processed")
for o in outages:
    ax.axvspan(o["at"], o["backAt"], color="#b42318", alpha=0.15)
    ax.text(o["at"], X * 0.95, f" {o['service']} away", color="#b42318", fontsize=8)
ax.set_xlabel("seconds"); ax.set_ylabel("jobs"); ax.set_title(f"run {run_id}: X={X:,}, Y={Y:,}/min")
ax.legend(loc="lower right"); ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## Verdict

# %%
stream.stop()
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
verdicts.check("fault API requests answered 5xx or accepted", faults["serverErrors"] == 0 and faults["accepted"] == 0,
               0, f"{faults['serverErrors']} 5xx, {faults['accepted']} accepted of {faults['probes']}")
verdicts.check("fault API probes answered right", faults["right"] == faults["probes"],
               f"{faults['probes']} of {faults['probes']}", faults["wrong"] or faults["right"])
verdicts.check("fault API left as it was", faults["unchanged"], "unchanged", faults["unchanged"])
verdicts.check("slowest scheduler tick", slowest_tick < 1000, "under 1,000 ms", f"{slowest_tick} ms")
verdicts.check("a run whose workers froze breached", breach.state == "breached" and breach_value >= 2000,
               "breached, endToEnd.p99 ≥ 2,000 ms", f"{breach.state}, {breach_value:,.0f} ms")
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
           "streamCuts": stream.reconnects, "outages": outages, "faultApi": faults,
           "slowestTickMs": slowest_tick, "breachedRun": stalled, "breachValueMs": breach_value, "status": sampler.latency(),
           "lost": X - distinct, "duplicates": documents - distinct}
headline = {"hostile requests answered 5xx": f"{len(server_errors)} of {len(answers)}",
            "fault API probes answered right": f"{faults['right']} of {faults['probes']}",
            "slowest scheduler tick": f"{slowest_tick} ms",
            "frozen workers: run breached at": f"endToEnd.p99 {breach_value:,.0f} ms",
            "answered wrong": f"{len(wrong)} of {len(answers)}",
            "poison messages dead-lettered": ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())),
            "worker restarts": restarts, "lost": f"{X - distinct:,} of {X:,}", "duplicates": documents - distinct}
for o in outages:
    headline[f"{o['service']} away: work resumed"] = f"{o['resumedAfterBackSeconds']} s after it was back"
add_job_time(settings, {"run": run_id}, figures, headline, verdicts, outages=True)
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=fig)
verdicts

# %% [markdown]
# ## Teardown

# %%
keeper.down()
teardown(settings)
stop_services()
