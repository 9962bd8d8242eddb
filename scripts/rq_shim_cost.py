"""What lab's RQ shim costs RQ: a worker's throughput without the shim (RQ's `SimpleWorker`) and
with it (`lab.targets.rq_shim.Worker`, counting each job before RQ records its end; and the same
counting in batches, `count_before_finish = False`).

    .venv/bin/python scripts/rq_shim_cost.py [--rounds 7] [--seconds 8]

Each round starts the three workers at the same moment, each in a process of its own on a queue
of its own (more jobs than it can run), and stops them together after `--seconds`: a slow moment
of a shared machine falls on all three, so each round is one pair per shimmed side. A job is a
run's job of the `task` kind whose task does nothing (`time.sleep(0)`): RQ's own cost a job is
all there is besides the shim's. Prints each round (jobs a second, and the worker's CPU time a
job) and the median of the paired ratios. The shared Redis keeps nothing of it after.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab import config  # noqa: E402
from lab.cli.arguments import positive_int  # noqa: E402
from lab.ops.reset import isolated  # noqa: E402
from lab.runtime.messages import run_job  # noqa: E402
from lab.runtime.stores import Stores  # noqa: E402
from lab.runtime.submits import by_status  # noqa: E402
from lab.targets import target  # noqa: E402

SIDES = ("plain", "shim", "batched")
TASK = {"task": "time.sleep", "args": [0]}
JOBS_A_SECOND = 600  # more than an RQ worker runs here: a queue never empties in a round


def work(side: str, queue: str, go: str, seconds: float) -> dict[str, float]:
    """In a worker's own process: once `go` says so, run `queue`'s jobs with the worker of
    `side` for `seconds` (then SIGTERM: RQ's warm stop, after the job at hand)."""
    from rq import Queue
    from rq.worker import SimpleWorker

    from lab.targets import rq_shim

    connection = target("rq", config.load()).connection()
    cls: type = SimpleWorker
    if side != "plain":
        cls = type("Measured", (rq_shim.Worker,), {"count_before_finish": side == "shim"})
    worker, jobs = cls([queue], connection=connection), Queue(queue, connection=connection)
    before = jobs.count
    connection.blpop([go], timeout=60)
    began, cpu = time.perf_counter(), time.process_time()
    threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGTERM)).start()
    worker.work(burst=True, logging_level="WARNING")
    if side != "plain":
        rq_shim.counter().close()  # what is still batched is counted within the figure
    took, cpu = time.perf_counter() - began, time.process_time() - cpu
    done = before - jobs.count
    return {"rate": done / took, "cpuMs": cpu * 1000 / max(1, done)}


def round_of(seconds: float) -> dict[str, dict[str, float]]:
    """The three sides at once, each on a run and a queue of its own."""
    base = isolated(config.load(), "rqcost")
    go = f"{base.prefix}:go"
    sides = {side: isolated(base, f"rqcost-{side}") for side in SIDES}
    jobs = int(JOBS_A_SECOND * seconds)
    children = {}
    try:
        for side, settings in sides.items():
            stores, rq = Stores.of(settings), target("rq", settings)
            run_id = stores.runs.start(jobs, 6e6, kind="task", payload=TASK, target="rq")
            batch = [run_job(run_id, seq, "task", TASK) for seq in range(jobs)]
            stores.release.submitted(run_id, by_status(batch, rq.submit(batch)))
            rq.close()
            argv = [sys.executable, __file__, "--work", side, rq.queue, go, str(seconds)]
            children[side] = subprocess.Popen(argv, env={**os.environ, **settings.as_env()},
                                              stdout=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(1.0)  # every child imported and connected, waiting for `go`
        Stores.of(base).redis.rpush(go, *["go"] * len(SIDES))
        found = {}
        for side, child in children.items():
            out, _ = child.communicate(timeout=seconds + 120)
            if child.returncode != 0:
                raise SystemExit(f"the {side} worker failed ({child.returncode})")
            found[side] = json.loads(out)
        return found
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
        for settings in (*sides.values(), base):
            rq = target("rq", settings)
            rq.purge()
            rq.close()
            Stores.of(settings).retention.purge()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=positive_int, default=7)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--work", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.work:
        side, queue, go, seconds = args.work
        print(json.dumps(work(side, queue, go, float(seconds))))
        return 0
    ratios: dict[str, dict[str, list[float]]] = {s: {"rate": [], "cpuMs": []} for s in SIDES[1:]}
    for n in range(args.rounds):
        found = round_of(args.seconds)
        for side, measures in ratios.items():
            for name, values in measures.items():
                values.append(found[side][name] / found["plain"][name])
        print(f"round {n + 1}: " + ", ".join(
            f"{s} {found[s]['rate']:.0f}/s {found[s]['cpuMs']:.2f} ms CPU a job" for s in SIDES),
            flush=True)  # fmt: skip
    for side, measures in ratios.items():
        rate, cpu = (statistics.median(measures[m]) for m in ("rate", "cpuMs"))
        print(f"{side}: throughput ratio {rate:.3f} (cost {100 * (1 - rate):.1f} %), CPU a job "
              f"ratio {cpu:.3f}; throughput ratios "
              f"{', '.join(f'{r:.3f}' for r in measures['rate'])}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
