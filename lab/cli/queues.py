"""`lab queue pause|resume|purge NAME`, `lab queue list`, and `lab pause` / `lab resume` for the
active run's release: the same routes the admin page uses."""

from __future__ import annotations

import argparse
from typing import Any

from lab.cli.terminal import DataTable, bad_input, console, out
from lab.client import LabClient
from lab.config import Settings


def register(sub: Any) -> None:
    queue = sub.add_parser("queue", help="the lab's queues: list, pause, resume, purge")
    actions = queue.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="ready messages, consumers, paused")
    for name, text in [
        ("pause", "workers take nothing new from the queue (in-flight jobs finish)"),
        ("resume", "workers take from the queue again"),
        ("purge", "delete every message waiting in the queue"),
    ]:
        action = actions.add_parser(name, help=text)
        action.add_argument("name", help="a queue of this lab (see lab queue list)")
        if name == "purge":
            action.add_argument("--yes", action="store_true", help="no question asked")
    queue.set_defaults(handler=cmd_queue)
    sub.add_parser("pause", help="pause releasing the active run").set_defaults(handler=cmd_pause)
    sub.add_parser("resume", help="resume releasing the active run").set_defaults(
        handler=cmd_resume
    )


def cmd_queue(args: argparse.Namespace, settings: Settings) -> int:
    client = LabClient.of(settings)
    if args.action == "list":
        table = DataTable(title="queues")
        for column in ("queue", "ready", "consumers", "paused"):
            table.add_column(column)
        for q in client.queues()["queues"]:
            table.add_row(q["name"], f"{q['ready']:,}", str(q["consumers"]), "paused" * q["paused"])
        out.print(table)
        return 0
    if args.action == "purge" and not args.yes:
        return bad_input(f"purge deletes every message waiting in {args.name}: add --yes")
    answer = client.queue_action(args.name, args.action)
    if args.action == "purge":
        console.print(f"lab: purged {answer['purged']} from {args.name}")
    else:
        console.print(f"lab: {args.name} {'paused' if answer['paused'] else 'resumed'}")
    return 0


def cmd_pause(_args: argparse.Namespace, settings: Settings) -> int:
    answer = LabClient.of(settings).pause_run(True)
    console.print(f"lab: run {answer['runId']} release paused")
    return 0


def cmd_resume(_args: argparse.Namespace, settings: Settings) -> int:
    answer = LabClient.of(settings).pause_run(False)
    console.print(f"lab: run {answer['runId']} release resumed")
    return 0
