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

Every draw is its quantile at one uniform `u`, 0 ≤ u ≤ 1 - 2⁻⁵³ (the empirical kind's too:
the value at rank ⌈u·n⌉), which a job takes from the portable generator (`portable.py`), so
`targets/bullmq/lib/distributions.js` draws the same from the same uniform. `parse` evaluates
the quantile at those two ends (and the mean) before it accepts a distribution, so whatever it
accepts can be drawn for any seed; what it refuses is a `DistributionError` naming the
parameter. Each kind's parameters and their bounds are declared once, in `PARAMS`.
"""

from __future__ import annotations

import bisect
import math
import sys
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Protocol

MAX_EMPIRICAL = 10_000
Z99 = NormalDist().inv_cdf(0.99)
LAST_U = 1 - 2**-53  # the largest uniform a draw takes (`random()`'s too); the smallest is 0
EXTREMES = (0.0, 2**-53, 0.5, LAST_U)  # where `parse` evaluates a quantile


@dataclass(frozen=True)
class Param:
    """One parameter: a number from `low` to `high` (None: the cap of the field it models),
    `low` excluded when `open_low`; at least the parameter `at_least` names, or above the one
    `above` names. `items` > 0: a list of 1 to `items` such numbers."""

    name: str
    low: float = 0.0
    high: float | None = None
    open_low: bool = False
    at_least: str = ""
    above: str = ""
    items: int = 0

    def top(self, cap: float) -> float:
        """The most allowed: never past the largest float (a larger integer has none)."""
        return min(cap if self.high is None else self.high, sys.float_info.max)

    def bounds(self, cap: float) -> str:
        return f"a number {'above' if self.open_low else 'from'} {self.low:g} to {self.top(cap):g}"


# Every kind's parameters, in the order `Distribution.params` keeps them. The bounds keep every
# quantile and mean finite for any cap up to 1e30 (`parse` still checks it): at its tail a
# Pareto reaches min × 2^(53 / alpha) and a lognormal about median × (p99 / median)^3.5, so an
# alpha of 1e-300 or a median of 5e-324 overflows a float.
PARAMS: dict[str, tuple[Param, ...]] = {
    "fixed": (Param("value"),),
    "uniform": (Param("min"), Param("max", at_least="min")),
    "exponential": (Param("mean"),),
    "lognormal": (Param("median", 0.001), Param("p99", 0.001, above="median")),
    "pareto": (Param("min", open_low=True), Param("alpha", 0.1, 100)),
    "empirical": (Param("values", items=MAX_EMPIRICAL),),
}
KINDS = tuple(PARAMS)


class DistributionError(ValueError):
    """A distribution lab cannot draw from; `field` names the part (`dist`, `p99`, …)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class Uniforms(Protocol):
    def random(self) -> float: ...


@dataclass(frozen=True)
class Distribution:
    kind: str
    params: tuple[float, ...]  # as `PARAMS` declares them, in its order
    high: float  # draws are clipped to [0, high]
    values: tuple[float, ...] = ()  # empirical: sorted

    def sample(self, u: float | Uniforms) -> float:
        """The draw at the uniform `u` (0 ≤ u ≤ LAST_U), or at the next uniform of a stream
        (`portable.Stream`, `random.Random`)."""
        return self._clip(self._at(u if isinstance(u, int | float) else u.random()))

    def _clip(self, value: float) -> float:
        return min(max(value, 0.0), self.high)

    def _at(self, u: float) -> float:
        """The quantile at u (0 ≤ u ≤ LAST_U), before clipping."""
        k, p = self.kind, self.params
        if k == "fixed":
            return p[0]
        if k == "uniform":
            return p[0] + u * (p[1] - p[0])
        if k == "exponential":
            return -p[0] * math.log(1 - u)
        if k == "lognormal":
            # median × (p99 / median)^(z / z99): no log of a tiny median, one uniform a draw
            z = NormalDist().inv_cdf(max(u, 2**-54))
            return p[0] * (p[1] / p[0]) ** (z / Z99)
        if k == "pareto":
            return p[0] / (1 - u) ** (1 / p[1])
        n = len(self.values)
        return self.values[min(n - 1, max(0, math.ceil(u * n) - 1))]

    def quantile(self, q: float) -> float:
        """The value below which a share `q` of draws fall (clipped at `high`; q = 1 is read as
        the largest uniform a draw uses)."""
        if not 0 <= q <= 1:
            raise ValueError(f"a quantile's share is from 0 to 1, not {q!r}")
        return self._clip(self._at(min(q, LAST_U)))

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
            sigma = math.log(p[1] / p[0]) / Z99
            return NormalDist().cdf(math.log(x / p[0]) / sigma) if x > 0 else 0.0
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
            return p[0] * math.exp((math.log(p[1] / p[0]) / Z99) ** 2 / 2)
        if k == "pareto":
            return p[1] * p[0] / (p[1] - 1) if p[1] > 1 else self.high
        return sum(self.values) / len(self.values)


