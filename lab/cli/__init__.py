"""`lab` on the command line: every process and every action, one subcommand each."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lab import config
from lab.cli import jobs as cli_jobs
from lab.cli import reports as cli_reports
from lab.client import ApiError, LabClient
from lab.config import ConfigError, Settings
from lab.measure.bench import BenchError
from lab.ops import logs, stack
from lab.ops.supervisor import Supervisor, SupervisorError

console = Console(stderr=True)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number greater than 0")
    return value


def services_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in stack.SERVICES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown service(s) {', '.join(unknown) or text!r}; "
            f"choose from {', '.join(stack.SERVICES)}"
        )
    return names


def optional_services(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in stack.OPTIONAL]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown service(s) {', '.join(unknown) or text!r}; choose from "
            f"{', '.join(stack.OPTIONAL)}"
        )
    return names


WORKER_FLAGS = ("prefetch", "batch", "linger_ms", "concurrency")


def _worker_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prefetch", type=positive_int, help="deliveries in hand (LAB_PREFETCH)")
    p.add_argument(
        "--batch",
        type=positive_int,
        help="deliveries per Elasticsearch bulk request; 1 = per message (LAB_BATCH)",
    )
    p.add_argument(
        "--linger-ms",
        type=positive_int,
        help="how long to wait for a batch to fill (LAB_LINGER_MS)",
    )
    p.add_argument(
        "--concurrency",
        type=positive_int,
        help="jobs of one-by-one kinds (e.g. agent) run at once per worker (LAB_CONCURRENCY)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lab", description="Experiment harness and load lab for a queue pipeline."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-file", type=Path, help="log to this file, rotated past LAB_LOG_MAX_BYTES"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    api = sub.add_parser("api", help="serve the HTTP API (run control, status, events)")
    api.add_argument(
        "--processes", type=positive_int, help="API processes sharing the port (LAB_API_PROCESSES)"
    )
    sub.add_parser("scheduler", help="release the active run's jobs at Y per minute")
    worker = sub.add_parser("worker", help="consume jobs, write documents, count, ack")
    _worker_flags(worker)

    up = sub.add_parser("up", help="supervise api + scheduler + N workers in the foreground")
    up.add_argument("--workers", type=positive_int, default=1)
    up.add_argument("--api-processes", type=positive_int, metavar="N", help="LAB_API_PROCESSES")
    up.add_argument("--no-restart", action="store_true", help="do not restart children that exit")
    _worker_flags(up)

    st = sub.add_parser("stack", help="make Redis, RabbitMQ and Elasticsearch reachable")
    st.add_argument("action", choices=["up", "down", "status"])
    st.add_argument(
        "--only",
        type=services_list,
        default=stack.SERVICES,
        help="comma-separated subset of: " + ", ".join(stack.SERVICES),
    )
    st.add_argument(
        "--rabbitmq-nodes",
        type=positive_int,
        default=1,
        metavar="N",
        help="start RabbitMQ as a local cluster of N nodes (prints the LAB_AMQP_URL to use)",
    )
    st.add_argument(
        "--with",
        dest="extra",
        type=optional_services,
        default=(),
        help="also start: " + ", ".join(stack.OPTIONAL) + " (scrapes the lab API's /metrics)",
    )

    run = sub.add_parser("run", help="start a run through the API")
    run.add_argument("--x", type=positive_int, required=True, help="number of jobs")
    run.add_argument("--y", type=positive_float, required=True, help="jobs per minute")
    run.add_argument("--wait", action="store_true", help="show progress until the run is done")

    status = sub.add_parser("status", help="the active (or latest) run")
    status.add_argument("--json", action="store_true")
    sub.add_parser("stop", help="stop releasing the active run")
    runs = sub.add_parser("runs", help="run history")
    runs.add_argument("--limit", type=positive_int, default=20)
    runs.add_argument("--json", action="store_true")

    cli_jobs.add_parser(sub, positive_int)

    lt = sub.add_parser("loadtest", help="Locust headless against the API, with thresholds")
    lt.add_argument("--users", type=positive_int, default=20)
    lt.add_argument("--spawn-rate", type=positive_float, default=10.0)
    lt.add_argument("--duration", type=positive_float, default=30.0, help="seconds")
    lt.add_argument(
        "--scenario",
        choices=["status", "mixed", "rate"],
        default="status",
        help="status: a busy dashboard; mixed: an admin page user; rate: --user-rps per user",
    )
    lt.add_argument("--user-rps", type=positive_float, default=10.0, help="rate scenario")
    lt.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        help="Locust worker processes here (distributed mode: a master and N workers)",
    )
    lt.add_argument(
        "--master",
        action="store_true",
        help="be the master for --processes workers started on other hosts (port 5557)",
    )
    lt.add_argument("--worker", metavar="MASTER_HOST", help="be a worker of the master there")
    lt.add_argument("--p95-ms", type=positive_float, default=200.0, help="fail above this p95")
    lt.add_argument("--p99-ms", type=positive_float, default=None, help="fail above this p99")
    lt.add_argument("--max-fail-ratio", type=float, default=0.0)
    lt.add_argument("--out", default="loadtests/results", help="where Locust's CSV stats go")

    cli_reports.add_parser(sub, positive_int)

    nb = sub.add_parser("notebook", help="open JupyterLab on the notebooks folder")
    nb.add_argument("--ip", default="127.0.0.1", help="address to listen on (loopback by default)")
    nb.add_argument("--port", type=positive_int, default=8888)
    nb.add_argument("--no-browser", action="store_true", help="do not open a browser")

    bench = sub.add_parser("bench", help="measure throughput, latency and the path's ceilings")
    bench.add_argument("--jobs", type=positive_int, default=20_000)
    bench.add_argument("--workers", type=positive_int, default=1)
    bench.add_argument("--prefetch", type=positive_int, default=None)
    bench.add_argument("--batch", type=positive_int, default=None)
    bench.add_argument("--reps", type=positive_int, default=3)
    bench.add_argument("--out", default="loadtests/results", help="where the JSON and table go")
    bench.add_argument(
        "--peers",
        action="store_true",
        help="also drain the same job through Celery and Dramatiq ('.[bench]')",
    )
    bench.add_argument(
        "--rate",
        type=positive_float,
        default=None,
        metavar="Y",
        help="only check release accuracy: the scheduler alone at Y jobs/min",
    )
    bench.add_argument("--rate-seconds", type=positive_float, default=60.0)
    bench.add_argument(
        "--agents",
        type=positive_int,
        default=None,
        metavar="N",
        help="only measure live single jobs: N agent jobs at once, SSE step latency, worker RSS",
    )
    bench.add_argument(
        "--panel",
        action="store_true",
        help="only measure how far the notebook panel lags the pipeline (--jobs, --panel-rate)",
    )
    bench.add_argument("--panel-rate", type=positive_float, default=120_000.0, metavar="Y")
    bench.add_argument(
        "--status",
        action="store_true",
        help="only measure GET /status under fixed offered loads during a fast run, and the "
        "pipeline's drain with and without them (--status-loads, --status-seconds, --status-rate)",
    )
    bench.add_argument(
        "--status-loads", default="1000,2000", help="offered requests/s, each a step"
    )
    bench.add_argument("--status-seconds", type=positive_float, default=20.0)
    bench.add_argument("--status-rate", type=positive_float, default=120_000.0, metavar="Y")
    bench.add_argument("--api-processes", type=positive_int, default=1)
    bench.add_argument("--locust-processes", type=positive_int, default=2)
    bench.add_argument("--agent-seconds", type=positive_float, default=24.0)
    bench.add_argument("--agent-step", type=positive_float, default=1.0)
    bench.add_argument(
        "--peer-jobs",
        type=positive_int,
        default=None,
        help="jobs per peer configuration (default: min(jobs, 10000))",
    )

    demo = sub.add_parser("demo", help="stack up, processes up, one run, verified end to end")
    demo.add_argument("--x", type=positive_int, default=300)
    demo.add_argument("--y", type=positive_float, default=6000)
    demo.add_argument("--workers", type=positive_int, default=2)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    settings = config.load()
    overrides = {k: getattr(args, k) for k in WORKER_FLAGS if getattr(args, k, None) is not None}
    return settings.with_overrides(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        logs.configure(args.verbose, args.log_file, settings.log_max_bytes)
        return COMMANDS[args.command](args, settings) or 0
    except (
        ConfigError,
        ApiError,
        SupervisorError,
        stack.StackError,
        TimeoutError,
        BenchError,
    ) as exc:
        return say_error(str(exc), args.verbose)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug still gets one line; -v shows where
        return say_error(f"unexpected {type(exc).__name__}: {exc}", args.verbose, bug=True)


def say_error(message: str, verbose: bool, bug: bool = False) -> int:
    """One line naming the problem; the traceback only with -v."""
    if verbose:
        console.print_exception()
    hint = " (lab -v … shows where)" if bug and not verbose else ""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    console.print(f"[red]lab: {escape(first)}{hint}[/red]", highlight=False)
    return 1


# --- processes ----------------------------------------------------------------------------------
def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    """uvicorn on uvloop and httptools; with `--processes N`, N processes share the port (each
    with its own status snapshot and event hub), started from the same settings."""
    import uvicorn

    from lab.api.app import create_app

    parsed = urlparse(settings.api_url)
    options: dict[str, Any] = {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 8000,
        "log_level": "warning",
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
        "timeout_graceful_shutdown": 5,
    }
    processes = args.processes or settings.api_processes
    if processes > 1:
        os.environ.update(settings.as_env())
        # Request latency is summed over the processes (prometheus_client's multiprocess mode).
        shared = settings.home_path / "metrics" / f"api-{os.getpid()}"
        shutil.rmtree(shared, ignore_errors=True)
        shared.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
        uvicorn.run("lab.api.app:create_app", factory=True, workers=processes, **options)
    else:
        uvicorn.run(create_app(settings), **options)
    return 0


def lower_priority(settings: Settings) -> None:
    """Workers yield the CPU to the API when the machine is busy (a niceness increase needs no
    privilege, so this works under compose and Kubernetes too). The scheduler keeps its
    priority: it is the run's clock, and GCRA never lets a stalled scheduler catch up."""
    if settings.pipeline_nice:
        os.nice(settings.pipeline_nice)


