"""`lab bench throughput|rate|agents|panel|status`: measurements that print figures, one
subcommand each with only its own flags. Results are JSON (and for throughput a Markdown table);
correctness is the tests' job, these say how fast."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.cli.arguments import positive_float, positive_int, positive_ints
from lab.cli.terminal import console, say_error
from lab.config import Settings
from lab.ops import stack


def register(sub: Any) -> None:
    bench = sub.add_parser("bench", help="measure throughput, release accuracy, live views")
    kinds = bench.add_subparsers(dest="bench", required=True, metavar="MEASURE")

    t = kinds.add_parser(
        "throughput", help="release, drain and end to end through the real processes, beside "
        "the path's ceilings (and Celery and Dramatiq with --peers)",
    )  # fmt: skip
    t.add_argument("--jobs", type=positive_int, default=20_000, help="jobs per repetition")
    t.add_argument("--workers", type=positive_int, default=1, help="lab workers draining")
    t.add_argument("--prefetch", type=positive_int, help="LAB_PREFETCH for the workers")
    t.add_argument("--batch", type=positive_int, help="LAB_BATCH for the workers")
    t.add_argument("--reps", type=positive_int, default=3, help="repetitions of each tool")
    t.add_argument("--out", default="loadtests/results", help="where the JSON and table go")
    t.add_argument(
        "--peers", action="store_true",
        help="also drain the same job through Celery and Dramatiq ('.[bench]')",
    )  # fmt: skip
    t.add_argument(
        "--peer-jobs", type=positive_int, help="jobs per peer configuration (default: ≤ 10,000)"
    )
    t.set_defaults(handler=cmd_throughput)

    r = kinds.add_parser("rate", help="release accuracy: the scheduler alone at Y jobs/min")
    r.add_argument("--y", type=positive_float, default=120_000.0, help="jobs per minute")
    r.add_argument("--seconds", type=positive_float, default=60.0, help="how long to release")
    r.set_defaults(handler=cmd_rate)

    a = kinds.add_parser(
        "agents", help="live single jobs: N agent jobs at once, SSE step latency, worker RSS"
    )
    a.add_argument("--jobs", type=positive_int, default=5, help="agent jobs at once")
    a.add_argument("--seconds", type=positive_float, default=24.0, help="each job's duration")
    a.add_argument("--step", type=positive_float, default=1.0, help="seconds between steps")
    a.set_defaults(handler=cmd_agents)

    p = kinds.add_parser("panel", help="how far the notebook panel lags the pipeline, job by job")
    p.add_argument("--jobs", type=positive_int, default=20_000, help="jobs in the run")
    p.add_argument("--y", type=positive_float, default=120_000.0, help="jobs per minute")
    p.set_defaults(handler=cmd_panel)

    s = kinds.add_parser(
        "status", help="GET /status under fixed offered loads during a fast run, and the "
        "pipeline's drain with and without them",
    )  # fmt: skip
    s.add_argument(
        "--loads", type=positive_ints, default=[1000, 2000], help="offered requests/s per step"
    )
    s.add_argument("--seconds", type=positive_float, default=20.0, help="per step")
    s.add_argument("--y", type=positive_float, default=120_000.0, help="the run's jobs per minute")
    s.add_argument(
        "--api-processes", type=positive_int, default=1, help="API processes sharing the port"
    )
    s.add_argument(
        "--locust-processes", type=positive_int, default=2, help="Locust processes offering load"
    )
    s.add_argument(
        "--in-step", action="store_true", help="every Locust user on one beat: a burst a period"
    )
    s.set_defaults(handler=cmd_status)


def home(settings: Settings) -> Path:
    return settings.home_path / "bench"


Handler = Callable[[argparse.Namespace, Settings], int]


def measured(handler: Handler) -> Handler:
    """A benchmark that cannot run as asked says why in one line (its module loads only when a
    benchmark runs, not with every `lab` command)."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lab.measure.bench import BenchError

        try:
            return handler(args, settings)
        except BenchError as exc:
            return say_error(str(exc), args.verbose)

    return run


@measured
def cmd_throughput(args: argparse.Namespace, settings: Settings) -> int:
    from lab.measure.bench import markdown, run_bench

    report, path = run_bench(
        settings, args.jobs, args.workers, settings.prefetch, settings.batch, args.reps,
        Path(args.out), args.peers, args.peer_jobs,
    )  # fmt: skip
    print(markdown(report))
    console.print(f"lab: results in {path} and {path.with_suffix('.md')}")
    return 0


@measured
def cmd_rate(args: argparse.Namespace, settings: Settings) -> int:
    from lab.measure.bench import rate_check

    stack.up(settings)
    print(json.dumps(rate_check(settings, args.y, args.seconds, home(settings)), indent=2))
    return 0


@measured
def cmd_agents(args: argparse.Namespace, settings: Settings) -> int:
    from lab.measure.bench_jobs import agent_stream_check

    stack.up(settings)
    result = agent_stream_check(settings, args.jobs, args.seconds, args.step, home(settings))
    print(json.dumps(result, indent=2))
    return 0 if result["completed"] == args.jobs else 1


@measured
def cmd_panel(args: argparse.Namespace, settings: Settings) -> int:
    from lab.measure.bench_panel import panel_lag_check

    stack.up(settings)
    result = panel_lag_check(settings, args.jobs, args.y, home(settings))
    print(json.dumps(result, indent=2))
    return 0 if result["processed"] == args.jobs else 1


@measured
def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from lab.measure.bench_status import status_check

    result = status_check(
        settings, args.loads, args.seconds, args.y, home(settings), args.api_processes,
        args.locust_processes, args.in_step,
    )  # fmt: skip
    print(json.dumps(result, indent=2))
    return 0
