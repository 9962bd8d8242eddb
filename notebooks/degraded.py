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
# # Drill: degraded, not dead
#
# One run, with every connection of the lab's processes to Redis, RabbitMQ and Elasticsearch going
# through the fault proxy (`lab/ops/faults/`, Toxiproxy's model), and during it, one partial fault
# after another, each after a baseline and each healed before the next:
#
# 1. Elasticsearch answers late: +200 ms ± 50 on every response;
# 2. RabbitMQ's link capped in both directions;
# 3. Redis blackholed (accepts, takes bytes, never answers), then healed;
# 4. RabbitMQ connections reset (RST) a second after they open;
# 5. Elasticsearch partitioned (blackholed), then healed;
# 6. a worker frozen (SIGSTOP) while it holds messages: the broker hands them to the other worker
#    once the frozen one misses its AMQP heartbeats;
# 7. a worker throttled to a share of the CPU (SIGSTOP/SIGCONT in a duty cycle).
#
# Then: exact counts (documents = X distinct, `processed` = X), no lab process exited, each
# blackhole noticed within the client's deadline, how long each fault took to recover from, the
# throughput during each fault beside its baseline, `GET /status` answered throughout (a 503
# naming the service while Redis is silent), and where the jobs' time went, fault by fault.
# Run it with `lab report degraded`.
#
# `TARGET` picks whose workers run the jobs (`lab target list`): lab's own (the default), or
# Celery's, Dramatiq's, RQ's, arq's or BullMQ's, started by the same supervisor behind the same
# proxy. What changes for another target:
#
# * the RabbitMQ faults (2 and 4) run only when the target's broker is RabbitMQ (celery,
#   dramatiq); for rq, arq and bullmq, whose broker is Redis, they are skipped and the report says
#   so — the Redis blackhole then silences the target's broker too;
# * "its messages moved to the other worker" is lab's (its AMQP heartbeat); another framework
#   hands a frozen worker's jobs on by its own rule (a broker heartbeat, a lock, a job timeout),
#   which shows in the verdict as jobs executed more than once;
# * "noticed within the deadline" is judged for the services lab's own processes talk to (all of
#   them for lab; Redis for another target, whose workers log in their framework's format);
# * instead of exact counts: the delivery verdict (lost, duplicated, executed more than once,
#   unexpected), checked to account for all X jobs and to agree with the documents, the run
#   drained once nothing of it has ended for 10 s, as `lab experiment` drains one.

# %% tags=["parameters"]
X = 60_000                  # jobs in the run (enough to outlast every fault)
Y = 24_000                  # jobs per minute
WORKERS = 2                 # worker processes
BASELINE_SECONDS = 5        # quiet time measured before each fault
FAULT_SECONDS = 8           # how long latency, bandwidth and resets last
ES_LATENCY_MS = 200         # latency added to Elasticsearch
ES_JITTER_MS = 50           # ± this much, drawn per chunk
AMQP_RATE_KB = 64           # KB/s each way
REDIS_BLACKHOLE_SECONDS = 10  # how long Redis is silent
ES_PARTITION_SECONDS = 15   # how long Elasticsearch is cut off
DEADLINE_S = 3.0            # the clients' Redis and Elasticsearch deadlines in this drill
AMQP_HEARTBEAT_S = 2        # a frozen worker's messages move after about twice this
FREEZE_SECONDS = 12         # how long worker-1 is frozen (SIGSTOP)
THROTTLE_SHARE = 0.3        # of the CPU time a throttled worker gets
RECOVERY_LIMIT_S = 30       # how long a healed fault may take to be recovered from
STATUS_WITHIN_MS = 1500     # each GET /status answered within this, a 503 naming a silent service included
TARGET = "lab"              # whose workers run the jobs: lab, celery, dramatiq, rq, arq, bullmq
SUMMARY_PATH = None         # lab report sets this

