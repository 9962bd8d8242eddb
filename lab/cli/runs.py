"""`lab run start|set|stop|status|list|show|pause|resume`: run control through the API, as any
client would do it (`lab status`, `lab stop`, `lab runs`, `lab pause`, `lab resume` are kept
as aliases)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lab import targets
from lab.cli import grammar
from lab.cli.arguments import (
    json_object,
    json_of,
    kind_name,
    non_negative_int,
    positive_float,
    positive_int,
)
from lab.cli.terminal import DataTable, bad_input, console, listing, out, plain, say
from lab.client import ApiError, LabClient
from lab.config import Settings
from lab.runtime import shapes, slo
from lab.runtime.shapes import SHORT_HELP
from lab.runtime.status import is_settled
from lab.targets import usertask

# A run a command looks at: the one named, else the newest (what `lab run status` shows).
RUN_ID: dict[str, Any] = {"nargs": "?", "metavar": "RUN_ID",
                          "help": "a run id (lab run list); default: the newest run"}  # fmt: skip


def register(sub: Any) -> None:
    actions = grammar.noun(
        sub, "run", "runs: start, stop, status, list, show, pause, resume (through the API)"
    )
    start = actions.add_parser(
        "start", help="start a run: X jobs of a kind, at Y per minute or following a shape"
    )
    start.add_argument("--x", type=positive_int, required=True, help="number of jobs")
    rate = start.add_mutually_exclusive_group(required=True)
    rate.add_argument("--y", type=positive_float, help="jobs per minute")
    rate.add_argument("--shape", type=shape_arg, metavar="SHAPE", help=f"Y over time: {SHORT_HELP}")
    work = start.add_mutually_exclusive_group()
    work.add_argument(
        "--kind", type=kind_name, default="index", help="the job kind (lab kind list)"
    )
    work.add_argument(
        "--task", metavar="NAME",
        help="your own task instead, by its dotted name, on a target other than lab (its "
        "workers load it): each job sends it with --args and --kwargs",
    )  # fmt: skip
    start.add_argument(
        "--payload", type=payload_arg, default=None, metavar="JSON|@FILE",
        help="every job's payload: a JSON object or @file.json (lab kind show KIND)",
    )  # fmt: skip
    start.add_argument(
        "--args", type=json_of(list), metavar="JSON",
        help='--task\'s arguments, a JSON list; "{seq}" and "{jobId}" become each job\'s own',
    )  # fmt: skip
    start.add_argument(
        "--kwargs", type=json_of(dict), metavar="JSON",
        help="--task's keyword arguments, a JSON object (placeholders as in --args)",
    )  # fmt: skip
    start.add_argument(
        "--seed", type=non_negative_int, help="repeat a run's randomness (default: a new seed)"
    )
    start.add_argument(
        "--slo", type=slo_arg, action="append", metavar="OBJECTIVE",
        help="an objective judged while the run runs (repeatable): endToEnd.p99<2s, "
        "service.p50<200ms@10s, failedRatio<0.01, throughput>0.95, headAge<30s",
    )  # fmt: skip
    start.add_argument(
        "--abort-on-breach", action="store_true", help="a breached objective stops the run"
    )
    start.add_argument(
        "--target", choices=targets.names(), default=None,
        help="the system under test (default lab; lab target list)",
    )  # fmt: skip
    start.add_argument(
        "--wait", action="store_true",
        help="show progress until the run is done; exit 1 if it failed jobs or breached",
    )  # fmt: skip
    start.set_defaults(handler=cmd_run)

    change = actions.add_parser("set", help="change the active run's rate or shape from now on")
    new_rate = change.add_mutually_exclusive_group(required=True)
    new_rate.add_argument("--y", type=positive_float, help="jobs per minute")
    new_rate.add_argument(
        "--shape", type=shape_arg, metavar="SHAPE", help=f"Y over time: {SHORT_HELP}"
    )
    change.set_defaults(handler=cmd_set)

    status = actions.add_parser("status", help="the active (or latest) run")
    status.add_argument("--json", action="store_true", help="the API's answer as JSON")
    status.set_defaults(handler=cmd_status)

    actions.add_parser("stop", help="stop releasing the active run (queued jobs still finish)")
    actions.choices["stop"].set_defaults(handler=cmd_stop)

    listed = actions.add_parser("list", help="run history, newest first")
    listed.add_argument("--limit", type=positive_int, default=20, help="at most this many runs")
    listed.add_argument("--json", action="store_true", help="the API's answer as JSON")
    listed.set_defaults(handler=cmd_runs)

    latency = actions.add_parser(
        "latency", help="where a run's time went: queue wait, service, end to end (ms)"
    )
    latency.add_argument("run_id", **RUN_ID)
    latency.add_argument("--json", action="store_true", help="the API's answer, with windows")
    latency.set_defaults(handler=cmd_latency)

    judged = actions.add_parser(
        "verdict", help="a run's delivery verdict: lost, duplicated, executed more than once"
    )
    judged.add_argument("run_id", **RUN_ID)
    judged.add_argument(
        "--drain", type=positive_float, default=None, metavar="SECONDS",
        help="first wait until nothing of the run has ended for this long (it has drained)",
    )  # fmt: skip
    judged.add_argument("--json", action="store_true", help="as JSON")
    judged.set_defaults(handler=cmd_verdict)

    show = actions.add_parser("show", help="one run's record")
    show.add_argument("run_id", **RUN_ID)
    show.set_defaults(handler=cmd_show)

    for name, verb in (("pause", "pause"), ("resume", "resume")):
        actions.add_parser(name, help=f"{verb} releasing the active run").set_defaults(
            handler=cmd_pause if name == "pause" else cmd_resume
        )


def shape_arg(text: str) -> dict[str, Any]:
    """`--shape`: a short form, JSON or @trace.csv, checked here (the API checks it again)."""
    try:
        shape = shapes.from_text(text, read=lambda path: Path(path).read_text())
        shapes.parse(shape)
    except shapes.ShapeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text[1:]!r}: {exc.strerror}") from None
    return shape


def slo_arg(text: str, scope: str = "run") -> dict[str, Any]:
    """`--slo`: an objective in the short form, of what `scope` judges (`lab.runtime.slo`)."""
    try:
        return slo.from_text(text, scope)
    except slo.SloError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def payload_arg(text: str) -> dict[str, Any]:
    """`--payload`: a JSON object, or `@file.json`."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]!r}: {exc.strerror}") from None
    return json_object(text)


