"""The curves capacity is read from, drawn with matplotlib (the report notebook and any notebook):

- `knee`: achieved against offered with the 1:1 line (a pipeline that keeps up stays on it), the
  objectives' latency against offered with each objective's limit, and the failure ratio; each
  probe held (●) or broke (×); the capacity found shaded;
- `latency`: one search's queue wait, service and end to end, p50 and p99, against offered;
- `scalability`: the capacity at each N with its interval, the fitted law, linear scaling from
  N = 1, the peak and the prediction at twice the largest N;
- `faults`: each fault preset's capacity as a share of the healthy one, with its interval.

Each takes what `lab.capacity.load` returns (`probes`, `answer`) and returns its figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lab.capacity.answer import short
from lab.runtime import slo

COLORS = ("#2e90fa", "#f79009", "#12b76a", "#9e77ed", "#f04438", "#667085")
METRICS = ("queueWait", "service", "endToEnd")


def _searches(probes: Any, answer: dict[str, Any]) -> list[tuple[dict[str, Any], Any, str]]:
    """(search, its probes that have a verdict, its colour), in the answer's order."""
    ok = probes[probes["error"].fillna("") == ""] if "error" in probes else probes
    out = []
    for i, search in enumerate(answer["searches"]):
        mine = ok[ok["configuration"] == search["configuration"]].sort_values("rate")
        out.append((search, mine, COLORS[i % len(COLORS)]))
    return out


def _label(search: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in search["levels"].items()) or "the pipeline"


def _marks(ax: Any, mine: Any, y: str, color: str, label: str | None = None) -> None:
    held = mine[mine["held"].astype(bool)]
    broke = mine[~mine["held"].astype(bool)]
    ax.plot(mine["offeredPerSecond"], mine[y], color=color, alpha=0.5, label=label)
    ax.scatter(held["offeredPerSecond"], held[y], color=color, marker="o", zorder=3)
    ax.scatter(broke["offeredPerSecond"], broke[y], color=color, marker="x", zorder=3)


def _capacity(ax: Any, search: dict[str, Any], color: str) -> None:
    found = search["jobsPerSecond"]
    if found["low"] is not None and found["high"] is not None:
        ax.axvspan(found["low"], found["high"], color=color, alpha=0.15)
    elif found["low"] is not None:
        ax.axvline(found["low"], color=color, linestyle=":")


