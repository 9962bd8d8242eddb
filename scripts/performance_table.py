"""The "What holds now" table of docs/PERFORMANCE.md, made from docs/performance.json: one row per
claim, the latest measure of it, each with the commit and the date it was measured at.

    .venv/bin/python scripts/performance_table.py              # rewrite the table from the data
    .venv/bin/python scripts/performance_table.py --check      # exit 1 when the page differs
    .venv/bin/python scripts/performance_table.py add \\
        --claim "drain, one worker, the reference job" --figure "13,400 jobs/s median of 6" \\
        --command "scripts/bench_against.py e485013 --pairs 6"

`add` records a measure: it replaces the row of the same claim (or adds one), naming this
checkout's commit and today's date unless `--commit` and `--date` say otherwise, and rewrites the
table. The dated sections of PERFORMANCE.md say how each figure was measured.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "docs" / "performance.json"
PAGE = ROOT / "docs" / "PERFORMANCE.md"
BEGIN = "<!-- what holds now: made by scripts/performance_table.py from docs/performance.json -->"
END = "<!-- /what holds now -->"


def table(data: dict) -> str:
    lines = [f"On this machine ({data['machine']}):", "",
             "| claim | figure | measured at | command |", "| --- | --- | --- | --- |"]  # fmt: skip
    for row in data["rows"]:
        cells = (row["claim"], row["figure"], f"`{row['commit']}`, {row['date']}",
                 f"`{row['command']}`")  # fmt: skip
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def page_with(text: str, data: dict) -> str:
    """The page's text with the table between its markers made from `data`."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table(data)}\n{END}{tail}"


def head_commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=7", "HEAD"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def add(data: dict, claim: str, figure: str, command: str, commit: str, date: str) -> dict:
    row = {"claim": claim, "figure": figure, "command": command, "commit": commit, "date": date}
    rows = [r for r in data["rows"] if r["claim"] != claim]
    at = next((i for i, r in enumerate(data["rows"]) if r["claim"] == claim), len(rows))
    return {**data, "rows": [*rows[:at], row, *rows[at:]]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the page differs")
    sub = parser.add_subparsers(dest="action")
    adding = sub.add_parser("add", help="record a measure and rewrite the table")
    adding.add_argument("--claim", required=True)
    adding.add_argument("--figure", required=True)
    adding.add_argument("--command", required=True)
    adding.add_argument("--commit", default=None, help="default: this checkout's HEAD")
    adding.add_argument("--date", default=datetime.now(UTC).date().isoformat())
    args = parser.parse_args(argv)
    data = json.loads(DATA.read_text())
    if args.action == "add":
        data = add(data, args.claim, args.figure, args.command, args.commit or head_commit(),
                   args.date)  # fmt: skip
        DATA.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    text = PAGE.read_text()
    made = page_with(text, data)
    if args.check:
        if made != text:
            print(f"{PAGE.relative_to(ROOT)}: the table differs from {DATA.name}; "
                  "run scripts/performance_table.py", file=sys.stderr)  # fmt: skip
            return 1
        return 0
    PAGE.write_text(made)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