def work_of(args: argparse.Namespace) -> tuple[str, dict[str, Any] | None]:
    """The run's kind and payload: `--kind` and `--payload`, or `--task` with its arguments
    (the `task` kind, lab.targets.usertask); `ValueError` says what does not go together."""
    if args.task is None:
        if args.args is not None or args.kwargs is not None:
            raise ValueError("--args and --kwargs go with --task")
        return args.kind, args.payload
    if args.payload is not None:
        raise ValueError("--task takes --args and --kwargs, not --payload")
    if args.target in (None, targets.DEFAULT):
        raise ValueError(
            "--task runs a task of your own framework: give --target (lab target list)"
        )
    try:
        payload = usertask.check({"task": args.task, "args": args.args or [],
                                  "kwargs": args.kwargs or {}})  # fmt: skip
    except usertask.TaskPayloadError as exc:
        raise ValueError(f"--{exc.field}: {exc.message}") from None
    return usertask.KIND, payload


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        kind, payload = work_of(args)
    except ValueError as exc:
        return bad_input(str(exc))
    client = LabClient.of(settings)
    shape = args.shape if args.shape is not None else {"type": "constant", "y": args.y}
    started = client.run(
        args.x, shape=shape, kind=kind, payload=payload, seed=args.seed,
        slo=args.slo, abort_on_breach=args.abort_on_breach or None, target=args.target,
    )  # fmt: skip
    run_id = started["runId"]
    what = args.task if args.task is not None else kind
    say("lab: run {} started: {} {} jobs, {}, seed {}", run_id, args.x, what,
        shapes.describe(shape), started.get("seed"))  # fmt: skip
    if not args.wait:
        print(run_id)
        return 0
    final = watch_run(client, run_id)
    print(json.dumps(final, indent=2))
    breached = [o for o in final.get("slo") or [] if o["state"] == "breached"]
    for objective in breached:
        say("lab: objective breached: {} (was {})", objective["text"], objective["value"])
    ok = final["state"] == "completed" and final["failed"] == 0 and not breached
    return 0 if ok else 1