# %% [markdown]
# ## Setup
#
# A private Elasticsearch-API server, the machine's Redis and RabbitMQ (in this drill's own
# namespace), the fault proxy on a free port in front of all three, and the lab's processes (with
# the target's workers) pointed at the proxy. Nothing restarts a process that exits: an exit would
# show.

# %%
import atexit
import re
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import matplotlib.pyplot as plt

from lab.client import LabClient
from lab.measure import delivery
from lab.measure.drill import StatusSampler, Verdicts, drill_settings, save_summary, teardown
from lab.measure.jobtime import job_time
from lab.ops import servers
from lab.ops.faults import plan
from lab.ops.faults import processes
from lab.ops.faults.client import FaultClient
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores
from lab.runtime.store import Store
from lab.wait import wait_until

delivery.check(TARGET)
BROKER = delivery.broker(TARGET)  # "rabbitmq" or "redis": the service that carries the jobs
home = Path(tempfile.mkdtemp(prefix="lab-degraded-"))
es = servers.start_elasticsearch(servers.free_port(), home)
atexit.register(es.stop)
direct = drill_settings("degraded", es_url=es.url, home=str(home), heartbeat_s=0.5, heartbeat_ttl_s=3.0,
                        lease_ms=2000, redis_timeout_s=DEADLINE_S, es_timeout_s=DEADLINE_S,
                        amqp_heartbeat_s=AMQP_HEARTBEAT_S)
proxy = servers.start_faults(servers.free_port(), home, [])
atexit.register(proxy.stop)
faults = FaultClient(proxy.url, token=direct.api_token)
services = ("redis", "rabbitmq", "elasticsearch")
opened = faults.populate(plan.proxies_for(direct, services, free=True))
listening = {p["name"]: p["listen"] for p in opened}
settings = direct.with_overrides(faults_url=proxy.url, **plan.through(direct, listening, services))
supervisor = Supervisor(settings)
delivery.start(supervisor, settings, WORKERS, TARGET)
client = LabClient.of(settings)
pids = {c["name"]: c["pid"] for c in supervisor.status()}
print("through the proxy at", proxy.url, listening)

# %% [markdown]
# ## The run and the faults

# %%
steps = []   # one per fault: its baseline, its time, its heal, its rates
skipped = []  # {fault, why}: the faults that do not apply to the target

def now():
    return time.time() - sampler.started  # drill time, s

def step(name, apply, hold_s, service, blackhole=False, heal=None, during=None):
    """A baseline, the fault for `hold_s` (`during` watches it), then healed, then waited out
    until the processing rate (over the last second) is back at 80 % of the baseline (or of the
    release rate, if lower), for at most RECOVERY_LIMIT_S."""
    # The baseline is the steady state: what the last fault left queued is worked off first.
    # Another target may have lost jobs, which stay in this backlog for ever: it goes on after
    # RECOVERY_LIMIT_S, with what was left recorded (lab's own backlog must be worked off).
    try:
        wait_until(lambda: (r := Stores.of(direct).runs.get(run_id)).enqueued - r.processed - r.failed <= Y / 60,
                   RECOVERY_LIMIT_S, "the backlog to be worked off", poll_s=0.1)
        backlog_left = 0
    except TimeoutError:
        if TARGET == "lab":
            raise
        r = Stores.of(direct).runs.get(run_id)
        backlog_left = r.enqueued - r.processed - r.failed
    baseline_from = now()
    time.sleep(BASELINE_SECONDS)
    at, began_wall = now(), time.time()
    baseline = sampler.rate(baseline_from, at)
    # A baseline that caught the end of a backlog is above the release rate, which no healthy
    # run can keep up once the backlog is gone: recovery is judged against the lower of the two.
    target = 0.8 * min(baseline, Y / 60)
    apply()
    watched = during(hold_s) if during else time.sleep(hold_s)
    (heal or (lambda: faults.heal(service)))()
    healed = now()
    left = X - Stores.of(direct).runs.get(run_id).processed
    recovered = None
    while now() - healed < RECOVERY_LIMIT_S and Stores.of(direct).runs.get(run_id).processed < X:
        if now() - healed >= 1.0 and sampler.rate(now() - 1.0, now()) >= target:
            recovered = now()
            break
        time.sleep(0.1)
    steps.append({"fault": name, "service": service, "blackhole": blackhole, "at": round(at, 2),
                  "healedAt": round(healed, 2), "beganWall": began_wall, "jobsLeft": left,
                  "baselinePerSecond": round(baseline, 1), "backlogBeforeBaseline": backlog_left,
                  "duringPerSecond": round(sampler.rate(at, healed), 1),
                  "recoverySeconds": round(recovered - healed, 2) if recovered else None,
                  **(watched or {})})
    print(f"t={at:6.1f}s  {name}: healed after {healed - at:.1f} s; {left:,} jobs left; "
          f"back at {target:,.0f}/s " + (f"{recovered - healed:.1f} s after" if recovered else "NOT"))

