"""`lab dead list|replay|purge`: the dead letters, through the same API the admin page uses."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lab.cli import grammar
from lab.cli.arguments import non_negative_int, positive_int
from lab.cli.terminal import DataTable, bad_input, out, shown
from lab.client import LabClient
from lab.config import Settings


def register(sub: Any) -> None:
    actions = grammar.noun(sub, "dead", "dead letters: list, replay, purge", handler=cmd_dead)
    ls = actions.add_parser("list", help="dead-lettered messages, oldest first (none taken)")
    ls.add_argument("--limit", type=positive_int, default=20, help="at most this many letters")
    ls.add_argument("--offset", type=non_negative_int, default=0, help="skip this many first")
    ls.add_argument("--json", action="store_true", help="the API's answer as JSON")
    replay = actions.add_parser("replay", help="put letters back with a fresh attempt budget")
    replay.add_argument("ids", nargs="*", metavar="ID", help="letter ids (from lab dead list)")
    replay.add_argument("--all", action="store_true", help="every letter")
    purge = actions.add_parser("purge", help="delete every dead letter")
    purge.add_argument("--yes", action="store_true", help="no question asked (scripts, CI)")


def cmd_dead(args: argparse.Namespace, settings: Settings) -> int:
    client = LabClient.of(settings)
    if args.action == "list":
        page = client.dead_letters(args.limit, args.offset)
        if args.json:
            print(json.dumps(page, indent=2))
            return 0
        table = DataTable(title=f"dead letters: {page['total']:,} in all")
        for column in ("id", "reason", "queue", "attempts", "last failed", "job", "error"):
            table.add_column(column)
        for d in page["letters"]:
            table.add_row(
                d["id"], d["reason"], d["queue"], str(d["attempts"]), d["lastFailedAt"] or "",
                d["jobId"] or d["preview"][:40], (d["error"] or "")[:60],
            )  # fmt: skip
        out.print(table)
        return 0
    if args.action == "replay":
        if args.all == bool(args.ids):
            return bad_input("give letter ids or --all")
        answer = client.replay_dead_letters(None if args.all else args.ids)
        kept = ", ".join(f"{n} {why}" for why, n in answer["kept"].items())
        out.print(
            shown(
                f"replayed {answer['replayed']} of {answer['matched']} matched"
                + (f"; kept {kept}" if kept else "")
                + (f"; not found: {' '.join(answer['notFound'])}" if answer["notFound"] else "")
            )
        )
        return 0 if not answer["notFound"] else 1
    if not args.yes:
        return bad_input("purge deletes every dead letter for good: add --yes")
    print(f"purged {client.purge_dead_letters()['purged']} dead letters")
    return 0
