"""The panel's charts as PNG images, drawn with matplotlib from what `charts` computed.

Apart from the panel so that drawing, the slow part (tens of ms a chart), is one thing in one
place: `charts` decides what to draw as numbers, `markup` the HTML around it, this module only
how it looks. matplotlib is imported when a chart is first drawn, not when the panel is.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from lab.views.charts import Progress

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLANNED = "#98a2b3"


def planned_png(ts: list[float], ys: list[float]) -> bytes:
    """Before a run: the shape's planned Y(t), in jobs per minute."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 2.0), dpi=100)
    ax = fig.add_subplot()
    ax.plot(ts, ys, color="#667085", linestyle="--", label="planned Y")
    ax.set_xlabel("seconds")
    ax.set_ylabel("jobs / min")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return _png(fig)


def progress_png(data: Progress) -> bytes:
    """A run so far: jobs planned, released and processed; jobs a second; end-to-end latency."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    total, rate, spent = fig.subplots(3, 1, sharex=True, height_ratios=(3, 2, 2))
    if data.planned:
        # Known at each second's end; the shape between them is drawn as a straight line.
        total.plot(data.planned_t, data.planned, color=PLANNED, linestyle="--", label="planned")
    total.plot(data.t, data.released, label="released")
    total.plot(data.t, data.processed, label="processed")
    _axis(total, "jobs")
    total.set_xlim(left=0)
    total.legend(loc="upper left", fontsize=8)
    if data.rate_t:
        rate.step(data.rate_t, data.planned_rate, where="pre", color=PLANNED,
                  linestyle="--", label="planned")  # fmt: skip
        rate.step(data.rate_t, data.released_rate, where="pre", label="released")
        rate.step(data.rate_t, data.processed_rate, where="pre", label="processed")
    _axis(rate, "jobs / s")
    if data.latency_t:
        spent.plot(data.latency_t, data.p50_ms, marker=".", label="end to end p50")
        spent.plot(data.latency_t, data.p99_ms, marker=".", label="p99")
        spent.legend(loc="upper left", fontsize=8)
    _axis(spent, "ms")
    spent.set_xlabel("seconds since the run started")
    return _png(fig)


def _axis(ax: Any, label: str) -> None:
    ax.set_ylabel(label)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
