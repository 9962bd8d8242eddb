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

from lab.cli import grammar
from lab.cli.arguments import positive_float, positive_int, positive_ints
from lab.cli.terminal import note, say, say_error
from lab.config import Settings
from lab.ops import stack

DEFAULT_PEERS = ("celery", "dramatiq")  # what `--peers` alone runs beside lab


def y_flag(parser: argparse.ArgumentParser, help: str = "jobs per minute") -> None:
    """`--y`, as fast by default (2,000 jobs a second) as every bench that releases a run
    needs: the bench then measures the pipeline, not the rate it was given."""
    parser.add_argument("--y", type=positive_float, default=120_000.0, help=help)


def register(sub: Any) -> None:
    kinds = grammar.noun(
        sub, "bench", "measure throughput, release accuracy, live views", "bench", "MEASURE"
    )

    t = kinds.add_parser(
        "throughput", help="release, drain and end to end through the real processes, beside "
        "the path's ceilings (and other frameworks' workers doing the same with --peers)",
    )  # fmt: skip
    t.add_argument("--jobs", type=positive_int, default=20_000, help="jobs per repetition")
    t.add_argument("--workers", type=positive_int, default=1, help="lab workers draining")
    t.add_argument("--prefetch", type=positive_int, help="LAB_PREFETCH for the workers")
    t.add_argument("--batch", type=positive_int, help="LAB_BATCH for the workers")
    t.add_argument(
        "--concurrency", type=positive_int, help="job threads of each worker, lab's and the "
        "peers' (LAB_CONCURRENCY)",
    )  # fmt: skip
    t.add_argument("--reps", type=positive_int, default=3, help="repetitions of each target")
    t.add_argument("--out", default="loadtests/results", help="where the JSON and table go")
    t.add_argument(
        "--peers", nargs="?", const=",".join(DEFAULT_PEERS), metavar="TARGET,…",
        help="also run the same jobs through these targets' workers, as one experiment over "
        f"targets (alone: {','.join(DEFAULT_PEERS)}; any of lab target list; '.[targets]')",
    )  # fmt: skip
    t.set_defaults(handler=cmd_throughput)

    r = kinds.add_parser("rate", help="release accuracy: the scheduler alone at Y jobs/min")
    y_flag(r)
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
    y_flag(p)
    p.set_defaults(handler=cmd_panel)

    s = kinds.add_parser(
        "status", help="GET /status under fixed offered loads during a fast run, and the "
        "pipeline's drain with and without them",
    )  # fmt: skip
    s.add_argument(
        "--loads", type=positive_ints, default=[1000, 2000], help="offered requests/s per step"
    )
    s.add_argument("--seconds", type=positive_float, default=20.0, help="per step")
    y_flag(s, "the run's jobs per minute")
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
    from lab.experiment import peers
    from lab.experiment.throughput import run_bench
    from lab.measure.bench_table import markdown

    others = peers.names(args.peers) if args.peers is not None else ()
    report, path = run_bench(
        settings, args.jobs, args.workers, settings.prefetch, settings.batch, args.reps,
        Path(args.out), others, note if others else lambda _line: None,
    )  # fmt: skip
    print(markdown(report))
    say("lab: results in {} and {}", path, path.with_suffix(".md"))
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