def _finished(fig: Any, ax: Any, x: str, y: str) -> Any:
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def knee(probes: Any, answer: dict[str, Any]) -> Any:
    """Achieved vs offered, the objectives' latency vs offered, failures vs offered."""
    import matplotlib.pyplot as plt

    objectives = slo.parse(answer["objectives"])
    latencies = [o for o in objectives if o.is_latency]
    shown = [o.metric.partition(".")[0] for o in latencies] or ["endToEnd"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    top = 0.0
    for search, mine, color in _searches(probes, answer):
        if mine.empty:
            continue
        top = max(top, float(mine["offeredPerSecond"].max()))
        _marks(axes[0], mine, "achievedPerSecond", color, _label(search))
        for metric in dict.fromkeys(shown):
            _marks(axes[1], mine, f"{metric}.p99Ms", color)
        _marks(axes[2], mine, "failedRatio", color)
        for ax in axes:
            _capacity(ax, search, color)
    axes[0].plot([0, top * 1.05], [0, top * 1.05], color="#98a2b3", linestyle="--", label="1:1")
    axes[0].set_ylabel("achieved, jobs/s")
    axes[0].set_title("throughput: on the 1:1 line while it keeps up")
    axes[0].legend(fontsize=8)
    for objective in latencies:
        axes[1].axhline(objective.limit, color="#b42318", linestyle="--", linewidth=1)
        axes[1].annotate(short(objective), (0.02, objective.limit), fontsize=8, va="bottom",
                         xycoords=("axes fraction", "data"), color="#b42318")  # fmt: skip
    axes[1].set_yscale("log")
    axes[1].set_ylabel(f"{' / '.join(dict.fromkeys(shown))} p99, ms")
    axes[1].set_title("latency over the step, the objective dashed")
    axes[2].set_ylabel("failed / settled")
    axes[2].set_title("failures over the step")
    for ax in axes:
        ax.set_xlabel("offered, jobs/s")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def latency(probes: Any, answer: dict[str, Any], configuration: int) -> Any:
    """One search's three latencies, p50 (dashed) and p99, against offered."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for search, mine, _ in _searches(probes, answer):
        if search["configuration"] != configuration or mine.empty:
            continue
        for metric, color in zip(METRICS, COLORS, strict=False):
            x = mine["offeredPerSecond"]
            ax.plot(x, mine[f"{metric}.p99Ms"], color=color, marker="o", label=f"{metric} p99")
            ax.plot(x, mine[f"{metric}.p50Ms"], color=color, linestyle="--", label=f"{metric} p50")
        _capacity(ax, search, "#667085")
        ax.set_title(f"latency: {_label(search)}")
    ax.set_yscale("log")
    return _finished(fig, ax, "offered, jobs/s", "ms")


def scalability(answer: dict[str, Any]) -> Any:
    """The capacities at each N, the fitted law and what it predicts (None without a fit)."""
    import matplotlib.pyplot as plt

    from lab.capacity.usl import Fit

    fits = answer.get("uslByGroup") or []
    if not fits:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for fit, color in zip(fits, COLORS, strict=False):
        factor, group = fit["factor"], fit["group"]
        mine = [s for s in answer["searches"]
                if {k: v for k, v in s["levels"].items() if k != factor} == group
                and s["jobsPerSecond"]["low"] is not None]  # fmt: skip
        n = np.array([float(s["levels"][factor]) for s in mine])
        low = np.array([s["jobsPerSecond"]["low"] for s in mine], dtype=float)
        high = np.array([s["jobsPerSecond"]["high"] or s["jobsPerSecond"]["low"] for s in mine],
                        dtype=float)  # fmt: skip
        middle = (low + high) / 2
        named = ", ".join(f"{k}={v}" for k, v in group.items()) or "found"
        ax.errorbar(n, middle, yerr=[middle - low, high - middle], fmt="o", color=color,
                    capsize=5, label=named)  # fmt: skip
        law = Fit(fit["lambda"]["value"], fit["sigma"]["value"], fit["kappa"]["value"])
        reach = fit["predicted"]["n"]
        span = np.linspace(1, max(reach, fit["peakN"]["value"] or 0) * 1.05, 200)
        ax.plot(span, law.at(span), color=color)
        ax.plot(span, law.lam * span, color=color, linestyle=":", alpha=0.6)
        p = fit["predicted"]["jobsPerSecond"]
        below, above = p["value"] - (p["low"] or p["value"]), (p["high"] or p["value"]) - p["value"]
        ax.errorbar([reach], [p["value"]], yerr=[[below], [above]], fmt="s", color=color,
                    mfc="white", capsize=5)  # fmt: skip
        if fit["peakN"]["value"]:
            ax.axvline(fit["peakN"]["value"], color=color, linestyle="--", alpha=0.5)
    ax.set_title("scalability: found (●), the law (line), linear (dotted), predicted (□)")
    return _finished(fig, ax, fits[0]["factor"], "capacity, jobs/s")


def faults(answer: dict[str, Any]) -> Any:
    """Each fault preset's share of the healthy capacity (None when no fault was searched)."""
    import matplotlib.pyplot as plt

    rows = [f for f in answer.get("faults", []) if f["shareOfHealthy"]]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(rows) + 1.5))
    names = [", ".join(f"{k}={v}" for k, v in f["levels"].items()) for f in rows]
    share = np.array([f["shareOfHealthy"]["share"] for f in rows]) * 100
    low = np.array([f["shareOfHealthy"]["low"] for f in rows]) * 100
    high = np.array([f["shareOfHealthy"]["high"] for f in rows]) * 100
    ax.barh(names, share, xerr=[share - low, high - share], color="#f79009", capsize=5)
    ax.axvline(100, color="#98a2b3", linestyle="--")
    ax.set_xlabel("% of the healthy capacity")
    ax.set_title("capacity under each fault")
    fig.tight_layout()
    return fig