def cmd_scheduler(_args: argparse.Namespace, settings: Settings) -> int:
    from lab.runtime.scheduler import Scheduler

    Scheduler(settings).run()
    return 0


def cmd_worker(_args: argparse.Namespace, settings: Settings) -> int:
    from lab.runtime.worker import Worker

    if settings.prefetch < settings.batch:
        console.print(
            f"lab: prefetch {settings.prefetch} is below batch {settings.batch}; "
            f"batches will hold at most {settings.prefetch} deliveries"
        )
    lower_priority(settings)
    Worker(settings).run()
    return 0


def _worker_args(args: argparse.Namespace) -> list[str]:
    out = []
    for flag in WORKER_FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            out += [f"--{flag.replace('_', '-')}", str(value)]
    return out


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    supervisor = Supervisor(settings)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        api_args = ["--processes", str(args.api_processes)] if args.api_processes else []
        supervisor.up(workers=args.workers, worker_args=_worker_args(args), api_args=api_args)
        console.print(
            f"lab: api at {settings.api_url}, scheduler, {args.workers} worker(s); "
            f"logs in {supervisor.log_dir}. Ctrl-C stops them all."
        )
        supervisor.watch(restart=not args.no_restart, until=lambda: bool(stopping))
    except KeyboardInterrupt:
        pass
    finally:
        codes = supervisor.down()
        console.print("lab: stopped " + ", ".join(f"{n} ({c})" for n, c in codes.items()))
    return 0