def on_rabbitmq(name, *args, **kwargs):
    """A RabbitMQ fault: a step when RabbitMQ carries the target's jobs, else skipped, saying why."""
    if BROKER == "rabbitmq":
        step(name, *args, **kwargs)
        return
    skipped.append({"fault": name, "why": f"the {TARGET} target's broker is Redis: RabbitMQ carries none of its jobs"})
    print(f"skipped: {name} ({skipped[-1]['why']})")

def messages_moved(hold_s):
    """While a worker is frozen: when the broker gave up on it (the main queue's consumers fell
    by one: its unacked messages went back to the queue, to the other worker)."""
    began = time.monotonic()
    moved = None
    while time.monotonic() - began < hold_s:
        try:
            queue = next(q for q in client.queues()["queues"] if q["name"] == settings.queue)
            if moved is None and queue["consumers"] < WORKERS:
                moved = round(time.monotonic() - began, 2)
        except Exception:  # noqa: BLE001 - the API may answer late while a worker is frozen
            pass
        time.sleep(0.2)
    return {"messagesMovedAfterSeconds": moved}

with StatusSampler(settings.api_url, interval_s=0.1, token=settings.api_token,
                   timeout_s=STATUS_WITHIN_MS / 1000 + 1) as sampler:
    run_id = client.run(X, Y, target=TARGET)["runId"]
    wait_until(lambda: Stores.of(direct).runs.get(run_id).processed > 0, 60, "the first jobs")
    step(f"Elasticsearch +{ES_LATENCY_MS} ms ± {ES_JITTER_MS}", lambda: faults.add_toxic(
        "elasticsearch", "latency", {"latency": ES_LATENCY_MS, "jitter": ES_JITTER_MS}), FAULT_SECONDS, "elasticsearch")
    on_rabbitmq(f"RabbitMQ capped at {AMQP_RATE_KB} KB/s", lambda: [faults.add_toxic(
        "rabbitmq", "bandwidth", {"rate": AMQP_RATE_KB}, stream) for stream in ("upstream", "downstream")],
        FAULT_SECONDS, "rabbitmq")
    step(f"Redis blackholed {REDIS_BLACKHOLE_SECONDS} s", lambda: faults.blackhole("redis"),
         REDIS_BLACKHOLE_SECONDS, "redis", blackhole=True)
    on_rabbitmq("RabbitMQ connections reset 1 s after they open", lambda: faults.add_toxic(
        "rabbitmq", "reset_peer", {"timeout": 1000}), FAULT_SECONDS, "rabbitmq")
    step(f"Elasticsearch partitioned {ES_PARTITION_SECONDS} s", lambda: faults.blackhole("elasticsearch"),
         ES_PARTITION_SECONDS, "elasticsearch", blackhole=True)
    frozen_pid = supervisor.pid("worker-1")
    step(f"worker-1 frozen {FREEZE_SECONDS} s", lambda: processes.freeze(frozen_pid), FREEZE_SECONDS,
         "worker-1", heal=lambda: processes.thaw(frozen_pid), during=messages_moved if TARGET == "lab" else None)
    throttle = processes.throttled(supervisor.pid("worker-1"), THROTTLE_SHARE)
    step(f"worker-1 throttled to {THROTTLE_SHARE:.0%} of the CPU", throttle.__enter__, FAULT_SECONDS,
         "worker-1", heal=lambda: throttle.__exit__(None, None, None))
    run = delivery.settle(Stores.of(direct), run_id, TARGET, 900)
    time.sleep(1.0)
    faults.reset()

