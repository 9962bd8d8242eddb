"""`lab capacity --out DIR …` (= `lab capacity run`): the highest constant rate the pipeline
sustains while its objectives hold, as an interval, per configuration (workers, concurrency,
fault presets), resumable; `--dry-run` shows the searches and their worst-case time.
`lab capacity report DIR`: the knee curves, the scalability fit and the verdict as HTML.

An experiment file with `procedure = "capacity"` runs the same searches (`lab experiment run`).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from lab import targets
from lab.cli import grammar
from lab.cli.arguments import (
    kind_name,
    non_negative_int,
    positive_float,
    positive_int,
    positive_ints,
)
from lab.cli.runs import payload_arg, slo_arg
from lab.cli.terminal import DataTable, bad_input, note, out, say
from lab.config import Settings

# The spec's keys as the flags that set them, so an error names what was typed.
FLAGS = {"capacity.startRate": "--start-rate", "capacity.precision": "--precision",
         "capacity.stepSeconds": "--step-seconds", "capacity.maxRate": "--max-rate",
         "capacity.maxProbes": "--max-probes", "warmupSeconds": "--warmup-seconds",
         "repetitions": "--repetitions", "name": "--name", "run.kind": "--kind",
         "run.payload": "--payload", "run.target": "--target", "factors.workers": "--workers",
         "factors.concurrency": "--concurrency"}  # fmt: skip


def register(sub: Any) -> None:
    from lab.ops.faults.presets import PRESETS

    actions = grammar.noun(sub, "capacity", "the highest rate the pipeline sustains within its "
                           "objectives: search, knee curve, scalability")  # fmt: skip
    run = actions.add_parser(
        "run", help="search the capacity into a folder (lab capacity --out DIR … for short)",
        description="Find the highest constant rate whose objectives hold over a steady step: "
        "bracket by doubling from --start-rate, bisect to --precision, repeat the rate that "
        "held near the boundary; one search per --workers, --concurrency and --fault level "
        "(docs/CAPACITY.md).",
    )  # fmt: skip
    run.add_argument("--out", type=Path, required=True, help="the folder of its probes and answer")
    run.add_argument("--kind", type=kind_name,
                     help="the job kind each probe's run releases (lab kind list)")  # fmt: skip
    run.add_argument("--payload", type=payload_arg, metavar="JSON|@FILE",
                     help="every job's payload: a JSON object or @file.json")  # fmt: skip
    run.add_argument("--seed", type=non_negative_int, default=0, help="every probe's run's seed")
    run.add_argument("--target", choices=targets.names(), help="the system under test")
    run.add_argument(
        "--slo", type=slo_arg, action="append", metavar="OBJECTIVE", required=True,
        help="an objective every step must hold (repeatable): endToEnd.p99<500ms, "
        "queueWait.p99<1s, failedRatio<0.01, throughput>0.98",
    )  # fmt: skip
    run.add_argument("--workers", type=positive_ints, default=[1], metavar="N[,N…]",
                     help="worker processes: one search per level (1,2,4 fits the scalability "
                     "law)")  # fmt: skip
    run.add_argument("--concurrency", type=positive_ints, dest="concurrency_levels",
                     metavar="N[,N…]",
                     help="job threads per worker: one search per level")  # fmt: skip
    run.add_argument("--fault", action="append", choices=tuple(PRESETS), default=[],
                     help="a fault preset searched beside the healthy pipeline (repeatable; "
                     "lab fault presets)")  # fmt: skip
    run.add_argument("--start-rate", type=positive_float, required=True,
                     help="jobs per second the search starts from")  # fmt: skip
    run.add_argument(
        "--precision",
        default="5%",
        help="how narrow the interval ends: 5%% or 0.05 (high ≤ low × 1.05)",
    )
    run.add_argument(
        "--repetitions",
        type=positive_int,
        default=3,
        help="times the highest rate that held is probed; one break is a break",
    )
    run.add_argument(
        "--step-seconds",
        type=positive_int,
        default=30,
        help="the steady span each probe is judged over, seconds",
    )
    run.add_argument(
        "--warmup-seconds",
        type=float,
        default=10.0,
        help="each probe's seconds at its rate before its step",
    )
    run.add_argument(
        "--max-rate",
        type=positive_float,
        help="the most it may probe, jobs/s (default 1024 × --start-rate)",
    )
    run.add_argument("--max-probes", type=positive_int, default=40, help="per search, at most")
    run.add_argument("--name", default="capacity", help="its name in the folder's manifest")
    run.add_argument(
        "--resume",
        action="store_true",
        help="go on after an interruption from the probes in the folder",
    )
    run.add_argument("--dry-run", action="store_true",
                     help="print the searches and their worst-case time only")  # fmt: skip
    run.set_defaults(handler=cmd_run)
    report = actions.add_parser("report", help="the knee curves, the fit and the verdict as HTML")
    report.add_argument("folder", type=Path, help="the capacity search's folder")
    report.set_defaults(handler=cmd_report)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from lab.capacity.plan import spec_of
    from lab.experiment.spec import SpecError

    try:
        spec = spec_of(
            start_rate=args.start_rate, slo=args.slo, kind=args.kind, payload=args.payload,
            seed=args.seed, target=args.target, workers=args.workers,
            concurrency=args.concurrency_levels or (), faults=args.fault,
            precision=args.precision, repetitions=args.repetitions,
            step_seconds=args.step_seconds, warmup_seconds=args.warmup_seconds,
            max_rate=args.max_rate, max_probes=args.max_probes, name=args.name,
        )  # fmt: skip
    except SpecError as exc:
        key, _, problem = str(exc).partition(": ")
        named = re.sub(r"\[[0-9]+\]$", "", key)  # factors.workers[2]: the flag's third level
        return bad_input(f"{FLAGS.get(named, key)}: {problem}")
    return run_searches(spec, args.out, settings, args.resume, args.dry_run)


def run_searches(spec: Any, folder: Path, settings: Settings, resume: bool, dry: bool) -> int:
    """A capacity spec's searches into `folder` (also `lab experiment run` of a capacity file)."""
    from lab.capacity.plan import plan_rows, plan_title
    from lab.capacity.runner import Searches

    if dry:
        rows = plan_rows(spec)
        table = DataTable(title=plan_title(spec))
        for column in rows[0]:
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        out.print(table)
        return 0
    from lab.cli.folders import run_into
    from lab.extras import require

    require("scipy", "experiment", "lab capacity")
    searches = Searches(spec, folder, settings, resume=resume, say=note)
    made = run_into(searches, settings)
    if made is None:
        return 2
    found = searches.write_answer()
    failed = [r for r in made if r.get("error")]
    for search in found["searches"]:
        levels = ", ".join(f"{k}={v}" for k, v in search["levels"].items())
        say("lab: {}: {}", levels, search["verdict"])
    for fault in found.get("faults", []):
        say("lab: {}", fault["verdict"])
    say("lab: {} probes, {} with an error; {}", len(made), len(failed), folder / "capacity.json")
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from lab.extras import require
    from lab.measure.reports.run import run_report

    require("scipy", "experiment", "lab capacity report")
    if not (args.folder / "capacity.json").is_file():
        return bad_input(f"{args.folder}: no capacity.json (lab capacity run makes it)")
    report = run_report("capacity", {"FOLDER": str(args.folder.resolve())}, settings,
                        out_dir=args.folder)  # fmt: skip
    say("lab: report {}", report.html)
    say("lab: verdict {}", "passed" if report.passed else "FAILED")
    return 0 if report.passed else 1