def _number(value: Any, where: str, param: Param, cap: float) -> float:
    """A JSON number within the parameter's bounds, compared before any conversion (a 400-digit
    integer overflows a float); never text, whatever digits it holds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise DistributionError(where, f"must be {param.bounds(cap)}")
    if value < param.low or value > param.top(cap) or (param.open_low and value <= param.low):
        raise DistributionError(where, f"must be {param.bounds(cap)}")
    return float(value)


def _param(spec: dict[str, Any], param: Param, cap: float, found: dict[str, Any]) -> Any:
    if param.items:
        values = spec.get(param.name)
        if not isinstance(values, list) or not 1 <= len(values) <= param.items:
            raise DistributionError(param.name, f"must be a list of 1 to {param.items:,} numbers")
        return [_number(v, f"{param.name}[{i}]", param, cap) for i, v in enumerate(values)]
    value = _number(spec.get(param.name), param.name, param, cap)
    if param.at_least and value < found[param.at_least]:
        raise DistributionError(param.name, f"must be at least {param.at_least}")
    if param.above and value <= found[param.above]:
        raise DistributionError(param.name, f"must be above the {param.above}")
    return value


def _drawable(dist: Distribution) -> None:
    """Every draw and the mean are finite: the quantile is monotonic, so its ends say it."""
    try:
        ends = [dist._at(u) for u in EXTREMES] + [dist.mean()]
    except (ArithmeticError, ValueError):
        ends = [math.inf]
    if not all(math.isfinite(v) for v in ends):
        # The last parameter shapes the tail (p99, alpha, max): the one to bring in.
        tail = PARAMS[dist.kind][-1]
        raise DistributionError(
            tail.name,
            "cannot be drawn with the other parameters given "
            f"(its tail overflows a float); {tail.bounds(dist.high)}",
        )


def parse(spec: Any, high: float) -> Distribution:
    """A distribution from its JSON form, every value within [0, high] and every draw finite;
    `DistributionError` names what is wrong."""
    if not isinstance(spec, dict):
        raise DistributionError("", 'must be an object such as {"dist": "fixed", "value": 80}')
    kind = spec.get("dist")
    if not isinstance(kind, str) or kind not in PARAMS:
        raise DistributionError("dist", f"must be one of {', '.join(KINDS)}")
    declared = PARAMS[kind]
    names = {"dist", *(p.name for p in declared)}
    extra = sorted(str(key)[:64] for key in spec if key not in names)
    if extra:
        raise DistributionError(extra[0], f"is not a parameter of {kind}")
    found: dict[str, Any] = {}
    for param in declared:
        found[param.name] = _param(spec, param, high, found)
    if kind == "empirical":
        dist = Distribution(kind, (), high, tuple(sorted(found["values"])))
    else:
        dist = Distribution(kind, tuple(found[p.name] for p in declared), high)
    _drawable(dist)
    return dist