# %% [markdown]
# Each fault beside its baseline: jobs processed a second before it and while it held, and how
# long after the heal the rate was back at 80 % of the baseline (or of the release rate, when the
# baseline caught the end of the last fault's backlog). A blackhole is *noticed* when a
# lab process logs the silent service by name, which its client deadline bounds.

# %%
LOGGED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) WARNING .*(Redis|Elasticsearch)")
SERVICE_WORDS = {"redis": "Redis", "elasticsearch": "Elasticsearch"}

def noticed_after(entry):
    """Seconds from the blackhole to the first warning naming the service, in any process's log."""
    first = None
    for name in pids:
        for line in supervisor.tail(name, 400).splitlines():
            found = LOGGED.match(line)
            if found and found.group(2) == SERVICE_WORDS[entry["service"]]:
                at = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                if at >= entry["beganWall"] and (first is None or at < first):
                    first = at
    return round(first - entry["beganWall"], 2) if first is not None else None

for s in steps:
    s["noticedAfterSeconds"] = noticed_after(s) if s["blackhole"] else None
    print(f"{s['fault']:<48} {s['baselinePerSecond']:>7,.0f}/s before, {s['duringPerSecond']:>7,.0f}/s during, "
          f"back {s['recoverySeconds']} s after the heal" + (f", noticed after {s['noticedAfterSeconds']} s" if s["blackhole"] else ""))

# %% [markdown]
# ## What the pipeline did

# %%
measured = client.latency(run_id)
fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
rates = [(b["t"], (b["processed"] - a["processed"]) / (b["t"] - a["t"]))
         for a, b in zip(sampler.samples[::10], sampler.samples[10::10]) if b["t"] > a["t"]]
top.plot([t for t, _ in rates], [r for _, r in rates], color="#1a7f37", label="processed / s")
windows = measured["endToEnd"].get("windows", [])
ends = [w["t"] + measured["windowSeconds"] - sampler.started for w in windows]  # in drill seconds
bottom.step(ends, [w["p99Ms"] for w in windows], where="pre", color="#b42318", label="end to end p99 (10 s windows)")
bottom.step(ends, [w["p50Ms"] for w in windows], where="pre", color="#2e90fa", label="end to end p50")
for ax in (top, bottom):
    for i, s in enumerate(steps, start=1):
        ax.axvspan(s["at"], s["healedAt"], color="#fda29b", alpha=0.3)
        if ax is top:
            ax.text(s["at"], ax.get_ylim()[1] * 0.92, f" {i}", color="#b42318")
    ax.grid(alpha=0.3); ax.legend(loc="upper right", fontsize=8)
top.set_ylabel("jobs / s"); bottom.set_ylabel("ms"); bottom.set_yscale("log"); bottom.set_xlabel("drill seconds")
top.set_title(f"run {run_id}: faults shaded (" + "; ".join(f"{i}. {s['fault']}" for i, s in enumerate(steps, 1)) + ")",
              fontsize=8)
plt.tight_layout(); plt.show()
chart = fig

# %% [markdown]
# ## Verdict

# %%
store = Store(direct)
store.refresh()
documents, distinct = store.count(run_id), store.distinct_job_ids(run_id)
found = delivery.read(direct, run_id)  # the delivery verdict
alive = {c["name"]: c["pid"] for c in supervisor.status() if c.get("running")}
answered = sampler.slowest_answer()
verdicts = Verdicts()
if TARGET == "lab":  # lab's promise: exactly-once effects, whatever the faults
    verdicts.check("Elasticsearch count", documents == X, X, documents)
    verdicts.check("duplicate jobIds", documents == distinct, 0, documents - distinct)
    verdicts.check("processed", run.processed == X and run.failed == 0, f"{X}, 0 failed",
                   f"{run.processed}, {run.failed} failed")
