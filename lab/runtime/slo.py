"""Service-level objectives a run declares, judged while it runs over sliding windows.

    {"metric": "endToEnd.p99", "maxMs": 2000, "windowSeconds": 30}   # also queueWait, service;
                                                                     # p50 p90 p95 p99 p99.9 max
    {"metric": "failedRatio", "max": 0.01}            # failed / settled jobs in the window
    {"metric": "throughput", "minRatioOfShape": 0.95} # processed / what the shape released
    {"metric": "headAgeMs", "max": 30000}             # the oldest waiting job's age, now

Each objective is judged after a warm-up grace (its window, unless the run says
`sloGraceSeconds`), on the last `windowSeconds` (default 30) of the run; a window with nothing
in it is `pending`, never a breach. A latency objective also counts the jobs released and not
finished yet at their age so far (a censored observation: a job that has waited 12 s makes the
p99 at least 12 s once it is in the top 1 %), so a stalled pipeline, where nothing finishes,
breaches instead of staying pending. The head-of-line age has no window (it is an age already:
`lab.runtime.headage`) and no grace unless the run sets one. The first breach is kept with its
value and time; with `abortOnBreach` the run stops releasing and ends `breached`.

Each kind of objective is one class registered in `OBJECTIVES` (`lab.runtime.registry`): its
fields with bounds, its short form (`endToEnd.p99<2s`, `service.p50<200ms@10s`,
`failedRatio<0.01`, `throughput>0.95`, `headAge<30s`), its words and its measure. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lab.runtime import latency
from lab.runtime.fields import NUMBER, Field, FieldError
from lab.runtime.registry import Described, Registry

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
WINDOW = Field("windowSeconds", "integer", "the window judged, seconds", default=DEFAULT_WINDOW_S,
               low=1, high=MAX_WINDOW_S, unit="s")  # fmt: skip


class SloError(ValueError):
    """An objective lab cannot judge; `field` names it (`slo[1].maxMs`)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Window:
    """What happened in an objective's window: latency histograms of the jobs that finished in
    it, settled counts, and what the shape asked for; and, now, the jobs released and not
    finished, as (age ms, jobs) per metric they are censored for (`queueWait`, `endToEnd`)."""

    histograms: Mapping[str, latency.Histogram]
    processed: int
    failed: int
    planned: int
    head_age_ms: int = 0  # now, not over the window
    unfinished: Mapping[str, Sequence[tuple[float, int]]] = field(default_factory=dict)


def _latency_kind(metric: str) -> str:
    return "latency" if "." in metric else metric


OBJECTIVES: Registry[Any] = Registry("objective", SloError, key="metric", kind_of=_latency_kind)


class Objective(Described):
    """One objective: its metric, its limit (ms for latency and head age, a ratio otherwise)
    and its window (0 for the head age)."""

    registry = OBJECTIVES
    higher_is_better: ClassVar[bool] = False

    def __init__(self, metric: str, limit: float, window_s: int):
        self.metric, self.limit, self.window_s = metric, limit, window_s

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Objective) and self.as_json() == other.as_json()

    def __repr__(self) -> str:
        return f"Objective({self.text})"

    @property
    def is_latency(self) -> bool:
        return "." in self.metric

    @classmethod
    def of(cls, metric: str, values: dict[str, Any]) -> Objective:
        raise NotImplementedError

    @property
    def text(self) -> str:
        raise NotImplementedError

    def as_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def value(self, window: Window) -> float | None:
        """The objective's measure over the window; None when it holds nothing to judge."""
        raise NotImplementedError

    def breached(self, value: float) -> bool:
        return value < self.limit if self.higher_is_better else value > self.limit


_SHORT = re.compile(
    r"([A-Za-z]{1,32}(?:\.(?:p50|p90|p95|p99|p99\.9|max))?)([<>])" + NUMBER + r"(ms|s)?"
    r"(?:@([0-9]{1,4})s)?"
)


