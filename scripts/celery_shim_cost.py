"""What lab's shim costs a Celery worker: its throughput with and without the shim, interleaved.

    .venv/bin/python scripts/celery_shim_cost.py [--pairs 5] [--jobs 5000] [--concurrency 4]
                                                 [--together]

Each trial queues `--jobs` tasks that do nothing (the worst case for the shim: nothing else
takes time), each with a lab job id of a run of its own and lab's headers, starts one Celery
worker as lab starts it (`--pool threads`), with or without `celery_shim.install(app)`, and
times the worker from its first task's start to its last task's end. The two kinds of trial
alternate, which goes first alternating too, so a slow minute of a shared machine falls on both
sides of a pair; with `--together` a pair's two workers run at the same time instead, each in a
namespace of its own, so whatever else the machine does slows both alike. Prints each pair's
tasks per second and CPU time a task, the medians of the paired ratios, and what the shim's
hooks cost alone.

Runs on the shared Redis and RabbitMQ (`LAB_REDIS_URL`, `LAB_AMQP_URL`) in a namespace of its
own, deleted after; no Elasticsearch is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab import config  # noqa: E402
from lab.targets import celery_shim  # noqa: E402
from lab.targets.celery import Celery, conf, headers  # noqa: E402
from lab.targets.shim import shim  # noqa: E402

TASK = "labcost.noop"


def worker_app() -> Any:
    """The app a trial's worker loads (`celery -A celery_shim_cost`, as `app`): one task doing
    nothing but count, the shim installed when `LAB_COST_SHIM=1`."""
    from celery import Celery as App

    settings = config.load()
    app = App("labcost", set_as_current=True)
    app.conf.update(conf(settings, Celery(settings).queue))
    if os.environ.get("LAB_COST_SHIM") == "1":
        celery_shim.install(app)
    wanted, out = int(os.environ["LAB_COST_JOBS"]), Path(os.environ["LAB_COST_OUT"])
    seen = {"n": 0, "first": 0.0, "cpu": 0.0}
    lock = threading.Lock()

    @app.task(name=TASK)
    def noop(_message: str = "") -> None:
        with lock:
            seen["n"] += 1
            if seen["n"] == 1:
                seen["first"], seen["cpu"] = time.perf_counter(), time.process_time()
            if seen["n"] == wanted:  # the process's CPU: every thread's, the shim's included
                out.write_text(json.dumps({"seconds": time.perf_counter() - seen["first"],
                                           "cpu": time.process_time() - seen["cpu"]}))  # fmt: skip

    return app


def queued(settings: Any, jobs: int) -> str:
    """`jobs` tasks waiting in the namespace's queue, of a run of their own; the run's id."""
    from celery import Celery as App

    from lab.runtime.messages import run_job
    from lab.runtime.stores import Stores

    runs = Stores.of(settings).runs
    if runs.active_id():
        runs.stop()
    run_id = runs.start(jobs, 60_000, target="celery")
    queue = Celery(settings).queue
    loader = App("labcost-loader", set_as_current=False)
    loader.conf.update({**conf(settings, queue), "broker_transport_options": {}})
    with loader.producer_or_acquire() as producer:
        for seq in range(jobs):
            job = run_job(run_id, seq, "noop")
            loader.send_task(TASK, task_id=job.jobId, headers=headers(job), producer=producer,
                             queue=queue)  # fmt: skip
    return str(run_id)


def trials(sides: dict[bool, Any], jobs: int, concurrency: int, folder: Path) -> dict[bool, Any]:
    """One worker per side (True: with the shim; each side in its namespace) over `jobs` queued
    tasks, all running at once: each side's tasks per second and CPU µs a task."""
    outs = {side: folder / f"{queued(settings, jobs)}.json" for side, settings in sides.items()}
    workers = {}
    for side, settings in sides.items():
        env = {**os.environ, **settings.as_env(), "LAB_COST_SHIM": "1" if side else "0",
               "LAB_COST_JOBS": str(jobs), "LAB_COST_OUT": str(outs[side]),
               "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'scripts'}"}  # fmt: skip
        argv = Celery(settings).worker_argv(sys.executable, concurrency)
        argv[argv.index("lab.targets.celery_app")] = "celery_shim_cost"
        quiet = subprocess.DEVNULL
        workers[side] = subprocess.Popen(argv, env=env, cwd=ROOT / "scripts", stdout=quiet,
                                         stderr=quiet)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not all(out.exists() for out in outs.values()):
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers.values()):
                raise SystemExit(f"a worker did not finish its {jobs} tasks")
            time.sleep(0.1)
        time.sleep(0.05)  # each file is written in one call; let it land whole
        found = {side: json.loads(out.read_text()) for side, out in outs.items()}
        return {side: {"rate": jobs / f["seconds"], "cpu_us": f["cpu"] / jobs * 1e6}
                for side, f in found.items()}  # fmt: skip
    finally:
        for worker in workers.values():
            worker.kill()  # measured: nothing of the worker is needed any more
            worker.wait(30)


