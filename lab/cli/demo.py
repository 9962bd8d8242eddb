"""`lab demo`: the whole pipeline once, end to end, verified against Elasticsearch and Redis."""

from __future__ import annotations

import argparse
from typing import Any

from lab.cli.arguments import positive_float, positive_int
from lab.cli.runs import watch_run
from lab.cli.terminal import DataTable, console, out, say
from lab.client import LabClient
from lab.config import Settings, safe_url
from lab.ops import stack
from lab.ops.supervisor import Supervisor
from lab.runtime.store import Store


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="stack up, processes up, one run, verified end to end")
    demo.add_argument("--x", type=positive_int, default=300, help="number of jobs")
    demo.add_argument("--y", type=positive_float, default=6000, help="jobs per minute")
    demo.add_argument("--workers", type=positive_int, default=2, help="workers to start")
    demo.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    return demo(settings, x=args.x, y=args.y, workers=args.workers)


def verify(settings: Settings, run: dict, x: int) -> tuple[bool, DataTable]:
    """ES count, distinct ids and `processed` must all equal X, with no failures."""
    store = Store(settings)
    store.refresh()
    count = store.count(run["runId"])
    distinct = store.distinct_job_ids(run["runId"])
    store.close()
    seconds = run["durationSeconds"] or 0.0
    checks = [
        ("Elasticsearch documents", count, x),
        ("distinct jobIds", distinct, x),
        ("processed (Redis)", run["processed"], x),
        ("failed", run["failed"], 0),
    ]
    table = DataTable(title=f"run {run['runId']}: {x} jobs at {run['yMinutes']:g}/min")
    table.add_column("check")
    table.add_column("observed", justify="right")
    table.add_column("expected", justify="right")
    table.add_column("ok")
    ok = True
    for name, observed, expected in checks:
        good = observed == expected
        ok &= good
        table.add_row(name, str(observed), str(expected), "✔" if good else "✘")
    table.add_row("duration", f"{seconds:.2f} s", "", "")
    table.add_row(
        "throughput", f"{run['processed'] / seconds:,.1f} jobs/s" if seconds else "—", "", ""
    )
    return ok, table


def demo(settings: Settings, x: int = 300, y: float = 6000, workers: int = 2) -> int:
    console.rule("lab demo")
    stack.up(settings, say=lambda line: say("  {}", line))
    supervisor = Supervisor(settings)
    try:
        supervisor.up(workers=workers)
        say("  processes      api, scheduler, {} worker(s) (logs in {})", workers,
            supervisor.log_dir)  # fmt: skip
        client = LabClient.of(settings)
        run_id = client.run(x, y)["runId"]
        expected_s = x / y * 60
        run = watch_run(client, run_id, timeout_s=max(120.0, expected_s * 3 + 60))
        ok, table = verify(settings, run, x)
        out.print(table)
    finally:
        supervisor.down(adopted=False)
    console.print("[green]demo passed[/green]" if ok else "[red]demo FAILED[/red]")
    left_running(settings)
    return 0 if ok else 1


def left_running(settings: Settings) -> None:
    """Say what the demo leaves running, and how to stop it: nothing stays behind by surprise."""
    ours = [
        f"{service} at {safe_url(str(info['url']))}"
        for service, info in stack.status(settings).items()
        if info["managedByLab"] and info["healthy"]
    ]
    if ours:
        say("  still running, started by lab: {}; stop them with `lab stack down` (the lab's "
            "processes are stopped)", ", ".join(ours))  # fmt: skip
    else:
        console.print("  lab's processes are stopped; the services it used were already running")
