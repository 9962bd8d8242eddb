"""The HTML a reader opens: the verdict, the headline figures and the main chart on the first
screen, then the drill's narrative and outputs, with the code hidden.

The executed `.ipynb` keeps everything (code, every line a process printed); this page is for the
person who asks "did it pass, and by how much?". Process noise (what supervised processes and
libraries write to stderr: restarts, warnings) is folded under a `<details>`, never deleted, so a
reader who wants it is one click away.
"""

from __future__ import annotations

import base64
import copy
import html
import logging
from pathlib import Path
from typing import Any

import nbformat

SUMMARY_TAG = "lab-summary"

STYLE = """
<style>
.lab-summary { font-family: system-ui, sans-serif; max-width: 1100px; margin: 0 0 2em; }
.lab-summary h1 { margin: 0 0 .2em; font-size: 1.7em; }
.lab-summary .provenance { color: #475467; font-size: .9em; margin: 0 0 .8em; }
.lab-summary .verdict { display: inline-block; padding: .35em .9em; border-radius: 6px;
  font-size: 1.3em; font-weight: 700; color: white; margin: .2em 0 .6em; }
.lab-summary .verdict.pass { background: #067647; }
.lab-summary .verdict.fail { background: #b42318; }
.lab-summary table { border-collapse: collapse; margin: .3em 0 .8em; }
.lab-summary td, .lab-summary th { border-bottom: 1px solid #eaecf0; padding: .25em .8em;
  text-align: left !important; vertical-align: top; }
.lab-summary .failed td { color: #b42318; }
.lab-summary img { max-width: 100%; }
.lab-summary code { background: #f2f4f7; padding: .1em .3em; border-radius: 3px; }
details.lab-noise summary { color: #667085; cursor: pointer; }
</style>
"""


def write_html(executed: Path, summary: dict[str, Any], out: Path, show_code: bool = False) -> Path:
    """Render the executed notebook to `out` with the summary first (see the module's docstring)."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    notebook = nbformat.read(executed, as_version=4)
    notebook = fold_noise(notebook)
    notebook.cells.insert(0, summary_cell(summary, show_code))
    exporter = HTMLExporter(
        exclude_input=not show_code, exclude_input_prompt=True, exclude_output_prompt=True
    )
    # Its accessibility check warns of every matplotlib image without alt text: noise here.
    exporter.log = logging.getLogger("lab.report.html")
    exporter.log.setLevel(logging.ERROR)
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_input_tags={SUMMARY_TAG}, remove_cell_tags=set()),
        enabled=True,
    )
    body, _ = exporter.from_notebook_node(notebook)
    out.write_text(body)
    return out


def fold_noise(notebook: Any) -> Any:
    """A copy with every stderr stream folded into a collapsed `<details>` holding all of it."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = output.get("text", "")
                lines = text.count("\n") + (not text.endswith("\n"))
                outputs.append(
                    nbformat.v4.new_output(
                        "display_data",
                        data={
                            "text/html": (
                                f"<details class='lab-noise'><summary>process output, {lines} "
                                f"line{'s' if lines != 1 else ''}</summary>"
                                f"<pre>{html.escape(text)}</pre></details>"
                            ),
                            "text/plain": text,
                        },
                    )
                )
            else:
                outputs.append(output)
        cell["outputs"] = outputs
    return notebook


def summary_cell(summary: dict[str, Any], show_code: bool) -> Any:
    cell = nbformat.v4.new_code_cell(source="", metadata={"tags": [SUMMARY_TAG]})
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/html": summary_html(summary, show_code), "text/plain": "summary"},
        )
    ]
    return cell


def summary_html(summary: dict[str, Any], show_code: bool = False) -> str:
    e = html.escape
    name = summary.get("report", "report")
    passed = bool(summary.get("passed"))
    verdicts = summary.get("verdicts") or []
    failed = [v for v in verdicts if not v.get("passed")]
    verdict = (
        f"<div class='verdict {'pass' if passed else 'fail'}' id='lab-verdict'>"
        f"{'PASSED' if passed else 'FAILED'}: {len(verdicts) - len(failed)} of {len(verdicts)} "
        "checks</div>"
    )
    parts = [STYLE, "<section class='lab-summary'>", f"<h1>lab report: {e(name)}</h1>"]
    parts.append(f"<p class='provenance'>{provenance_line(summary)}</p>")
    parts.append(verdict)
    if summary.get("error"):
        parts.append(f"<pre class='error'>{e(str(summary['error']))}</pre>")
    if failed:
        rows = "".join(
            f"<tr class='failed'><td>{e(str(v['check']))}</td><td>expected {e(str(v['expected']))}"
            f"</td><td>observed {e(str(v['observed']))}</td></tr>"
            for v in failed
        )
        parts.append(f"<table class='failed-checks'>{rows}</table>")
    headline = summary.get("headline") or {}
    if headline:
        rows = "".join(
            f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in headline.items()
        )
        parts.append(f"<table class='headline'>{rows}</table>")
    chart = summary.get("chart")
    if chart and Path(chart).is_file():
        encoded = base64.b64encode(Path(chart).read_bytes()).decode()
        parts.append(f"<img alt='{e(name)}: main chart' src='data:image/png;base64,{encoded}'>")
    parts.append(details(summary, show_code))
    parts.append("</section>")
    return "".join(parts)


def provenance_line(summary: dict[str, Any]) -> str:
    e = html.escape
    git = summary.get("git") or {}
    commit = git.get("commit")
    code = (
        f"commit <code>{e(commit[:12])}</code>{' (dirty tree)' if git.get('dirty') else ''}"
        if commit
        else "no git commit (not a git checkout)"
    )
    machine = summary.get("machine") or {}
    return (
        f"{e(str(summary.get('startedAt', '')))} · {code} · {summary.get('seconds', '?')} s · "
        f"{machine.get('cpus', '?')} CPUs, {machine.get('memoryGiB', '?')} GiB"
        f"<br>rerun: <code>{e(str(summary.get('rerun', '')))}</code>"
    )


def details(summary: dict[str, Any], show_code: bool) -> str:
    import json

    e = html.escape
    shown = {
        "parameters": summary.get("parameters"),
        "git": summary.get("git"),
        "versions": summary.get("versions"),
        "machine": summary.get("machine"),
    }
    notebook = e(Path(str(summary.get("notebook", ""))).name)
    note = (
        "The code is shown below each heading."
        if show_code
        else f"The code is hidden here; it is in <code>{notebook}</code>, and "
        "<code>--show-code</code> puts it in this page."
    )
    return (
        "<details><summary>parameters, versions, machine</summary>"
        f"<pre>{e(json.dumps(shown, indent=2, default=str))}</pre></details>"
        f"<p class='provenance'>{note}</p>"
    )
