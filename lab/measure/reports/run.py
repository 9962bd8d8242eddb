"""`lab report NAME`: a drill notebook run as a reproducible report.

    reports/NAME-<timestamp>.ipynb    the executed notebook (papermill), parameters injected
    reports/NAME-<timestamp>.html     verdict, headline figures and main chart first, code hidden
    reports/NAME-<timestamp>.json     figures, verdicts and provenance (commit, rerun command,
                                      parameters, versions, machine)
    reports/NAME-<timestamp>.png      the main chart (`lab report compare` shows two side by side)
    reports/index.html                every report in the folder, newest first

The notebook computes its figures and verdicts and writes them to `SUMMARY_PATH` (a parameter this
command injects, see `lab.measure.drill.save_summary`); this command adds what is needed to rerun
and compare the report, and exits non-zero when the notebook failed or a verdict did.
"""

from __future__ import annotations

import ast
import difflib
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.config import Settings, kernel_env, project_root
from lab.extras import require
from lab.measure.reports import REPORTS, provenance
from lab.measure.reports.index import write_index
from lab.measure.reports.page import write_html


class ReportError(RuntimeError):
    """The report could not be made; the message says why."""


@dataclass
class Report:
    notebook: Path
    html: Path | None
    summary_path: Path
    summary: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.summary.get("passed"))


def notebook_path(name: str) -> Path:
    path = project_root(Path(__file__).parent) / "notebooks" / f"{name}.ipynb"
    if not path.is_file():
        raise ReportError(f"no notebook {path.name}; choose from {', '.join(REPORTS)}")
    return path


def parameters_of(name: str) -> dict[str, Any]:
    """The drill's parameters and their defaults, read from its notebook's `parameters` cell
    (the cell papermill injects into), so a misspelt `-p` is refused before minutes are spent
    on the defaults. Values that are not literals are shown as their source."""
    cells = json.loads(notebook_path(name).read_text())["cells"]
    for cell in cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell["source"]))
            found: dict[str, Any] = {}
            for node in tree.body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    try:
                        found[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        found[node.targets[0].id] = ast.unparse(node.value)
            return found
    return {}


def check_parameters(name: str, given: dict[str, Any]) -> None:
    """Every name in `given` is a parameter of the drill; else a `ReportError` naming the valid
    ones (and the nearest). A `TARGET` must be a target this machine can drive."""
    known = [k for k in parameters_of(name) if k != "SUMMARY_PATH"]
    for key in given:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise ReportError(
                f"{name} has no parameter {key!r}{hint}; its parameters: {', '.join(known)}"
            )
    if "TARGET" in given:
        _check_target(name, given["TARGET"])


def _check_target(name: str, value: Any) -> None:
    """A drill's `TARGET` (whose workers it drives) is one this machine can drive: else one
    line naming the targets, or what the target lacks here."""
    from lab.measure.delivery import check
    from lab.targets import TargetError

    try:
        check(value)
    except TargetError as exc:
        raise ReportError(
            f"{name}: TARGET {value!r}: {str(exc).removeprefix('target: ')}"
        ) from None


def run_report(
    name: str,
    parameters: dict[str, Any],
    settings: Settings,
    out_dir: Path = Path("reports"),
    show_code: bool = False,
) -> Report:
    require("papermill", "notebook", "lab report")
    require("nbconvert", "notebook", "lab report")
    source = notebook_path(name)
    check_parameters(name, parameters)
    out_given, out_dir = str(out_dir), out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = out_dir / f"{name}-{stamp}"
    executed, summary_path = base.with_suffix(".ipynb"), base.with_suffix(".json")
    values = {**parameters, "SUMMARY_PATH": str(summary_path)}
    argv = [sys.executable, "-m", "papermill", str(source), str(executed), "--cwd",
            str(source.parent), "--kernel", "python3", "--no-progress-bar"]  # fmt: skip
    for key, value in values.items():
        argv += ["-y", json.dumps({key: value})]
    # Provenance is taken before the run: the commit and tree are what the drill ran.
    root = project_root(Path(__file__).parent)
    code = provenance.git(root)
    started = datetime.now(UTC)
    done = subprocess.run(
        argv, env=kernel_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
    if done.returncode != 0:
        summary["passed"] = False
        summary["error"] = _last_error(done.stderr)
    chart = summary_path.with_suffix(".png")
    summary.update(
        {
            "report": name,
            "parameters": values,
            "startedAt": started.isoformat(timespec="seconds"),
            "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
            "notebook": str(executed),
            "chart": str(chart) if chart.is_file() else None,
            "git": code,
            "rerun": provenance.rerun_command(name, parameters, show_code, out_given),
            "versions": provenance.versions(settings),
            "machine": provenance.machine(),
        }
    )
    summary.setdefault("passed", False)
    html_path: Path | None = None
    if executed.is_file():
        try:
            html_path = write_html(executed, summary, base.with_suffix(".html"), show_code)
        except Exception as exc:  # noqa: BLE001 - the notebook and summary still stand without it
            summary["htmlError"] = f"{type(exc).__name__}: {exc}"
    summary["html"] = str(html_path) if html_path else None
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    write_index(out_dir)
    return Report(executed, html_path, summary_path, summary)


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "\n".join(lines[-15:])