def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "up":
        only = (*args.only, *args.extra)
        say = lambda line: console.print(line, highlight=False)  # noqa: E731
        if args.rabbitmq_nodes > 1 and "rabbitmq" in only:
            cluster = stack.up_cluster(settings, args.rabbitmq_nodes, say)
            settings = settings.with_overrides(amqp_url=cluster.url)
            console.print(f"LAB_AMQP_URL={cluster.url}", highlight=False, soft_wrap=True)
        stack.up(settings, only, say=say)
        if "prometheus" in args.extra:
            console.print(
                f"prometheus: {settings.prometheus_url} (scraping "
                f"{config.safe_url(settings.api_url)}/metrics)",
                highlight=False,
            )
    elif args.action == "down":
        for service, how in stack.down(settings).items():
            console.print(f"{service:14} {how}")
    else:
        healthy = True
        for service, info in stack.status(settings).items():
            healthy &= bool(info["healthy"])
            mark = "healthy" if info["healthy"] else "DOWN"
            owner = " (started by lab)" if info["managedByLab"] else ""
            console.print(f"{service:14} {mark:8} {config.safe_url(str(info['url']))}{owner}")
        return 0 if healthy else 1
    return 0


# --- run control --------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    client = LabClient.of(settings)
    started = client.run(args.x, args.y)
    run_id = started["runId"]
    console.print(f"lab: run {run_id} started: {args.x} jobs at {args.y:g}/min")
    if not args.wait:
        print(run_id)
        return 0
    final = watch_run(client, run_id)
    print(json.dumps(final, indent=2))
    return 0 if final["state"] == "completed" and final["failed"] == 0 else 1


