"""What a folder of capacity searches answers, as capacity.json: pure.

    {"jobsPerSecond": {"low": 47.6, "high": 51.1}, "objectives": [...], "probes": 9,
     "verdict": "sustains 49.3 jobs/s (47.6–51.1) at queueWait.p99 < 250 ms",
     "searches": [{"levels": {...}, "jobsPerSecond": {...}, "probes": 9, "done": true, ...}],
     "usl": {...}, "faults": [...]}

The top-level interval is the search's when there is one, else the highest capacity found
(`at` names its levels). `usl` is there when `workers` (or else `concurrency`) has two or more
levels: the law fitted to the capacities at each, for the first group of the other factors'
levels (`uslByGroup` has every group). `faults` is there when `fault` varies: each preset's
capacity as a share of the healthy one (`none`) with the same other levels, its interval from
the two intervals' ends (the lowest share: faulty low over healthy high).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lab.capacity import bracket
from lab.capacity.plan import bounds_of, configurations, probes_of
from lab.experiment.spec import Spec
from lab.runtime import slo

SCALING = ("workers", "concurrency")


def short(objective: slo.Objective) -> str:
    """An objective as a verdict names it: `endToEnd.p99 < 500 ms`, `throughput > 0.95`."""
    limit = f"{objective.limit:g}"
    if objective.is_latency or objective.metric == slo.HEAD_AGE:
        return f"{objective.metric.removesuffix('Ms')} < {limit} ms"
    return f"{objective.metric} {'>' if objective.higher_is_better else '<'} {limit}"


def rate_text(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def sentence(low: float | None, high: float | None, objectives: Sequence[slo.Objective]) -> str:
    """ "sustains 1,840 jobs/s (1,790–1,880) at endToEnd.p99 < 500 ms"."""
    held = " and ".join(short(o) for o in objectives)
    if low is None and high is None:
        return "no probe has a verdict yet"
    if low is None:
        return f"sustains less than {rate_text(high or 0)} jobs/s at {held}"
    if high is None:
        return f"sustains at least {rate_text(low)} jobs/s at {held} (nothing broke)"
    middle = (low + high) / 2
    return f"sustains {rate_text(middle)} jobs/s ({rate_text(low)}–{rate_text(high)}) at {held}"


def of(spec: Spec, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """capacity.json from the spec and every probe's row so far."""
    objectives = slo.parse(spec.slo)
    bounds = bounds_of(spec)
    searches: list[dict[str, Any]] = []
    for c, levels in sorted(configurations(spec)):
        probes = probes_of(rows, c)
        low, high = bracket.interval(probes, bounds.repetitions)
        step = bracket.decide(probes, bounds)
        errors = [r["error"] for r in rows if int(r["configuration"]) == c and r.get("error")]
        searches.append({"configuration": c, "levels": levels,
                         "jobsPerSecond": {"low": low, "high": high}, "probes": len(probes),
                         "done": step.done, "why": step.why, "errors": len(errors),
                         "verdict": sentence(low, high, objectives)})  # fmt: skip
    found = [s for s in searches if s["jobsPerSecond"]["low"] is not None]
    best = max(found, key=lambda s: s["jobsPerSecond"]["low"]) if found else searches[0]
    out: dict[str, Any] = {
        "jobsPerSecond": best["jobsPerSecond"],
        "objectives": [o.as_json() for o in objectives],
        "probes": sum(s["probes"] for s in searches),
        "verdict": best["verdict"],
        "searches": searches,
    }
    if len(searches) > 1:
        out["at"] = best["levels"]
        at = ", ".join(f"{k}={v}" for k, v in best["levels"].items())
        out["verdict"] = f"{best['verdict']}, with {at}"
    scaling = next((f for f in SCALING if len(spec.factors.get(f, [])) >= 2), None)
    if scaling is not None:
        fits = scalability(searches, scaling)
        if fits:
            out["usl"] = fits[0]
            out["uslByGroup"] = fits
    if len(spec.factors.get("fault", [])) >= 2 and "none" in spec.factors["fault"]:
        out["faults"] = faults(searches)
    return out


def _others(levels: dict[str, Any], leave: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in levels.items() if k != leave))


def scalability(searches: list[dict[str, Any]], factor: str) -> list[dict[str, Any]]:
    """The law fitted per group of the other factors' levels, where two or more N have a
    capacity (`lab.capacity.usl`)."""
    from lab.capacity import usl

    groups: dict[tuple[tuple[str, str], ...], list[dict[str, Any]]] = {}
    for s in searches:
        groups.setdefault(_others(s["levels"], factor), []).append(s)
    out = []
    for members in groups.values():
        known = sorted((s for s in members if s["jobsPerSecond"]["low"] is not None),
                       key=lambda s: s["levels"][factor])  # fmt: skip
        if len({s["levels"][factor] for s in known}) < 2:
            continue
        n = [float(s["levels"][factor]) for s in known]
        lows = [s["jobsPerSecond"]["low"] for s in known]
        highs = [s["jobsPerSecond"]["high"] for s in known]
        group = {k: v for k, v in known[0]["levels"].items() if k != factor}
        out.append({"factor": factor, "group": group, **usl.model(n, lows, highs)})
    return out


def faults(searches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each fault preset's capacity as a share of the healthy one with the same other levels."""
    healthy = {_others(s["levels"], "fault"): s["jobsPerSecond"] for s in searches
               if s["levels"].get("fault") == "none"}  # fmt: skip
    out = []
    for s in searches:
        fault = s["levels"].get("fault")
        base = healthy.get(_others(s["levels"], "fault"))
        if fault in (None, "none") or base is None:
            continue
        mine = s["jobsPerSecond"]
        share = None
        if None not in (mine["low"], mine["high"], base["low"], base["high"]):
            middle = (mine["low"] + mine["high"]) / (base["low"] + base["high"])
            share = {"share": round(middle, 4), "low": round(mine["low"] / base["high"], 4),
                     "high": round(mine["high"] / base["low"], 4)}  # fmt: skip
        text = (f"under {fault} the pipeline sustains {share['share']:.0%} ({share['low']:.0%}"
                f"–{share['high']:.0%}) of its healthy capacity" if share else
                f"under {fault}: not enough probes to compare")  # fmt: skip
        out.append({"fault": fault, "levels": s["levels"], "jobsPerSecond": mine,
                    "healthy": base, "shareOfHealthy": share, "verdict": text})  # fmt: skip
    return out