def hooks_us(settings: Any, jobs: int = 50_000) -> float:
    """CPU µs a task that the shim's hooks take, alone, in this process: `prerun` and
    `postrun` as Celery calls them, and the thread that counts the ends (it runs meanwhile)."""
    import types

    os.environ.update(settings.as_env())  # the shim reads the settings from the environment
    request = types.SimpleNamespace(lab_created_ms=time.time() * 1000, lab_kind="noop",
                                    retries=0, eta=None)  # fmt: skip
    task = types.SimpleNamespace(request=request)
    began = time.process_time()
    for seq in range(jobs):
        celery_shim.prerun(task_id=f"hooks-{seq}", task=task)
        celery_shim.postrun(task_id=f"hooks-{seq}", state="SUCCESS")
    return (time.process_time() - began) / jobs * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--together", action="store_true",
                        help="run each pair's two workers at the same time (a busy machine "
                        "then slows both alike)")  # fmt: skip
    args = parser.parse_args()
    from lab.ops.reset import isolated
    from lab.runtime import broker
    from lab.runtime.stores import Stores

    spaces = {True: isolated(config.load(), "labcost"), False: isolated(config.load(), "labcost")}
    ratios, cpu = [], []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for pair in range(args.pairs):
                if args.together:
                    rate = trials(spaces, args.jobs, args.concurrency, Path(folder))
                else:  # one after the other, which goes first alternating
                    order = (True, False) if pair % 2 == 0 else (False, True)
                    rate = {side: trials({side: spaces[side]}, args.jobs, args.concurrency,
                                         Path(folder))[side] for side in order}  # fmt: skip
                on, off = rate[True], rate[False]
                ratios.append(on["rate"] / off["rate"])
                cpu.append(on["cpu_us"] / off["cpu_us"])
                print(f"pair {pair + 1}: with the shim {on['rate']:,.0f} tasks/s "
                      f"({on['cpu_us']:,.0f} µs CPU a task), without {off['rate']:,.0f} tasks/s "
                      f"({off['cpu_us']:,.0f} µs), throughput ratio {ratios[-1]:.3f}",
                      flush=True)  # fmt: skip
        hooks = hooks_us(spaces[True])
    finally:
        shim().close()
        for settings in spaces.values():
            Stores.of(settings).retention.purge()
            connection = broker.connect(settings.amqp_url, "labcost")
            connection.channel().queue_delete(Celery(settings).queue)
            connection.close()
    median = statistics.median(ratios)
    print(f"median throughput ratio {median:.3f}: the shim costs {(1 - median) * 100:.1f} % of "
          f"throughput; median CPU a task, with over without: {statistics.median(cpu):.3f} "
          f"({args.pairs} pairs{', together' if args.together else ''}, {args.jobs} tasks each, "
          f"{args.concurrency} threads); the hooks "
          f"alone: {hooks:.1f} µs CPU a task")  # fmt: skip
    return 0


if os.environ.get("LAB_COST_JOBS"):  # loaded by a trial's worker
    app = worker_app()

if __name__ == "__main__":
    sys.exit(main())