def watch_run(client: LabClient, run_id: str, timeout_s: float | None = None) -> dict[str, Any]:
    """A terminal progress bar until the run is settled; returns the final run record."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[extra]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        run = client.get_run(run_id)
        released = progress.add_task("released ", total=run["xTotal"], extra="")
        processed = progress.add_task("processed", total=run["xTotal"], extra="")
        while True:
            run = client.get_run(run_id)
            progress.update(released, completed=run["enqueued"])
            rate = run["processed"] / run["durationSeconds"] if run["durationSeconds"] else 0
            progress.update(
                processed,
                completed=run["processed"],
                extra=f"failed {run['failed']}  {rate:,.0f} jobs/s",
            )
            settled = run["state"] == "completed" or (
                run["state"] == "stopped" and run["processed"] + run["failed"] >= run["enqueued"]
            )
            if settled:
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"run {run_id} not done after {timeout_s:.0f}s: "
                    f"{run['processed']} of {run['xTotal']} processed"
                )
            time.sleep(0.25)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    status = LabClient.of(settings).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    table = Table(title=f"run {status['runId'] or '—'} ({status['state']})")
    for column in ("xTotal", "yMinutes", "enqueued", "processed", "failed", "running"):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(status[c])
            for c in ("xTotal", "yMinutes", "enqueued", "processed", "failed", "running")
        )
    )
    Console().print(table)
    rates = status["rates"]
    print(
        f"processed/min (last {rates['windowSeconds']}s): {rates['processedPerMinute']:,.0f}   "
        f"released/min: {rates['enqueuedPerMinute']:,.0f}   workers: {len(status['workers'])}"
    )
    for w in status["workers"]:
        print(
            f"  {w['id']}  pid {w['pid']}  processed {w['processed']}  "
            f"heartbeat {w['heartbeatAgeSeconds']:.1f}s ago"
        )
    return 0


def cmd_stop(_args: argparse.Namespace, settings: Settings) -> int:
    answer = LabClient.of(settings).stop()
    console.print(f"lab: run {answer['stopped']} stopped releasing at {answer['enqueued']} jobs")
    return 0


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    runs = LabClient.of(settings).runs(args.limit)
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    table = Table(title="runs")
    for column in ("runId", "state", "xTotal", "yMinutes", "processed", "failed", "seconds"):
        table.add_column(column)
    for r in runs:
        table.add_row(
            r["runId"],
            r["state"],
            str(r["xTotal"]),
            f"{r['yMinutes']:g}",
            str(r["processed"]),
            str(r["failed"]),
            f"{r['durationSeconds']:.1f}",
        )
    Console().print(table)
    return 0


def cmd_loadtest(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from lab.measure.loadtest import run_locust

    if not 0 <= args.max_fail_ratio <= 1:
        console.print("[red]lab: --max-fail-ratio must be from 0 to 1[/red]")
        return 2
    if args.worker:
        from lab.measure.loadtest import run_worker

        return run_worker(args.worker, args.scenario, settings.api_token)
    LabClient.of(settings).status()  # a clear error now beats 100 % failures later
    result = run_locust(
        settings.api_url,
        args.users,
        args.spawn_rate,
        args.duration,
        Path(args.out),
        scenario=args.scenario,
        p95_ms=args.p95_ms,
        p99_ms=args.p99_ms or 0.0,
        max_fail_ratio=args.max_fail_ratio,
        processes=args.processes,
        user_rps=args.user_rps,
        token=settings.api_token,
        expect_remote_workers=args.processes if args.master else 0,
    )
    where = f", {args.processes} processes" if args.processes > 1 else ""
    table = Table(title=f"locust {args.scenario}, {args.users} users{where}, {args.duration:g} s")
    for column in ("endpoint", "requests", "failures", "rps", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column)
    rows = [*result.per_endpoint]
    rows.append({"name": "all", "requests": result.requests, "failures": result.failures,
                 "rps": result.rps, "p50Ms": result.p50_ms, "p95Ms": result.p95_ms,
                 "p99Ms": result.p99_ms})  # fmt: skip
    for r in rows:
        table.add_row(
            r["name"], f"{r['requests']:,}", str(r["failures"]), f"{r['rps']:,.0f}",
            f"{r['p50Ms']:.0f}", f"{r['p95Ms']:.0f}", f"{r['p99Ms']:.0f}",
        )  # fmt: skip
    Console().print(table)
    verdict = "passed" if result.passed else "FAILED"
    console.print(f"lab: thresholds {verdict} (p95 < {args.p95_ms:g} ms)", highlight=False)
    if not result.passed and result.requests == 0:
        console.print(result.output[-2000:], highlight=False)
    return 0 if result.passed else 1


def cmd_notebook(args: argparse.Namespace, settings: Settings) -> int:
    import subprocess

    from lab.views.notebook import kernel_env, project_root

    folder = project_root() / "notebooks"
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={folder}",
        f"--ServerApp.ip={args.ip}",
        f"--ServerApp.port={args.port}",
    ]
    if args.no_browser:
        argv.append("--no-browser")
    if os.geteuid() == 0:
        argv.append("--allow-root")  # e.g. in a container
    console.print(f"lab: JupyterLab on {folder}; open control.ipynb first", highlight=False)
    env = kernel_env()
    if settings.notebook_token:
        env["JUPYTER_TOKEN"] = settings.notebook_token
    return subprocess.call(argv, env=env)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from lab.measure.bench import markdown, rate_check, run_bench

    if args.panel:
        from lab.measure.bench_panel import panel_lag_check

        stack.up(settings)
        result = panel_lag_check(settings, args.jobs, args.panel_rate, settings.home_path / "bench")
        print(json.dumps(result, indent=2))
        return 0 if result["processed"] == args.jobs else 1
    if args.status:
        from lab.measure.bench_status import status_check

        try:
            loads = [int(v) for v in args.status_loads.split(",")]
        except ValueError:
            raise BenchError(
                f"--status-loads {args.status_loads!r}: whole numbers, comma-separated"
            ) from None
        result = status_check(
            settings,
            loads,
            args.status_seconds,
            args.status_rate,
            settings.home_path / "bench",
            args.api_processes,
            args.locust_processes,
        )
        print(json.dumps(result, indent=2))
        return 0
    if args.agents is not None:
        from lab.measure.bench_jobs import agent_stream_check

        stack.up(settings)
        result = agent_stream_check(
            settings, args.agents, args.agent_seconds, args.agent_step, settings.home_path / "bench"
        )
        print(json.dumps(result, indent=2))
        return 0 if result["completed"] == args.agents else 1
    if args.rate is not None:
        stack.up(settings)
        result = rate_check(settings, args.rate, args.rate_seconds, settings.home_path / "bench")
        print(json.dumps(result, indent=2))
        return 0

    report, path = run_bench(
        settings,
        args.jobs,
        args.workers,
        settings.prefetch,
        settings.batch,
        args.reps,
        Path(args.out),
        args.peers,
        args.peer_jobs,
    )
    print(markdown(report))
    console.print(f"lab: results in {path} and {path.with_suffix('.md')}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from lab.cli.demo import demo

    return demo(settings, x=args.x, y=args.y, workers=args.workers)


COMMANDS = {
    "api": cmd_api,
    "scheduler": cmd_scheduler,
    "worker": cmd_worker,
    "up": cmd_up,
    "stack": cmd_stack,
    "run": cmd_run,
    "status": cmd_status,
    "stop": cmd_stop,
    "runs": cmd_runs,
    "demo": cmd_demo,
    "bench": cmd_bench,
    "job": cli_jobs.cmd_job,
    "notebook": cmd_notebook,
    "loadtest": cmd_loadtest,
    "report": cli_reports.cmd_report,
}


if __name__ == "__main__":
    sys.exit(main())
