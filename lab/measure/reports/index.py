"""Every report in a folder: `reports/index.html` (rewritten after each report and comparison)
and `lab report list`, which print the same rows.

The summaries are the source: a report is a `NAME-<timestamp>.json` that names its `report`.
Anything else in the folder (a comparison, a half-written file) is passed over, not an error.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDEX = "index.html"


@dataclass(frozen=True)
class Entry:
    path: Path
    summary: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.summary.get("report"))

    @property
    def started(self) -> str:
        return str(self.summary.get("startedAt", ""))

    @property
    def passed(self) -> bool:
        return bool(self.summary.get("passed"))

    @property
    def commit(self) -> str:
        git = self.summary.get("git") or {}
        if not git.get("commit"):
            return "—"
        return git["commit"][:10] + (" (dirty)" if git.get("dirty") else "")


def summaries(folder: Path, name: str | None = None) -> list[Entry]:
    """The report summaries in `folder`, oldest first (optionally only report `name`)."""
    found = []
    for path in Path(folder).glob("*.json"):
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(summary, dict) or not isinstance(summary.get("report"), str):
            continue
        if name is None or summary["report"] == name:
            found.append(Entry(path, summary))
    return sorted(found, key=lambda e: (e.started, e.path.name))


def rows(folder: Path) -> list[dict[str, Any]]:
    """One row a report, newest first: what the index and `lab report list` show."""
    out = []
    for entry in reversed(summaries(folder)):
        headline = entry.summary.get("headline") or {}
        first = next(iter(headline.items()), None)
        out.append(
            {
                "date": entry.started,
                "report": entry.name,
                "verdict": "passed" if entry.passed else "FAILED",
                "commit": entry.commit,
                "seconds": entry.summary.get("seconds"),
                "headline": f"{first[0]}: {first[1]}" if first else "",
                "html": entry.summary.get("html"),
                "summary": str(entry.path),
            }
        )
    return out


def write_index(folder: Path) -> Path:
    """Rewrite `folder/index.html`; links are relative so the folder can be moved or served."""
    folder = Path(folder)
    e = html.escape
    body = []
    for row in rows(folder):
        badge = "pass" if row["verdict"] == "passed" else "fail"
        link = (
            f"<a href='{e(os.path.relpath(row['html'], folder))}'>{e(row['report'])}</a>"
            if row["html"]
            else e(row["report"])
        )
        summary = os.path.relpath(row["summary"], folder)
        body.append(
            f"<tr><td>{e(row['date'])}</td><td>{link}</td>"
            f"<td><span class='badge {badge}'>{e(row['verdict'])}</span></td>"
            f"<td><code>{e(row['commit'])}</code></td><td>{e(str(row['seconds']))} s</td>"
            f"<td>{e(row['headline'])}</td><td><a href='{e(summary)}'>json</a></td></tr>"
        )
    empty = "<tr><td colspan='7'>no reports yet: <code>lab report NAME</code></td></tr>"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lab reports</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .3em .8em; text-align: left;
  border-bottom: 1px solid #eaecf0; }}
.badge {{ padding: .1em .6em; border-radius: 4px; color: white; font-weight: 600; }}
.badge.pass {{ background: #067647; }} .badge.fail {{ background: #b42318; }}
</style></head><body>
<h1>lab reports</h1>
<p>Newest first. <code>lab report compare --last 2 NAME</code> puts the two newest of a drill
side by side.</p>
<table><tr><th>date (UTC)</th><th>report</th><th>verdict</th><th>commit</th><th>took</th>
<th>headline</th><th></th></tr>
{"".join(body) or empty}
</table></body></html>
"""
    path = folder / INDEX
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page)
    tmp.replace(path)  # a reader never sees half an index
    return path