def watch_run(client: LabClient, run_id: str, timeout_s: float | None = None) -> dict[str, Any]:
    """A terminal progress bar until the run is settled; returns the final run record."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[extra]}", markup=False),
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
            if is_settled(run["state"], run["processed"], run["failed"], run["enqueued"]):
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
    table = DataTable(title=f"run {status['runId'] or '—'} ({status['state']})")
    for column in ("xTotal", "yMinutes", "enqueued", "processed", "failed", "running"):
        table.add_column(column, justify="right")
    columns = ("xTotal", "yMinutes", "enqueued", "processed", "failed", "running")
    table.add_row(*(f"{status[c]:,.0f}" if c == "yMinutes" else str(status[c]) for c in columns))
    out.print(table)
    rates = status["rates"]
    print(
        f"processed/min (last {rates['windowSeconds']}s): {rates['processedPerMinute']:,.0f}   "
        f"released/min: {rates['enqueuedPerMinute']:,.0f}   workers: {len(status['workers'])}"
    )
    for w in status["workers"]:
        print(
            plain(f"  {w['id']}  pid {w['pid']}  processed {w['processed']}  ")
            + f"heartbeat {w['heartbeatAgeSeconds']:.1f}s ago"
        )
    return 0


def cmd_stop(_args: argparse.Namespace, settings: Settings) -> int:
    answer = LabClient.of(settings).stop()
    say("lab: run {} stopped releasing at {} jobs", answer["stopped"], answer["enqueued"])
    return 0


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    client = LabClient.of(settings)
    runs = client.runs(args.limit)
    if not args.json:
        for r in runs:  # p99 end to end: one small read per run listed
            r["p99EndToEndMs"] = client.latency(r["runId"], windows=False)["endToEnd"].get("p99Ms")
    rows = (
        (r["runId"], r["state"], r.get("kind", "index"), str(r["xTotal"]),
         r.get("shapeText") or f"{r['yMinutes']:g}/min", str(r["processed"]), str(r["failed"]),
         f"{r['durationSeconds']:.1f}", _ms(r.get("p99EndToEndMs")))
        for r in runs
    )  # fmt: skip
    columns = ("runId", "state", "kind", "xTotal", "shape", "processed", "failed", "seconds",
               "p99 end to end")  # fmt: skip
    return listing(args.json, runs, "runs", columns, rows)


def cmd_set(args: argparse.Namespace, settings: Settings) -> int:
    shape = args.shape if args.shape is not None else {"type": "constant", "y": args.y}
    answer = LabClient.of(settings).change_run(shape=shape)
    say("lab: run {} follows {} from job {}", answer["runId"], shapes.describe(shape),
        answer["from"])  # fmt: skip
    return 0


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f} ms"


def run_id_of(client: LabClient, given: str | None) -> str:
    """The run a command names, or the newest run; `ApiError` when there is none."""
    if given:
        return given
    newest = client.runs(1)
    if not newest:
        raise ApiError("no run yet: lab run start makes one")
    return newest[0]["runId"]


def cmd_latency(args: argparse.Namespace, settings: Settings) -> int:
    client = LabClient.of(settings)
    args.run_id = run_id_of(client, args.run_id)
    answer = client.latency(args.run_id, windows=args.json)
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    table = DataTable(title=f"run {args.run_id}: latency in ms")
    columns = ("count", "meanMs", "p50Ms", "p90Ms", "p95Ms", "p99Ms", "p99.9Ms", "maxMs")
    table.add_column("metric")
    for column in columns:
        table.add_column(column.removesuffix("Ms"), justify="right")
    for metric in ("queueWait", "service", "endToEnd"):
        entry = answer[metric]
        figures = (entry.get(c) for c in columns[1:])
        table.add_row(
            metric, str(entry["count"]), *("–" if v is None else f"{v:,.1f}" for v in figures)
        )
    out.print(table)
    return 0


def cmd_verdict(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when the verdict is clean (nothing lost, duplicated or unexpected), 1 when not."""
    client = LabClient.of(settings)
    args.run_id = run_id_of(client, args.run_id)
    if args.drain:
        drained(client, args.run_id, args.drain)
    found = client.verdict(args.run_id)
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        submits = found["submits"]
        say("lab: run {} on {}: released {}, submits ok {} / failed {} / indeterminate {}",
            found["runId"], found["target"], found["released"], submits["ok"],
            submits["failed"], submits["indeterminate"])  # fmt: skip
        say("lab: processed {}, failed {}, lost {}, duplicated {}, executed more than once {}, "
            "unexpected {}: {}", found["processed"], found["failed"], found["lost"],
            found["duplicated"], found["executedMoreThanOnce"], found["unexpected"],
            "clean" if found["clean"] else "NOT clean")  # fmt: skip
    return 0 if found["clean"] else 1


def drained(client: LabClient, run_id: str, quiet_s: float, limit_s: float = 3600) -> None:
    """Until the run is settled, or nothing of it has ended for `quiet_s` (its target's workers
    have nothing left of it, or have lost it)."""
    last, since = None, time.monotonic()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        run = client.get_run(run_id)
        ended = (run["processed"], run["failed"], run.get("executedAgain", 0))
        if run["state"] != "running" and run["processed"] + run["failed"] >= run["enqueued"]:
            return
        if ended != last:
            last, since = ended, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.5)


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    client = LabClient.of(settings)
    print(json.dumps(client.get_run(run_id_of(client, args.run_id)), indent=2))
    return 0


def cmd_pause(_args: argparse.Namespace, settings: Settings) -> int:
    answer = LabClient.of(settings).pause_run(True)
    say("lab: run {} release paused", answer["runId"])
    return 0


def cmd_resume(_args: argparse.Namespace, settings: Settings) -> int:
    answer = LabClient.of(settings).pause_run(False)
    say("lab: run {} release resumed", answer["runId"])
    return 0
