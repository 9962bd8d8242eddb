"""What lab's shim costs a Dramatiq worker: its throughput with and without the shim, in pairs
whose order alternates, so a slow minute of a shared machine falls on both sides of a pair.

    .venv/bin/python scripts/dramatiq_shim_cost.py [--pairs 6] [--jobs 4000] [--threads 8]
                                                   [--service-ms 0]

Each side fills the queue with `--jobs` messages of a user's actor as lab submits them (lab job
ids, lab's options), then starts one worker process (Dramatiq's `Worker`, `--threads` threads)
on it, with `install(broker)` or without, and times it from the first message started to the
last one acked. The actor sleeps `--service-ms` (0: it does nothing, the shim's worst case).
Everything lives in a namespace of its own on the configured Redis and RabbitMQ, deleted after.
Prints each pair's throughput and the median of the paired ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab import config  # noqa: E402
from lab.cli.arguments import positive_int  # noqa: E402
from lab.ops.reset import isolated  # noqa: E402
from lab.runtime.messages import run_job  # noqa: E402
from lab.runtime.stores import Stores  # noqa: E402
from lab.targets import target  # noqa: E402

ACTOR = "shim_cost_task"


def worker(jobs: int, threads: int, service_ms: float, shimmed: bool) -> None:
    """One side: consume `jobs` messages, print {"seconds": first start → last ack}."""
    import dramatiq
    from dramatiq import Middleware

    from lab.targets.dramatiq import make_broker
    from lab.targets.dramatiq_shim import install

    settings = config.load()
    queue = f"{settings.queue}.dramatiq"
    broker = make_broker(settings, "lab-shim-cost")
    if shimmed:
        install(broker)
    times: list[float] = []
    done = threading.Event()

    class Clock(Middleware):  # on both sides: the first start and the last ack
        def before_process_message(self, broker: Any, message: Any) -> None:
            if not times:
                times.append(time.perf_counter())

        def after_ack(self, broker: Any, message: Any) -> None:
            times.append(time.perf_counter())
            if len(times) > jobs:
                done.set()

    broker.add_middleware(Clock())
    dramatiq.set_broker(broker)

    @dramatiq.actor(actor_name=ACTOR, queue_name=queue, max_retries=0)
    def task(*_args: Any) -> None:
        if service_ms:
            time.sleep(service_ms / 1000)

    running = dramatiq.Worker(broker, queues={queue}, worker_threads=threads)
    running.start()
    done.wait()
    print(json.dumps({"seconds": times[-1] - times[0]}), flush=True)
    running.stop(timeout=10_000)
    broker.close()


def side(settings: config.Settings, args: argparse.Namespace, shimmed: bool) -> float:
    """Fill the queue, run one worker on it; its jobs per second."""
    stores = Stores.of(settings)
    payload = {"task": ACTOR, "args": ["{seq}"]}
    run_id = stores.runs.start(args.jobs, 6000, kind="task", payload=payload, target="dramatiq")
    submitter = target("dramatiq", settings)
    try:
        outcomes = submitter.submit([run_job(run_id, s, "task", payload) for s in range(args.jobs)])
    finally:
        submitter.close()
    assert all(o.status == "ok" for o in outcomes), outcomes[-1]
    argv = [sys.executable, __file__, "--worker", "--jobs", str(args.jobs), "--threads",
            str(args.threads), "--service-ms", str(args.service_ms)]  # fmt: skip
    argv += ["--shim"] if shimmed else []
    env = {**os.environ, **settings.as_env()}
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=True)
    seconds = json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
    return args.jobs / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=positive_int, default=6)
    parser.add_argument("--jobs", type=positive_int, default=4000)
    parser.add_argument("--threads", type=positive_int, default=8)
    parser.add_argument("--service-ms", type=float, default=0.0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shim", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.jobs, args.threads, args.service_ms, args.shim)
        return 0
    ratios = []
    for pair in range(args.pairs):
        figures = {}
        for shimmed in (pair % 2 == 0, pair % 2 == 1):  # who goes first alternates
            settings = isolated(config.load(), "shimcost")
            try:
                figures[shimmed] = side(settings, args, shimmed)
            finally:
                Stores.of(settings).retention.purge()  # every key of the namespace
                delete_queues(settings)
        ratio = figures[True] / figures[False]
        ratios.append(ratio)
        print(f"pair {pair + 1}: without {figures[False]:,.0f}/s, with the shim "
              f"{figures[True]:,.0f}/s, ratio {ratio:.3f}", flush=True)  # fmt: skip
    median = statistics.median(ratios)
    print(f"median ratio {median:.3f}: the shim costs {100 * (1 - median):.1f} % of throughput "
          f"({args.jobs} jobs, {args.threads} threads, {args.service_ms:g} ms each)")  # fmt: skip
    return 0


def delete_queues(settings: config.Settings) -> None:
    from lab.runtime import broker

    connection = broker.connect(settings.amqp_url, "lab-shim-cost-cleanup")
    try:
        channel = connection.channel()
        for suffix in ("", ".DQ", ".XQ"):
            channel.queue_delete(f"{settings.queue}.dramatiq{suffix}")
    finally:
        connection.close()


if __name__ == "__main__":
    raise SystemExit(main())
