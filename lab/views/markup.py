"""The HTML the notebook panel shows, built so that data cannot become markup.

A run id, a state, an objective's text, a worker's id, an error: each came from a user, a file
or a service, and reaches an ipywidgets `HTML` widget, which the browser renders. `html_of`
takes lab's own template and escapes every value placed into it (`html.escape`), so a
`<script>` in a run's objective shows as text; HTML lab built itself (`Markup`) is placed as is.
Pure: no widgets, no I/O (`lab/views/panel.py` puts these into its widgets).

    html_of("run <code>{}</code>", run_id)
"""

from __future__ import annotations

import html
import string
from collections.abc import Mapping, Sequence
from typing import Any

from lab.views.charts import count, number

WARN = "color:#b42318"
MUTED = "color:#667085"
NUM = "style='text-align:right; padding-left:18px'"


class Markup(str):
    """HTML lab built (from `html_of`): placed into more HTML as it is."""


class _Escaping(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Markup):
            return value
        try:
            text = format(value, format_spec)
        except (TypeError, ValueError):  # text where a number was expected: shown as text
            text = str(value)
        return html.escape(text)


_ESCAPING = _Escaping()


def html_of(template: str, *values: Any, **named: Any) -> Markup:
    """`template` (lab's own HTML, `str.format` fields) with every value escaped."""
    return Markup(_ESCAPING.vformat(template, values, named))


def joined(separator: str, parts: Sequence[Markup]) -> Markup:
    return Markup(separator.join(parts))


def warning(message: str | None) -> Markup:
    """The panel's message line: a warning sign and the message, or nothing."""
    return html_of('<span style="{}">⚠ {}</span>', WARN, message) if message else Markup("")


def status_line(s: Mapping[str, Any], live: bool) -> Markup:
    """The run's state, its counters, its rate, its ETA and its breached objectives."""
    if not s:
        return Markup("<i>waiting for the API…</i>")
    rates = s.get("rates") or {}
    rates = rates if isinstance(rates, Mapping) else {}
    # While running: the last seconds' rate; after: the run's average.
    key = "processedPerMinute" if s.get("running") else "averageProcessedPerMinute"
    rate = number(rates.get(key))
    left = max(0, count(s.get("xTotal")) - count(s.get("processed")))
    eta = f"{left / rate * 60:,.0f} s" if s.get("running") and rate > 0 else "–"
    objectives = [o for o in s.get("slo") or [] if isinstance(o, Mapping)]
    target = s.get("target")  # the system under test, when it is not lab's own pipeline
    parts = [
        html_of("<b>{}</b>", s.get("state", "idle")),
        *(
            html_of('<span style="{}">breached: {}</span>', WARN, o.get("text"))
            for o in objectives
            if o.get("state") == "breached"
        ),
        html_of("run <code>{}</code>", s.get("runId") or "–"),
        *([html_of("on <b>{}</b>", target)] if target not in (None, "lab") else []),
        html_of("enqueued {:,}", count(s.get("enqueued"))),
        html_of("processed {:,}", count(s.get("processed"))),
        html_of("failed {:,}", count(s.get("failed"))),
        html_of("{:,.0f}/min", rate),
        html_of("ETA {}", eta),
        html_of('<span style="{}">{}</span>', MUTED, "live" if live else "polling"),
    ]
    return joined(" · ", parts)


def workers_table(workers: Sequence[Any]) -> Markup:
    """One row per live worker: its id, heartbeat age, processed, failed and running jobs."""
    rows = [wk for wk in workers if isinstance(wk, Mapping)]
    if not rows:
        return Markup("<i>no live workers</i>")
    num = Markup(NUM)
    row = ("<tr><td><code>{}</code></td><td {num}>{:.1f} s</td><td {num}>{:,}</td>"
           "<td {num}>{:,}</td><td {num}>{:,}</td></tr>")  # fmt: skip
    body = joined("", [
        html_of(row, wk.get("id"), number(wk.get("heartbeatAgeSeconds")),
                *(count(wk.get(key)) for key in ("processed", "failed", "running")), num=num)
        for wk in rows
    ])  # fmt: skip
    return html_of(
        "<table><tr><th>worker</th><th {num}>heartbeat</th><th {num}>processed</th>"
        "<th {num}>failed</th><th {num}>running</th></tr>{}</table>",
        body,
        num=num,
    )


def chart_end(last: Mapping[str, Any]) -> Markup:
    """The caption under the run's chart: where it ends, also as data attributes (the browser
    tests read the figures from there)."""
    return html_of(
        '<span class="lab-chart-last" data-released="{released}" '
        'data-processed="{processed}" data-seconds="{t:.3f}">'
        "chart ends at {t:,.1f} s: released {released:,}, processed {processed:,}</span>",
        **last,
    )
