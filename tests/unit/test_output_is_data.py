"""What users, files and services wrote reaches the terminal and the notebook as data: the CLI's
tables and lines (`lab.cli.terminal`) print Rich markup as itself, the notebook panel's HTML
(`lab.views.markup`) escapes every value, and the panel reads a number the API sent only if it
is a JSON number (never text, whatever its digits)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from rich.console import Console
from rich.text import Text

from lab.cli import terminal
from lab.cli.terminal import DataTable, say, shown
from lab.views.charts import count, epoch_s, number
from lab.views.markup import Markup, html_of, status_line, warning, workers_table

HOSTILE = ["[/]", "[bold]loud", "<script>alert(1)</script>", "[link=http://x.test]click[/link]"]


def rendered(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=400, color_system=None, highlight=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_a_table_shows_its_title_headers_and_cells_as_they_are() -> None:
    table = DataTable(title=" ".join(HOSTILE), caption="[red]caption")
    for header in HOSTILE:
        table.add_column(header)
    table.add_row(*HOSTILE)
    table.add_row(12345, None, Text("lab's own", style="green"), "\x1b]0;retitled\x07")
    text = rendered(table)
    for value in [*HOSTILE, "[red]caption", "12345", "lab's own"]:
        assert text.count(value) >= 1, (value, text)
    assert "\x1b" not in text and "retitled" in text


def test_a_table_written_to_a_pipe_keeps_every_figure_whole() -> None:
    """Rich gives a file 80 columns and cuts what does not fit (`2,51…`); `lab`'s tables are
    read from logs and pipes, so there they are as wide as they need."""
    script = (
        "from lab.cli.terminal import DataTable, out\n"
        "table = DataTable(title='latency in ms')\n"
        "for c in ['metric', *'abcdefgh']: table.add_column(c)\n"
        "table.add_row('endToEnd', *['12,345,678.9'] * 8)\n"
        "out.print(table)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    piped = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env=env, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert "endToEnd" in piped.stdout and piped.stdout.count("12,345,678.9") == 8, piped.stdout
    assert "…" not in piped.stdout


def test_a_line_places_each_value_as_data_and_raises_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = Console(file=io.StringIO(), width=400, color_system=None)
    monkeypatch.setattr(terminal, "console", out)
    say("[red]lab: run {} of {} has {:,} jobs ({:,})[/red]", *HOSTILE[:2], 12345, "[/]oops")
    say("lab: {}", HOSTILE[2], to=out)
    terminal.note(HOSTILE[3] + "\nforged line")
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "lab: run [/] of [bold]loud has 12,345 jobs ([/]oops)" in text
    assert HOSTILE[2] in text and HOSTILE[3] + " forged line" in text
    assert shown(10**5000)  # past Python's 4,300 digits an int has no str; shown anyway


def test_the_panel_s_html_escapes_every_value() -> None:
    status = {
        "state": "<b>running</b>",
        "runId": HOSTILE[2],
        "running": True,
        "xTotal": 10,
        "processed": "٣",  # an Arabic-Indic three: text, so no count
        "enqueued": 7,
        "rates": {"processedPerMinute": "²"},
        "slo": [{"state": "breached", "text": "<img src=x onerror=alert(1)>"}, "junk"],
    }
    line = status_line(status, live=True)
    assert "<script>" not in line and "<img" not in line and "<b>running" not in line
    assert "&lt;script&gt;" in line and "&lt;img src=x" in line and "processed 0" in line
    workers = [
        {"id": "<svg onload=alert(1)>", "heartbeatAgeSeconds": "soon", "processed": 3,
         "failed": "[/]", "running": "<script>x</script>"},
        "not a worker",
    ]  # fmt: skip
    table = workers_table(workers)
    assert "<svg" not in table and "<script>" not in table and "&lt;svg" in table
    assert table.count("<tr>") == 2 and "0.0 s" in table
    assert "&lt;script&gt;" in warning(HOSTILE[2]) and warning(None) == ""
    # HTML lab built is placed as is; a value is escaped even when a number was expected.
    assert html_of("<p>{}</p>", Markup("<i>x</i>")) == "<p><i>x</i></p>"
    assert html_of("{:,}", "<b>") == "&lt;b&gt;"


@pytest.mark.parametrize(
    "text", ["٣", "²", "12", "1_000", " 7", "1e3", "NaN", "Infinity", "９", "12\n"]
)
def test_a_number_the_panel_reads_is_a_json_number_not_text(text: str) -> None:
    assert count(text) == 0 and number(text) == 0.0
    assert count(json.loads(json.dumps(text))) == 0  # a JSON string stays text


def test_counts_and_figures_are_bounded() -> None:
    assert [count(v) for v in (5, 5.9, True, -1, float("nan"), 10**400, None)] == [
        5, 5, 0, 0, 0, 0, 0
    ]  # fmt: skip
    assert [number(v) for v in (1.5, float("inf"), float("nan"), 10**400, False)] == [
        1.5, 0.0, 0.0, 0.0, 0.0
    ]  # fmt: skip
    assert epoch_s("2024-01-01T00:00:0٣") is None and epoch_s(12) is None
    assert epoch_s("2024-01-01T00:00:00+00:00") == 1704067200.0
