"""What lab's Node shim costs a BullMQ worker: its throughput without the shim and with it
(each end counted before BullMQ records it, the default; and counted in the next batch).

    .venv/bin/python scripts/bullmq_shim_cost.py [--rounds 7] [--seconds 6] [--concurrency 5]
                                                 [--work-ms 0]

Each round starts the three workers (scripts/bullmq_shim_cost.js) at the same moment, each in
a Node process of its own on a queue of its own holding more jobs than it can run, and stops
them together after `--seconds`: a slow moment of a shared machine falls on all three, so each
round is one pair per shimmed side. A job is a run's job of the `task` kind, submitted as lab
submits it, whose processor does nothing (BullMQ's own cost a job is all there is besides the
shim's: the worst case) or, with `--work-ms`, waits that long (as a job waiting on I/O).
Prints each round (jobs a second, CPU ms a job) and the median of the paired ratios. The shared
Redis keeps nothing of it after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab import config  # noqa: E402
from lab.cli.arguments import positive_int  # noqa: E402
from lab.config import Settings  # noqa: E402
from lab.ops.reset import isolated  # noqa: E402
from lab.runtime.messages import run_job  # noqa: E402
from lab.runtime.stores import Stores  # noqa: E402
from lab.runtime.submits import by_status  # noqa: E402
from lab.targets import target  # noqa: E402

SIDES = ("plain", "durable", "batched")
TASK = {"task": "nothing", "args": ["{seq}"]}
JS = ROOT / "scripts" / "bullmq_shim_cost.js"  # one worker, one side
JOBS_A_SECOND = 2500  # more than one worker runs here: a queue never empties in a round


def filled(settings: Settings, jobs: int) -> str:
    """A run of `jobs` do-nothing tasks submitted to the namespace's BullMQ queue, as lab
    submits a run's jobs; returns the queue's name."""
    stores, bull = Stores.of(settings), target("bullmq", settings)
    bull.open()
    run_id = stores.runs.start(jobs, 6e6, kind="task", payload=TASK, target="bullmq")
    for start in range(0, jobs, 2000):
        batch = [run_job(run_id, s, "task", TASK) for s in range(start, start + 2000)]
        stores.release.submitted(run_id, by_status(batch, bull.submit(batch)))
    bull.close()
    return bull.queue


def emptied(settings: Settings) -> None:
    bull = target("bullmq", settings)
    bull.purge()
    bull.close()
    Stores.of(settings).retention.purge()


def round_of(seconds: float, concurrency: int, work_ms: float = 0) -> dict[str, dict[str, float]]:
    """The three sides at once, each on a run and a queue of its own; each side's figures."""
    base = isolated(config.load(), "bmqcost")
    go = f"{base.prefix}:go"
    sides = {side: isolated(base, f"bmqcost-{side}") for side in SIDES}
    rate = min(JOBS_A_SECOND, 1.5 * concurrency * 1000 / work_ms) if work_ms else JOBS_A_SECOND
    jobs = (int(rate * seconds) // 2000 + 1) * 2000
    with contextlib.ExitStack() as stack:
        for settings in (*sides.values(), base):
            stack.callback(emptied, settings)
        workers = {}
        for side, settings in sides.items():
            queue = filled(settings, jobs)
            argv = ["node", str(JS), side, queue, go, str(seconds), str(concurrency), str(work_ms)]
            env = {**os.environ, **settings.as_env()}
            worker = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
            workers[side] = stack.enter_context(worker)
            stack.callback(workers[side].kill)
        time.sleep(1.0)  # every worker loaded and connected, waiting for `go`
        Stores.of(base).redis.rpush(go, *["go"] * len(SIDES))
        out = {s: w.communicate(timeout=seconds + 120)[0] for s, w in workers.items()}
        failed = [f"{side} ({w.returncode})" for side, w in workers.items() if w.returncode]
        if failed:
            raise SystemExit(f"workers failed: {', '.join(failed)}")
        return {side: json.loads(text) for side, text in out.items()}


def shown(side: str, figures: dict[str, float]) -> str:
    return f"{side} {figures['rate']:.0f}/s {figures['cpuMs']:.3f} ms CPU a job"


def summary(side: str, pairs: list[tuple[dict[str, float], dict[str, float]]]) -> str:
    """One side against the plain worker of the same rounds: the medians of the ratios."""
    rates = [measured["rate"] / plain["rate"] for measured, plain in pairs]
    cpu = statistics.median(measured["cpuMs"] / plain["cpuMs"] for measured, plain in pairs)
    rate = statistics.median(rates)
    each = ", ".join(f"{r:.3f}" for r in rates)
    return (f"{side}: throughput ratio {rate:.3f} (cost {100 * (1 - rate):.1f} %), CPU a job "
            f"ratio {cpu:.3f}; throughput ratios {each}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=positive_int, default=7)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--concurrency", type=positive_int, default=5)
    parser.add_argument("--work-ms", type=float, default=0.0, help="each job waits this long")
    args = parser.parse_args()
    rounds = []
    for n in range(args.rounds):
        rounds.append(round_of(args.seconds, args.concurrency, args.work_ms))
        print(f"round {n + 1}: " + ", ".join(shown(s, rounds[-1][s]) for s in SIDES), flush=True)
    for side in SIDES[1:]:
        print(summary(side, [(found[side], found["plain"]) for found in rounds]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
