"""`lab experiment run FILE`: every trial of an experiment file into its folder (one row each in
results.csv and results.parquet), resumable; `--dry-run` shows the plan and its time.
`lab experiment report FOLDER`: the analysis as an HTML report, verdict first."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from lab.cli.terminal import bad_input, console, out
from lab.config import Settings


def register(sub: Any) -> None:
    exp = sub.add_parser("experiment", help="factors × levels × repetitions, with intervals")
    verbs = exp.add_subparsers(dest="experiment", required=True, metavar="ACTION")
    run = verbs.add_parser("run", help="run an experiment file's trials (TOML; experiments/)")
    run.add_argument("file", type=Path, help="the experiment file, e.g. experiments/scaling.toml")
    run.add_argument("--out", type=Path, help="its folder (default experiments/results/NAME)")
    run.add_argument(
        "--resume", action="store_true",
        help="go on after an interruption: only the trials with no row run",
    )  # fmt: skip
    run.add_argument("--dry-run", action="store_true", help="print the plan and its time only")
    run.add_argument("--json", action="store_true", help="--dry-run's plan as JSON")
    run.set_defaults(handler=cmd_run)
    report = verbs.add_parser("report", help="the analysis of a folder as an HTML report")
    report.add_argument("folder", type=Path, help="the experiment's folder")
    report.add_argument("--measure", default="drainedPerSecond",
                        help="the measure the verdict is about")  # fmt: skip
    report.set_defaults(handler=cmd_report)


def _spec(path: Path) -> Any:
    from lab.experiment.spec import Spec

    return Spec.from_file(path)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from lab.experiment.plan import estimate_s, trials
    from lab.experiment.results import ResultsError
    from lab.experiment.runner import Runner
    from lab.experiment.spec import SpecError

    if not args.file.is_file():
        return bad_input(f"{args.file}: no such experiment file")
    try:
        spec = _spec(args.file)
    except SpecError as exc:
        return bad_input(f"{args.file}: {exc}")
    folder = args.out or Path("experiments") / "results" / spec.name
    plan = trials(spec)
    if args.dry_run:
        if args.json:
            print(json.dumps([{"trial": t.id, **t.levels} for t in plan], indent=2))
            return 0
        table = Table(title=f"{spec.name}: {len(plan)} trials, about "
                            f"{estimate_s(spec) / 60:.1f} min")  # fmt: skip
        for column in ("#", "trial", *spec.factors):
            table.add_column(column)
        for i, t in enumerate(plan, start=1):
            table.add_row(str(i), t.id, *(str(t.levels[k]) for k in spec.factors))
        out.print(table)
        return 0
    from lab.ops import stack

    stack.up(settings, say=lambda line: console.print(line, highlight=False))
    runner = Runner(spec, folder, settings, resume=args.resume,
                    say=lambda line: console.print(line, highlight=False))  # fmt: skip
    try:
        made = runner.run()
    except ResultsError as exc:
        return bad_input(str(exc))
    failed = [r for r in made if r.get("error")]
    console.print(f"lab: {len(made)} trials run, {len(failed)} with an error; rows in "
                  f"{folder / 'results.csv'}", highlight=False)  # fmt: skip
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from lab.extras import require
    from lab.measure.reports.run import run_report

    require("scipy", "experiment", "lab experiment report")
    if not (args.folder / "results.csv").is_file():
        return bad_input(f"{args.folder}: no results.csv (lab experiment run makes it)")
    report = run_report("experiment", {"FOLDER": str(args.folder.resolve()),
                                       "MEASURE": args.measure}, settings,
                        out_dir=args.folder)  # fmt: skip
    console.print(f"lab: report {report.html}", highlight=False)
    console.print(f"lab: verdict {'passed' if report.passed else 'FAILED'}", highlight=False)
    return 0 if report.passed else 1
