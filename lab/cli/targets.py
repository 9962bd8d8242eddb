"""`lab target list|show`: the systems a run can drive (`lab run start --target`), read locally,
with what each lacks on this machine."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lab import targets
from lab.cli import grammar
from lab.cli.terminal import bad_input, listing, say


def register(sub: Any) -> None:
    grammar.catalogue(sub, "target", "systems under test: list them, show one", "name",
                      ("every target, and whether it can run here", cmd_list),
                      ("one target: its services and what it needs", cmd_show))  # fmt: skip


def cmd_list(args: argparse.Namespace, _settings: Any) -> int:
    described = [targets.describe(name) for name in targets.names()]
    rows = ((d["name"], "yes" if not d["missing"] else "no", ", ".join(d["services"]), d["help"])
            for d in described)  # fmt: skip
    return listing(args.json, described, "targets", ("target", "here", "services", "what it is"),
                   rows)  # fmt: skip


def cmd_show(args: argparse.Namespace, _settings: Any) -> int:
    if args.name not in targets.names():
        return bad_input(f"no target {args.name!r}; targets: {', '.join(targets.names())}")
    described = targets.describe(args.name)
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    say("{}: {}", described["name"], described["help"])
    say("services: {}", ", ".join(described["services"]) or "none")
    say("needs: {}", ", ".join(described["packages"] + described["programs"]) or "nothing more")
    say("here: {}", described["missing"] or "ready (lab up --target {} starts its workers)"
        .format(described["name"]))  # fmt: skip
    return 0
