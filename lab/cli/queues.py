"""`lab queue list|pause|resume|purge`: the lab's queues, through the same routes the admin page
uses."""

from __future__ import annotations

import argparse
from typing import Any

from lab.cli import grammar
from lab.cli.terminal import bad_input, listing, say
from lab.client import LabClient
from lab.config import Settings


def register(sub: Any) -> None:
    actions = grammar.noun(
        sub, "queue", "the lab's queues: list, pause, resume, purge", handler=cmd_queue
    )
    listed = actions.add_parser("list", help="ready messages, consumers, paused")
    listed.add_argument("--json", action="store_true", help="the API's answer as JSON")
    for name, text in [
        ("pause", "workers take nothing new from the queue (in-flight jobs finish)"),
        ("resume", "workers take from the queue again"),
        ("purge", "delete every message waiting in the queue"),
    ]:
        action = actions.add_parser(name, help=text)
        action.add_argument("name", help="a queue of this lab (see lab queue list)")
        if name == "purge":
            action.add_argument("--yes", action="store_true", help="no question asked")


def cmd_queue(args: argparse.Namespace, settings: Settings) -> int:
    client = LabClient.of(settings)
    if args.action == "list":
        answer = client.queues()
        rows = (
            (q["name"], f"{q['ready']:,}", str(q["consumers"]), "paused" * q["paused"])
            for q in answer["queues"]
        )
        return listing(args.json, answer, "queues", ("queue", "ready", "consumers", "paused"), rows)
    if args.action == "purge" and not args.yes:
        return bad_input(f"purge deletes every message waiting in {args.name}: add --yes")
    answer = client.queue_action(args.name, args.action)
    if args.action == "purge":
        say("lab: purged {} from {}", answer["purged"], args.name)
    else:
        say("lab: {} {}", args.name, "paused" if answer["paused"] else "resumed")
    return 0
