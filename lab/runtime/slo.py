"""Service-level objectives a run declares, judged while it runs over sliding windows.

    {"metric": "endToEnd.p99", "maxMs": 2000, "windowSeconds": 30}   # also queueWait, service;
                                                                     # p50 p90 p95 p99 p99.9 max
    {"metric": "failedRatio", "max": 0.01}            # failed / settled jobs in the window
    {"metric": "throughput", "minRatioOfShape": 0.95} # processed / what the shape released
    {"metric": "headAgeMs", "max": 30000}             # the oldest waiting job's age, now

Each objective is judged after a warm-up grace (its window, unless the run says
`sloGraceSeconds`), on the last `windowSeconds` (default 30) of the run; a window with nothing
in it is `pending`, never a breach. The head-of-line age has no window (it is an age already:
`lab.runtime.headage`) and no grace unless the run sets one. The first breach is kept with its
value and time; with `abortOnBreach` the run stops releasing and ends `breached`. The command
line's short form:
`endToEnd.p99<2s`, `service.p50<200ms@10s`, `failedRatio<0.01`, `throughput>0.95`,
`headAge<30s`. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.runtime import latency

LATENCY_METRICS = latency.METRICS
HTTP = "http"  # `lab loadtest`'s one latency: a request's, as Locust measures it
SCOPES = {
    # What each kind of test can judge: a run (latency families and the other metrics), or a
    # load test of the API (its requests' latency and the share that failed).
    "run": (LATENCY_METRICS, ("failedRatio", "throughput", "headAgeMs")),
    "loadtest": ((HTTP,), ("failedRatio",)),
}
STATS = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p99.9": 0.999, "max": 1.0}
DEFAULT_WINDOW_S = 30
MAX_WINDOW_S = 3600
MAX_OBJECTIVES = 20
MAX_MS = 3_600_000
HEAD_AGE = "headAgeMs"


class SloError(ValueError):
    """An objective lab cannot judge; `field` names it (`slo[1].maxMs`)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Objective:
    metric: str  # endToEnd.p99 | failedRatio | throughput | headAgeMs
    limit: float  # ms for latency and head age, a ratio otherwise
    window_s: int  # 0 for the head age

    @property
    def is_latency(self) -> bool:
        return "." in self.metric

    @property
    def text(self) -> str:
        if self.is_latency:
            return f"{self.metric} ≤ {self.limit:g} ms over {self.window_s} s"
        if self.metric == "failedRatio":
            return f"failedRatio ≤ {self.limit:g} over {self.window_s} s"
        if self.metric == HEAD_AGE:
            return f"head-of-line age ≤ {self.limit:g} ms"
        return f"throughput ≥ {self.limit:g} × the shape over {self.window_s} s"

    def as_json(self) -> dict[str, Any]:
        if self.metric == HEAD_AGE:
            return {"metric": HEAD_AGE, "max": self.limit}
        key = "maxMs" if self.is_latency else "max" if self.metric == "failedRatio" else (
            "minRatioOfShape")  # fmt: skip
        return {"metric": self.metric, key: self.limit, "windowSeconds": self.window_s}

    def breached(self, value: float) -> bool:
        return value < self.limit if self.metric == "throughput" else value > self.limit


def _number(entry: Mapping[str, Any], name: str, where: str, low: float, high: float) -> float:
    value = entry.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SloError(f"{where}.{name}", f"must be a number from {low:g} to {high:g}")
    if not low <= value <= high:
        raise SloError(f"{where}.{name}", f"must be a number from {low:g} to {high:g}")
    return float(value)


def parse(objectives: Any, scope: str = "run") -> list[Objective]:
    """Objectives from their JSON form, of what `scope` can judge (`SCOPES`); `SloError` names
    what is wrong."""
    families, others = SCOPES[scope]
    if not isinstance(objectives, list) or len(objectives) > MAX_OBJECTIVES:
        raise SloError("slo", f"must be a list of at most {MAX_OBJECTIVES} objectives")
    out = []
    for i, entry in enumerate(objectives):
        where = f"slo[{i}]"
        if not isinstance(entry, dict):
            raise SloError(
                where, 'must be an object such as {"metric": "endToEnd.p99", "maxMs": 2000}'
            )
        metric = entry.get("metric")
        window = entry.get("windowSeconds", DEFAULT_WINDOW_S)
        if (
            isinstance(window, bool)
            or not isinstance(window, int)
            or not 1 <= window <= MAX_WINDOW_S
        ):
            raise SloError(
                f"{where}.windowSeconds", f"must be a whole number from 1 to {MAX_WINDOW_S}"
            )
        if isinstance(metric, str) and "." in metric:
            name, _, stat = metric.partition(".")
            if name not in families or stat not in STATS:
                raise SloError(
                    f"{where}.metric",
                    f"{metric[:40]!r}: a latency is <{'|'.join(families)}>.<{'|'.join(STATS)}>",
                )
            allowed, limit = (
                {"metric", "maxMs", "windowSeconds"},
                _number(entry, "maxMs", where, 0, MAX_MS),
            )
        elif metric not in others:
            raise SloError(
                f"{where}.metric",
                f"must be a latency (<{'|'.join(families)}>.p99, …) or one of {', '.join(others)}",
            )
        elif metric == "failedRatio":
            allowed, limit = {"metric", "max", "windowSeconds"}, _number(entry, "max", where, 0, 1)
        elif metric == "throughput":
            allowed = {"metric", "minRatioOfShape", "windowSeconds"}
            limit = _number(entry, "minRatioOfShape", where, 0, 10)
        else:  # the head-of-line age
            allowed, limit, window = {"metric", "max"}, _number(entry, "max", where, 0, MAX_MS), 0
        extra = sorted(set(entry) - allowed)
        if extra:
            raise SloError(f"{where}.{extra[0]}", f"is not a field of a {metric} objective")
        out.append(Objective(str(metric), limit, int(window)))
    return out