else:  # another framework's: what it did, accounted for and agreeing with the documents
    delivery.judge(verdicts, found, X, documents, distinct)
verdicts.check("no lab process exited", alive == pids, pids, alive)
verdicts.check("every fault hit a run with work left", all(s["jobsLeft"] > 0 for s in steps),
               "jobs left at each (else raise X)", [s["jobsLeft"] for s in steps])
# Each client's deadline: a Redis command's timeout; an Elasticsearch request's timeout, twice
# (a request that timed out is tried once more before the error surfaces, lab/runtime/store.py).
DEADLINES = {"redis": DEADLINE_S, "elasticsearch": 2 * DEADLINE_S}
# Who notices: lab's own processes log a silent service by name; another target's workers log in
# their framework's format, so for it only Redis (which lab's API and scheduler use) is judged.
for s in steps:
    if s["blackhole"] and TARGET != "lab" and s["service"] != "redis":
        skipped.append({"fault": f"{s['fault']}: noticed within the deadline",
                        "why": f"only the {TARGET} workers talk to it, and they log in their own format"})
    elif s["blackhole"]:
        deadline = DEADLINES[s["service"]]
        verdicts.check(f"{s['fault']}: noticed within the deadline",
                       s["noticedAfterSeconds"] is not None and s["noticedAfterSeconds"] <= deadline + 3,
                       f"a warning naming it within {deadline:g} s + 3", s["noticedAfterSeconds"])
    verdicts.check(f"{s['fault']}: recovered after the heal", s["recoverySeconds"] is not None,
                   "back at 80 % of its baseline or the release rate", f"{s['recoverySeconds']} s")
for s in steps:
    if "messagesMovedAfterSeconds" in s:
        moved = s["messagesMovedAfterSeconds"]
        verdicts.check(f"{s['fault']}: its messages moved to the other worker",
                       moved is not None and moved <= 3 * AMQP_HEARTBEAT_S + 3,
                       f"within about twice the AMQP heartbeat ({AMQP_HEARTBEAT_S} s)", moved)
verdicts.check("GET /status answered throughout",
               answered["unanswered"] == 0 and answered["slowestMs"] < STATUS_WITHIN_MS,
               f"every request, each within {STATUS_WITHIN_MS:,} ms", answered)
lost = X - distinct if TARGET == "lab" else found["lost"]
figures = {"runId": run_id, "target": TARGET, "x": X, "y": Y, "documents": documents, "distinct": distinct,
           "lost": lost, "duplicates": documents - distinct, "processed": run.processed, "failed": run.failed,
           "verdict": found, "faults": steps, "skipped": skipped, "status": answered, "seconds": run.durationSeconds}
headline = {"target": TARGET, "lost": f"{lost:,} of {X:,}", "duplicates": f"{documents - distinct:,}"}
if TARGET != "lab":
    headline["delivery verdict"] = delivery.summary(found)
for s in skipped:
    headline[f"skipped: {s['fault']}"] = s["why"]
for s in steps:
    headline[s["fault"]] = (f"{s['duringPerSecond']:,.0f} jobs/s during against {s['baselinePerSecond']:,.0f} before; "
                            f"back {s['recoverySeconds']} s after the heal")
headline["GET /status"] = f"slowest {answered['slowestMs']} ms, {answered['named503']} named 503s"
figures["jobTime"] = job_time(direct, {"run": run_id}, verdicts)
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=chart)
verdicts

# %% [markdown]
# ## Teardown

# %%
supervisor.down()
faults.reset()
proxy.stop()
teardown(direct)
es.stop()
shutil.rmtree(home, ignore_errors=True)
