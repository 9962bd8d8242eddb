"""`lab experiment run FILE`: every trial of an experiment file into its folder (one row each in
results.csv and results.parquet), resumable; `--dry-run` shows the plan and its time.
`lab experiment report FOLDER`: the analysis as an HTML report, verdict first. A file with
`procedure = "capacity"` runs capacity searches (lab/cli/capacity.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lab.cli.folders import run_into
from lab.cli.terminal import DataTable, bad_input, note, out, say
from lab.config import Settings


def register(sub: Any) -> None:
    from lab.experiment.factors import FACTORS

    exp = sub.add_parser("experiment", help="factors × levels × repetitions, with intervals")
    verbs = exp.add_subparsers(dest="experiment", required=True, metavar="ACTION")
    run = verbs.add_parser(
        "run", help="run an experiment file's trials (TOML; experiments/)",
        description="Run an experiment file's trials (TOML; experiments/). A factor is one of: "
        f"{', '.join(FACTORS.names)} (docs/EXPERIMENTS.md: what each one's levels are).",
    )  # fmt: skip
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
    from lab.experiment.runner import Runner
    from lab.experiment.spec import SpecError

    if not args.file.is_file():
        return bad_input(f"{args.file}: no such experiment file")
    try:
        spec = _spec(args.file)
    except SpecError as exc:
        return bad_input(f"{args.file}: {exc}")
    folder = args.out or Path("experiments") / "results" / spec.name
    if spec.procedure == "capacity":  # a search per configuration (lab capacity)
        from lab.cli.capacity import run_searches

        return run_searches(spec, folder, settings, args.resume, args.dry_run)
    plan = trials(spec)
    if args.dry_run:
        if args.json:
            print(json.dumps([{"trial": t.id, **t.levels} for t in plan], indent=2))
            return 0
        # Levels are the file's text: every cell and heading is shown as data, never as markup.
        table = DataTable(title=f"{spec.name}: {len(plan)} trials, about "
                                f"{estimate_s(spec) / 60:.1f} min")  # fmt: skip
        for column in ("#", "trial", *spec.factors):
            table.add_column(column)
        for i, t in enumerate(plan, start=1):
            table.add_row(str(i), t.id, *(str(t.levels[k]) for k in spec.factors))
        out.print(table)
        return 0
    made = run_into(Runner(spec, folder, settings, resume=args.resume, say=note), settings)
    if made is None:
        return 2
    failed = [r for r in made if r.get("error")]
    say("lab: {} trials run, {} with an error; rows in {}", len(made), len(failed),
        folder / "results.csv")  # fmt: skip
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
    for name, text in (report.summary.get("headline") or {}).items():  # the answer, in brief
        say("  {}: {}", name, text)
    say("lab: report {}", report.html)
    say("lab: verdict {}", "passed" if report.passed else "FAILED")
    return 0 if report.passed else 1
