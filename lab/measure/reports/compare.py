"""`lab report compare`: every figure of two (or more) runs of a drill side by side, with the
change and a verdict per figure, so "did this change make recovery slower?" has an answer.

Each figure is judged by its declaration in `lab.measure.figures.FIGURES`: which direction is
better, and whether it is exact (a lost job, a failed check: one is a regression) or noisy (a
rate, a latency, a recovery time). A noisy figure is judged as experiments judge it
(`lab.stats`), from the spread of the baselines: with two or more (`--last 5 resilience`, or
several files before the newest), the new value is "same" inside their 95 % prediction interval
(never narrower than the figure's absolute resolution), else improved or regressed; with a single
baseline nothing says how much the same code varies, so the verdict is "cannot tell" rather than
noise called a regression. Figures with no direction (parameters, counts of work) are shown and
called "changed"; so is a figure declared nowhere, and its tolerance says so (nothing is guessed
from a figure's name).
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import pandas as pd

from lab.measure.figures import Figure, figure_of
from lab.measure.reports.index import Entry, summaries

ID_FIELDS = ("fault", "service", "workers", "offeredPerSecond", "name", "check")
MAX_SERIES = 20  # longer lists of numbers are samples, not figures


class CompareError(ValueError):
    """The summaries cannot be compared; the message says why."""


def rule_for(path: str) -> type[Figure]:
    """How the figure at `path` is judged: its declaration, or `Undeclared`."""
    return figure_of(path)


def flatten(value: Any, prefix: str = "") -> dict[str, float]:
    """Every number in a summary's figures, by a readable path (`faults[restart the API].
    recoverySeconds`): list items are named by their identifying field where they have one."""
    out: dict[str, float] = {}
    if isinstance(value, bool):
        out[prefix] = float(value)
    elif isinstance(value, int | float):
        if math.isfinite(value):
            out[prefix] = float(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and value:
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        if numbers and len(value) > MAX_SERIES:
            return out
        for number, item in enumerate(value):
            label = str(number)
            if isinstance(item, dict):
                label = next((str(item[f]) for f in ID_FIELDS if f in item), label)
            out.update(flatten(item, f"{prefix}[{label}]"))
    return out


def figures_of(summary: dict[str, Any]) -> dict[str, float]:
    found = flatten(summary.get("figures") or {})
    found["passed"] = float(bool(summary.get("passed")))
    return found


@dataclass
class Comparison:
    table: pd.DataFrame
    baselines: list[Entry]
    candidate: Entry

    @property
    def regressions(self) -> pd.DataFrame:
        return self.table[self.table["verdict"] == "regressed"]

    @property
    def regressed(self) -> bool:
        return not self.regressions.empty

    @property
    def undecided(self) -> pd.DataFrame:
        """Noisy figures a single baseline cannot judge."""
        return self.table[self.table["verdict"] == "cannot tell"]


def compare(baselines: list[Entry], candidate: Entry) -> Comparison:
    """Compare `candidate` with the median of `baselines` (one or more runs of the same drill)."""
    if not baselines:
        raise CompareError("compare needs at least two summaries")
    names = {e.name for e in (*baselines, candidate)}
    if len(names) > 1:
        raise CompareError(
            f"these are reports of different drills ({', '.join(sorted(names))}); "
            "compare runs of one drill"
        )
    before = [figures_of(e.summary) for e in baselines]
    after = figures_of(candidate.summary)
    paths = list(dict.fromkeys([p for f in before for p in f] + list(after)))
    rows = []
    for path in paths:
        seen = [f[path] for f in before if path in f]
        rows.append(_row(path, seen, after.get(path), rule_for(path)))
    table = pd.DataFrame(
        rows,
        columns=["figure", "before", "after", "change", "tolerance", "verdict"],
    )
    return Comparison(table, baselines, candidate)


def _row(path: str, seen: list[float], b: float | None, rule: type[Figure]) -> dict[str, Any]:
    a = median(seen) if seen else None
    tolerance = rule.stated()
    if a is None or b is None:
        verdict = "only before" if b is None else "only after"
        return {"figure": path, "before": a, "after": b, "change": None,
                "tolerance": tolerance, "verdict": verdict}  # fmt: skip
    delta = b - a
    allowed = 0.0 if rule.exact() else rule.absolute
    if rule.better is not None and not rule.exact() and delta != 0:
        if len(seen) < 2:
            return {"figure": path, "before": a, "after": b, "change": _change(delta, a),
                    "tolerance": "one baseline: no spread to judge by",
                    "verdict": "cannot tell"}  # fmt: skip
        from lab.stats import prediction_halfwidth

        a = sum(seen) / len(seen)
        delta = b - a
        allowed = max(prediction_halfwidth(seen), rule.absolute)
        tolerance = f"±{allowed:.4g} (95 % prediction from {len(seen)} runs)"
    if abs(delta) <= allowed + 1e-9:
        verdict = "same"
    elif rule.better is None:
        verdict = "changed"
    elif (delta > 0) == (rule.better == "higher"):
        verdict = "improved"
    else:
        verdict = "regressed"
    return {"figure": path, "before": a, "after": b, "change": _change(delta, a),
            "tolerance": tolerance, "verdict": verdict}  # fmt: skip


def _change(delta: float, a: float) -> str:
    return f"{delta:+.4g}" + (f" ({delta / abs(a):+.0%})" if a else "")


def runs_table(comparison: Comparison) -> pd.DataFrame:
    """Who is being compared: date, commit, verdict, machine, parameters of each run."""
    rows = []
    for role, entry in [*(("before", e) for e in comparison.baselines),
                        ("after", comparison.candidate)]:  # fmt: skip
        s = entry.summary
        params = {k: v for k, v in (s.get("parameters") or {}).items() if k != "SUMMARY_PATH"}
        machine = s.get("machine") or {}
        rows.append(
            {
                "run": role,
                "date": entry.started,
                "commit": entry.commit,
                "verdict": "passed" if entry.passed else "FAILED",
                "machine": f"{machine.get('hostname', '?')}, {machine.get('cpus', '?')} CPUs",
                "parameters": " ".join(f"{k}={v}" for k, v in params.items()) or "defaults",
                "summary": entry.path.name,
            }
        )
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub table (pandas' own `to_markdown` needs another package for this one job)."""

    def cell(value: Any) -> str:
        return text(value).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([head, rule, *body])


def text(value: Any) -> str:
    """A table cell: empty for a missing figure, six significant digits for a float."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def write(comparison: Comparison, folder: Path) -> tuple[Path, Path]:
    """`compare-NAME-<after>-vs-<before>.md` and `.html` in `folder`; the HTML has both charts."""
    folder.mkdir(parents=True, exist_ok=True)
    before, after = comparison.baselines[-1], comparison.candidate
    stem = f"compare-{after.name}-{_stamp(after)}-vs-{_stamp(before)}"
    verdict = _verdict_line(comparison)
    runs, table = runs_table(comparison), comparison.table
    md_path = folder / f"{stem}.md"
    md_path.write_text(
        f"# Compare {after.name}: {verdict}\n\n{markdown(runs)}\n\n{markdown(table)}\n"
    )
    charts = "".join(
        f"<figure><figcaption>{html.escape(role)}: {html.escape(e.started)} "
        f"({html.escape(e.commit)})</figcaption>{_chart(e)}</figure>"
        for role, e in (("before", before), ("after", after))
    )
    styled = table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.6g}", escape=True)
    styled = re.sub(
        r"<td>(regressed|improved)</td>", lambda m: f"<td class='{m[1]}'>{m[1]}</td>", styled
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(stem)}</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }} td, th {{ padding: .25em .7em;
  border-bottom: 1px solid #eaecf0; text-align: left; }}
.regressed {{ color: #b42318; font-weight: 700; }} .improved {{ color: #067647; font-weight: 700; }}
.charts {{ display: flex; gap: 1em; }} .charts figure {{ flex: 1; margin: 0; }}
.charts img {{ max-width: 100%; }}</style></head><body>
<h1>Compare {html.escape(after.name)}: {html.escape(verdict)}</h1>
{runs.to_html(index=False, escape=True)}
<div class="charts">{charts}</div>
{styled}
</body></html>
"""
    html_path = folder / f"{stem}.html"
    html_path.write_text(page)
    return md_path, html_path


def _verdict_line(comparison: Comparison) -> str:
    counts = comparison.table["verdict"].value_counts()
    return ", ".join(
        f"{counts.get(v, 0)} {v}" for v in ("regressed", "improved", "same", "changed")
    )


def _stamp(entry: Entry) -> str:
    return entry.path.stem.rsplit("-", 1)[-1]


def _chart(entry: Entry) -> str:
    chart = entry.summary.get("chart")
    if chart and Path(chart).is_file():
        encoded = base64.b64encode(Path(chart).read_bytes()).decode()
        return f"<img alt='main chart' src='data:image/png;base64,{encoded}'>"
    return "<p>(no chart in this summary)</p>"


def load(path: Path) -> Entry:
    """A summary by its path; the report's `.html`, `.ipynb` or `.png` name it too."""
    path = Path(path)
    if path.suffix in (".html", ".ipynb", ".png"):
        path = path.with_suffix(".json")
    if not path.is_file():
        raise CompareError(f"no report summary at {path}")
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CompareError(f"{path} is not a readable JSON summary ({exc})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("report"), str):
        raise CompareError(f"{path} is not a lab report summary (it names no report)")
    return Entry(path, summary)


def last(folder: Path, name: str, count: int) -> list[Entry]:
    """The `count` newest reports of drill `name` in `folder`, oldest first."""
    if count < 2:
        raise CompareError("--last needs at least 2 reports to compare")
    found = summaries(folder, name)
    if len(found) < count:
        raise CompareError(
            f"{folder} holds {len(found)} {name} report(s); --last {count} needs {count}"
        )
    return found[-count:]
