"""`lab kind list|show`: the job kinds this lab's `workers/` offers and their payload fields,
read locally (no API needed), so a payload can be written before anything runs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lab.cli import grammar
from lab.cli.terminal import DataTable, bad_input, listing, out, say


def register(sub: Any) -> None:
    grammar.catalogue(sub, "kind", "job kinds: list them, show one's payload fields", "kind",
                      ("every kind in workers/, with its summary", cmd_list),
                      ("one kind: batching, attempts, payload fields", cmd_show))  # fmt: skip


def check_kind(kind: str) -> str | None:
    """None when `kind` is a kind of this lab, else the error naming the known ones."""
    from lab.runtime.handlers import known_kinds

    known = known_kinds()
    return None if kind in known else f"no job kind {kind!r}; kinds: {', '.join(known)}"


def cmd_list(args: argparse.Namespace, _settings: Any) -> int:
    from lab.runtime.handlers import handler_for, known_kinds

    described = [handler_for(k).describe() for k in known_kinds()]
    rows = (
        (d["kind"], "yes" if d["batchable"] else "no", ", ".join(f["name"] for f in d["fields"]),
         d["summary"])
        for d in described
    )  # fmt: skip
    return listing(args.json, described, "kinds", ("kind", "batched", "fields", "summary"), rows)


def cmd_show(args: argparse.Namespace, _settings: Any) -> int:
    from lab.runtime.handlers import handler_for

    problem = check_kind(args.kind)
    if problem:
        return bad_input(problem)
    described = handler_for(args.kind).describe()
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    say("{}: {}", described["kind"], described["summary"], to=out)
    table = DataTable(title="payload fields")
    for column in ("field", "type", "default", "bounds", "help"):
        table.add_column(column)
    for f in described["fields"]:
        bounds = (
            " .. ".join(str(f.get(k, "")) for k in ("min", "max"))
            if "min" in f or "max" in f
            else ""
        )
        table.add_row(f["name"], f["type"], json.dumps(f.get("default")), bounds, f["help"])
    out.print(table)
    return 0
