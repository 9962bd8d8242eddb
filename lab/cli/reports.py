"""`lab report …`: run a drill as a report, list the reports, compare two runs of a drill.

lab report run resilience [-p KEY VALUE …] [--show-code]   (or: lab report resilience …)
lab report list [--json]
lab report compare BEFORE.json [MORE.json …] AFTER.json
lab report compare --last 2 resilience
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from rich.text import Text

from lab.cli import grammar
from lab.cli.terminal import DataTable, bad_input, out, say
from lab.config import Settings
from lab.measure.reports import REPORTS


def register(sub: Any) -> None:
    actions = grammar.noun(
        sub,
        "report",
        "drills as reports: run one, list them, compare runs of a drill",
        "report",
        handler=cmd_report,
    )
    run = actions.add_parser("run", help="run a drill notebook with papermill; HTML and JSON out")
    drills = run.add_subparsers(dest="drill", required=True, metavar="DRILL")
    for name, about in REPORTS.items():
        drill = drills.add_parser(name, help=about)
        drill.add_argument(
            "-p",
            "--parameter",
            nargs=2,
            action="append",
            default=[],
            metavar=("KEY", "VALUE"),
            help="a notebook parameter; VALUE is read as JSON when it parses (3, [1, 2], true)",
        )
        drill.add_argument("--out", default="reports", help="where the report goes")
        drill.add_argument(
            "--show-code", action="store_true", help="put the code cells in the HTML too"
        )
    listing = actions.add_parser("list", help="every report in the folder, newest first")
    listing.add_argument("--out", default="reports", help="the reports folder")
    listing.add_argument("--json", action="store_true", help="as JSON")
    comparing = actions.add_parser(
        "compare", help="every figure of two runs of a drill, with change and verdict"
    )
    comparing.add_argument(
        "summaries", nargs="*", metavar="SUMMARY",
        help="report summaries (.json, or the report's .html): baselines first, newest last",
    )  # fmt: skip
    comparing.add_argument(
        "--last", nargs=2, metavar=("N", "NAME"),
        help="the N newest reports of drill NAME in --out (N > 2: the spread of the older ones "
        "counts as noise)",
    )  # fmt: skip
    comparing.add_argument("--out", default="reports", help="where reports are and the table goes")


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    if args.report == "list":
        return cmd_list(args)
    if args.report == "compare":
        return cmd_compare(args)
    return cmd_run(args, settings)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from lab.measure.reports.run import ReportError, check_parameters, run_report

    parameters: dict[str, Any] = {}
    for key, raw in args.parameter:
        if not key.isidentifier():
            return bad_input(f"parameter name {key!r} is not a Python name")
        try:
            parameters[key] = json.loads(raw)
        except json.JSONDecodeError:
            parameters[key] = raw
    try:
        check_parameters(args.drill, parameters)
    except ReportError as exc:
        return bad_input(str(exc))
    say("lab: running notebooks/{}.ipynb …", args.drill)
    report = run_report(args.drill, parameters, settings, Path(args.out), args.show_code)
    for row in report.summary.get("verdicts", []):
        mark = "[green]PASS[/green]" if row["passed"] else "[red]FAIL[/red]"
        say("  " + mark + " {}: {} (expected {})", row["check"], row["observed"], row["expected"])
    if report.summary.get("error"):
        say("[red]{}[/red]", report.summary["error"])
    say("lab: report {}", report.html or report.notebook)
    say("lab: summary {}", report.summary_path)
    say("lab: index {}", Path(args.out).resolve() / "index.html")
    say("lab: verdict {}", "passed" if report.passed else "FAILED")
    return 0 if report.passed else 1


def cmd_list(args: argparse.Namespace) -> int:
    from lab.measure.reports.index import rows, write_index

    folder = Path(args.out)
    if not folder.is_dir():
        return bad_input(f"no reports folder {folder} (lab report NAME makes one)")
    found = rows(folder)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    table = DataTable("date (UTC)", "report", "verdict", "commit", "took", "headline", "summary")
    for row in found:
        passed = row["verdict"] == "passed"
        verdict = Text("passed", style="green") if passed else Text("FAILED", style="red")
        table.add_row(
            row["date"], row["report"], verdict, row["commit"], f"{row['seconds']} s",
            row["headline"], row["summary"],
        )  # fmt: skip
    out.print(table)
    say("lab: {} report(s); index {}", len(found), write_index(folder).resolve())
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from lab.measure.reports import compare
    from lab.measure.reports.index import write_index

    folder = Path(args.out)
    try:
        if args.last:
            if args.summaries:
                return bad_input("give summaries or --last N NAME, not both")
            count, name = args.last
            if not re.fullmatch("[0-9]{1,4}", count):
                return bad_input(f"--last wants a number of reports, not {count!r}")
            if name not in REPORTS:
                return bad_input(f"no report {name!r}; choose from {', '.join(REPORTS)}")
            entries = compare.last(folder, name, int(count))
        else:
            if len(args.summaries) < 2:
                return bad_input("compare needs two summaries (BEFORE AFTER) or --last 2 NAME")
            entries = [compare.load(Path(p)) for p in args.summaries]
        result = compare.compare(entries[:-1], entries[-1])
    except compare.CompareError as exc:
        return bad_input(str(exc))
    md_path, html_path = compare.write(result, folder)
    write_index(folder)
    runs = compare.runs_table(result)
    print(runs.to_string(index=False))
    table = DataTable(*result.table.columns)
    colour = {"regressed": "red", "improved": "green"}
    for row in result.table.itertuples(index=False):
        cells: list[Any] = [compare.text(v) for v in row]
        if row.verdict in colour:
            cells[-1] = Text(row.verdict, style=colour[row.verdict])
        table.add_row(*cells)
    out.print(table)
    say("lab: table {} and {}", md_path.resolve(), html_path.resolve())
    if result.regressed:
        names = ", ".join(result.regressions["figure"])
        say("[red]lab: regressed beyond tolerance: {}[/red]", names)
        return 1
    if not result.undecided.empty:
        say("lab: cannot tell for {} noisy figures: one baseline shows no spread; compare against "
            "several (--last 5 NAME)", len(result.undecided))  # fmt: skip
        return 2
    say("lab: no figure regressed beyond its tolerance")
    return 0