class Latency(Objective, type="latency", short="endToEnd.p99<2s@30s"):
    help = "a quantile (or the max) of queue wait, service or end to end, at most a limit"
    fields = (Field("maxMs", "number", "the most it may be", low=0, high=MAX_MS, required=True,
                    unit="ms"), WINDOW)  # fmt: skip

    @classmethod
    def of(cls, metric: str, values: dict[str, Any]) -> Objective:
        return cls(metric, values["maxMs"], values["windowSeconds"])

    @property
    def text(self) -> str:
        return f"{self.metric} ≤ {self.limit:g} ms over {self.window_s} s"

    def as_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "maxMs": self.limit, "windowSeconds": self.window_s}

    def value(self, window: Window) -> float | None:
        family, _, stat = self.metric.partition(".")
        finished = window.histograms.get(family) or latency.Histogram()
        with_unfinished = finished
        waiting = window.unfinished.get(family, ())
        if waiting:
            with_unfinished = finished.merge(latency.Histogram())
            for age_ms, jobs in waiting:
                with_unfinished.add(latency.bucket_of(age_ms), jobs)
        # Each is a floor of what the jobs' latency is; the larger is the one to judge.
        found = [_stat(h, stat) for h in (finished, with_unfinished) if h.count]
        return max(found) if found else None


def _stat(histogram: latency.Histogram, stat: str) -> float:
    if stat == "max":
        return latency.bounds_us(max(histogram.counts))[1] / 1000
    return histogram.quantile(STATS[stat]) or 0.0


class FailedRatio(Objective, type="failedRatio", short="failedRatio<0.01"):
    help = "failed / settled jobs in the window, at most a ratio"
    fields = (Field("max", "number", "the largest share", low=0, high=1, required=True), WINDOW)

    @classmethod
    def of(cls, metric: str, values: dict[str, Any]) -> Objective:
        return cls(metric, values["max"], values["windowSeconds"])

    @property
    def text(self) -> str:
        return f"failedRatio ≤ {self.limit:g} over {self.window_s} s"

    def as_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "max": self.limit, "windowSeconds": self.window_s}

    def value(self, window: Window) -> float | None:
        settled = window.processed + window.failed
        return window.failed / settled if settled else None


class Throughput(Objective, type="throughput", short="throughput>0.95"):
    help = "jobs processed / jobs the shape asked for in the window, at least a ratio"
    fields = (Field("minRatioOfShape", "number", "the least share", low=0, high=10,
                    required=True), WINDOW)  # fmt: skip
    higher_is_better = True

    @classmethod
    def of(cls, metric: str, values: dict[str, Any]) -> Objective:
        return cls(metric, values["minRatioOfShape"], values["windowSeconds"])

    @property
    def text(self) -> str:
        return f"throughput ≥ {self.limit:g} × the shape over {self.window_s} s"

    def as_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "minRatioOfShape": self.limit,
                "windowSeconds": self.window_s}  # fmt: skip

    def value(self, window: Window) -> float | None:
        return window.processed / window.planned if window.planned > 0 else None


class HeadAge(Objective, type=HEAD_AGE, short="headAge<30s"):
    help = "how long the oldest waiting job has waited, now, at most a limit"
    fields = (Field("max", "number", "the longest wait", low=0, high=MAX_MS, required=True,
                    unit="ms"),)  # fmt: skip

    @classmethod
    def of(cls, metric: str, values: dict[str, Any]) -> Objective:
        return cls(HEAD_AGE, values["max"], 0)

    @property
    def text(self) -> str:
        return f"head-of-line age ≤ {self.limit:g} ms"

    def as_json(self) -> dict[str, Any]:
        return {"metric": HEAD_AGE, "max": self.limit}

    def value(self, window: Window) -> float | None:
        return float(window.head_age_ms)


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
        if isinstance(metric, str) and "." in metric:
            name, _, stat = metric.partition(".")
            if name not in families or stat not in STATS:
                raise SloError(f"{where}.metric", f"{metric[:40]!r}: a latency is "
                               f"<{'|'.join(families)}>.<{'|'.join(STATS)}>")  # fmt: skip
        elif metric not in others:
            raise SloError(f"{where}.metric", f"must be a latency (<{'|'.join(families)}>.p99, "
                           f"…) or one of {', '.join(others)}")  # fmt: skip
        cls, values = OBJECTIVES.values(entry, where)
        out.append(cls.of(str(metric), values))
    return out


def from_text(text: str, scope: str = "run") -> dict[str, Any]:
    """An objective's JSON form from the short form: `endToEnd.p99<2s`, `service.p50<200ms@10s`,
    `failedRatio<0.01`, `throughput>0.95`, `headAge<30s` (ASCII digits only)."""
    found = _SHORT.fullmatch(text.strip()) if isinstance(text, str) and len(text) < 200 else None
    if not found:
        raise SloError("slo", f"{str(text)[:60]!r} is not an objective, e.g. endToEnd.p99<2s, "
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
        value = objective.value(window) if elapsed_s >= grace else None
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


__all__ = ["OBJECTIVES", "FieldError", "Objective", "SloError", "Window", "judge", "parse"]
