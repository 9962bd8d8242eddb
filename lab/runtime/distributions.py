"""Declared distributions for workloads: a job's service time, its document's size, drawn from
what the user declared and seeded, so the same run repeats exactly. Pure: no I/O.

    {"dist": "fixed", "value": 80}
    {"dist": "uniform", "min": 20, "max": 200}
    {"dist": "exponential", "mean": 80}
    {"dist": "lognormal", "median": 80, "p99": 1200}
    {"dist": "pareto", "min": 20, "alpha": 1.5}
    {"dist": "empirical", "values": [12, 40, 41, 300]}     # drawn uniformly from these

Every draw is clipped to the bounds of what it models (`high`), so a heavy tail cannot ask a job
to run for a day; `quantile` and `mean` say what a run should show.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

KINDS = ("fixed", "uniform", "exponential", "lognormal", "pareto", "empirical")
MAX_EMPIRICAL = 10_000
Z99 = NormalDist().inv_cdf(0.99)


class DistributionError(ValueError):
    """A distribution lab cannot draw from; `field` names the part (`dist`, `p99`, …)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


@dataclass(frozen=True)
class Distribution:
    kind: str
    params: tuple[float, ...]
    high: float  # draws are clipped to [0, high]
    values: tuple[float, ...] = ()  # empirical: sorted

    def sample(self, rng: random.Random) -> float:
        return min(max(self._draw(rng), 0.0), self.high)

    def _draw(self, rng: random.Random) -> float:
        k, p = self.kind, self.params
        if k == "fixed":
            return p[0]
        if k == "uniform":
            return rng.uniform(p[0], p[1])
        if k == "exponential":
            return rng.expovariate(1 / p[0]) if p[0] > 0 else 0.0
        if k == "lognormal":
            return rng.lognormvariate(p[0], p[1])
        if k == "pareto":
            return p[0] * rng.paretovariate(p[1])
        return self.values[rng.randrange(len(self.values))]

    def quantile(self, q: float) -> float:
        """The value below which a share `q` of draws fall (before clipping at `high`)."""
        k, p = self.kind, self.params
        if k == "fixed":
            v = p[0]
        elif k == "uniform":
            v = p[0] + q * (p[1] - p[0])
        elif k == "exponential":
            v = -p[0] * math.log(1 - q)
        elif k == "lognormal":
            v = math.exp(p[0] + p[1] * NormalDist().inv_cdf(q))
        elif k == "pareto":
            v = p[0] / (1 - q) ** (1 / p[1])
        else:
            v = self.values[min(len(self.values) - 1, max(0, math.ceil(q * len(self.values)) - 1))]
        return min(v, self.high)

    def cdf(self, x: float) -> float:
        """The share of draws at or below x (empirical and fixed exact; others analytic)."""
        k, p = self.kind, self.params
        if x >= self.high:
            return 1.0
        if k == "fixed":
            return 1.0 if x >= p[0] else 0.0
        if k == "uniform":
            return (
                min(1.0, max(0.0, (x - p[0]) / (p[1] - p[0]))) if p[1] > p[0] else float(x >= p[0])
            )
        if k == "exponential":
            return 1 - math.exp(-x / p[0]) if x > 0 and p[0] > 0 else float(x >= 0 and p[0] == 0)
        if k == "lognormal":
            return NormalDist().cdf((math.log(x) - p[0]) / p[1]) if x > 0 else 0.0
        if k == "pareto":
            return 1 - (p[0] / x) ** p[1] if x >= p[0] else 0.0
        return bisect.bisect_right(self.values, x) / len(self.values)

    def mean(self) -> float:
        """The mean draw (ignoring the clip; a Pareto with alpha ≤ 1 has none: `high`)."""
        k, p = self.kind, self.params
        if k == "fixed":
            return p[0]
        if k == "uniform":
            return (p[0] + p[1]) / 2
        if k == "exponential":
            return p[0]
        if k == "lognormal":
            return math.exp(p[0] + p[1] ** 2 / 2)
        if k == "pareto":
            return p[1] * p[0] / (p[1] - 1) if p[1] > 1 else self.high
        return sum(self.values) / len(self.values)


def _num(
    spec: dict[str, Any], name: str, low: float, high: float, strict_low: bool = False
) -> float:
    value = spec.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DistributionError(name, f"must be a number from {low:g} to {high:g}")
    if value < low or value > high or (strict_low and value <= low):
        bound = f"above {low:g}" if strict_low else f"from {low:g}"
        raise DistributionError(name, f"must be a number {bound} to {high:g}")
    return float(value)


def parse(spec: Any, high: float) -> Distribution:
    """A distribution from its JSON form, every value within [0, high]; `DistributionError`
    names what is wrong."""
    if not isinstance(spec, dict):
        raise DistributionError("", 'must be an object such as {"dist": "fixed", "value": 80}')
    kind = spec.get("dist")
    if kind not in KINDS:
        raise DistributionError("dist", f"must be one of {', '.join(KINDS)}")
    allowed = {
        "fixed": {"value"},
        "uniform": {"min", "max"},
        "exponential": {"mean"},
        "lognormal": {"median", "p99"},
        "pareto": {"min", "alpha"},
        "empirical": {"values"},
    }[kind]
    extra = sorted(set(spec) - allowed - {"dist"})
    if extra:
        raise DistributionError(extra[0], f"is not a parameter of {kind}")
    if kind == "fixed":
        return Distribution(kind, (_num(spec, "value", 0, high),), high)
    if kind == "uniform":
        low, top = _num(spec, "min", 0, high), _num(spec, "max", 0, high)
        if top < low:
            raise DistributionError("max", "must be at least min")
        return Distribution(kind, (low, top), high)
    if kind == "exponential":
        return Distribution(kind, (_num(spec, "mean", 0, high),), high)
    if kind == "lognormal":
        median = _num(spec, "median", 0, high, strict_low=True)
        p99 = _num(spec, "p99", 0, high, strict_low=True)
        if p99 <= median:
            raise DistributionError("p99", "must be above the median")
        mu = math.log(median)
        return Distribution(kind, (mu, (math.log(p99) - mu) / Z99), high)
    if kind == "pareto":
        return Distribution(
            kind,
            (_num(spec, "min", 0, high, strict_low=True), _num(spec, "alpha", 0, 100, True)),
            high,
        )
    values = spec.get("values")
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_EMPIRICAL:
        raise DistributionError("values", f"must be a list of 1 to {MAX_EMPIRICAL:,} numbers")
    checked = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= high:
            raise DistributionError(f"values[{i}]", f"must be a number from 0 to {high:g}")
        checked.append(float(v))
    return Distribution(kind, (), high, tuple(sorted(checked)))