SHORT = re.compile(
    r"([A-Za-z]+(?:\.(?:p50|p90|p95|p99|p99\.9|max))?)([<>])(\d+(?:\.\d+)?)(ms|s)?(?:@(\d+)s)?"
)


def from_text(text: str, scope: str = "run") -> dict[str, Any]:
    """An objective's JSON form from the short form: `endToEnd.p99<2s`, `service.p50<200ms@10s`,
    `failedRatio<0.01`, `throughput>0.95`."""
    found = SHORT.fullmatch(text.strip())
    if not found:
        raise SloError("slo", f"{text[:60]!r} is not an objective, e.g. endToEnd.p99<2s, "
                              "failedRatio<0.01, throughput>0.95")  # fmt: skip
    metric, op, number, unit, window = found.groups()
    value = float(number)
    out: dict[str, Any] = {"metric": metric}
    if "." in metric:
        if op != "<":
            raise SloError("slo", f"{text!r}: a latency objective is an upper bound (<)")
        out["maxMs"] = value * 1000 if unit == "s" else value
    elif metric in ("headAge", HEAD_AGE) and op == "<" and (unit or metric == HEAD_AGE):
        out = {"metric": HEAD_AGE, "max": value * 1000 if unit == "s" else value}
        if window:
            raise SloError("slo", f"{text!r}: the head-of-line age has no window")
    elif metric == "failedRatio" and op == "<" and unit is None:
        out["max"] = value
    elif metric == "throughput" and op == ">" and unit is None:
        out["minRatioOfShape"] = value
    else:
        raise SloError("slo", f"{text!r}: use failedRatio<R, throughput>R (a ratio) or headAge<30s")
    if window and out["metric"] != HEAD_AGE:
        out["windowSeconds"] = int(window)
    parse([out], scope)
    return out


@dataclass(frozen=True)
class Window:
    """What happened in an objective's window: latency histograms, settled counts, and what the
    shape asked for."""

    histograms: Mapping[str, latency.Histogram]
    processed: int
    failed: int
    planned: int
    head_age_ms: int = 0  # now, not over the window


def value_of(objective: Objective, window: Window) -> float | None:
    """The objective's measure over the window; None when the window holds nothing to judge."""
    if objective.is_latency:
        name, _, stat = objective.metric.partition(".")
        histogram = window.histograms.get(name)
        if histogram is None or not histogram.count:
            return None
        if stat == "max":
            return latency.bounds_us(max(histogram.counts))[1] / 1000
        return histogram.quantile(STATS[stat])
    if objective.metric == HEAD_AGE:
        return float(window.head_age_ms)
    settled = window.processed + window.failed
    if objective.metric == "failedRatio":
        return window.failed / settled if settled else None
    return window.processed / window.planned if window.planned > 0 else None


def judge(
    objectives: list[Objective],
    windows: list[Window],
    elapsed_s: float,
    grace_s: float | None,
    before: list[dict[str, Any]] | None,
    now_ms: int,
) -> list[dict[str, Any]]:
    """Each objective's state now: `pending` (in its grace, or nothing to judge), `ok` or
    `breached` (kept once reached, with the first breach's value and time)."""
    out = []
    for i, (objective, window) in enumerate(zip(objectives, windows, strict=True)):
        earlier = (before or [])[i] if before and i < len(before) else {}
        entry: dict[str, Any] = {"objective": objective.as_json(), "text": objective.text}
        if earlier.get("state") == "breached":
            out.append({**entry, **{k: earlier[k] for k in ("state", "value", "breachedAt")}})
            continue
        grace = objective.window_s if grace_s is None else grace_s
        value = value_of(objective, window) if elapsed_s >= grace else None
        if value is None:
            out.append({**entry, "state": "pending", "value": None})
        elif objective.breached(value):
            out.append(
                {**entry, "state": "breached", "value": round(value, 4), "breachedAt": now_ms}
            )
        else:
            out.append({**entry, "state": "ok", "value": round(value, 4)})
    return out


def judge_values(
    objectives: list[Objective], values: Mapping[str, float | None]
) -> list[dict[str, Any]]:
    """Each objective judged once on measured `values` (metric name → value, as a load test
    ends with them): `ok`, `breached` or `pending` when it was not measured."""
    out = []
    for objective in objectives:
        value = values.get(objective.metric)
        entry: dict[str, Any] = {"objective": objective.as_json(), "text": objective.text}
        if value is None:
            out.append({**entry, "state": "pending", "value": None})
        else:
            state = "breached" if objective.breached(value) else "ok"
            out.append({**entry, "state": state, "value": round(value, 4)})
    return out
