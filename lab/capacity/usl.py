"""Gunther's Universal Scalability Law fitted to the capacities found at each N (workers or
concurrency): pure (numpy, scipy).

    X(N) = λN / (1 + σ(N − 1) + κN(N − 1))

λ is what one unit sustains, σ the contention (the share that serialises: queueing for a shared
resource), κ the coherency cost (every pair of units paying to agree: the cost that makes X fall
past a peak at N* = √((1 − σ) / κ)). σ = κ = 0 is linear scaling.

Each capacity is an interval (the highest rate that held in every repetition, the lowest that
broke), so the fit is made twice over: once to the intervals' middles (the figures reported)
and `DRAWS` times to capacities drawn uniformly within each interval (seeded), whose 2.5th and
97.5th percentiles are the intervals of λ, σ, κ, the peak and the predictions. A capacity known
only from below (nothing broke up to the most probed) counts as its low end. Three or more N fit
all three; two fit λ and σ with κ = 0; one fits nothing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

DRAWS = 1000
SEED = 0
KAPPA_ZERO = 1e-8  # a fit's rounding, not a coherency cost: no peak


@dataclass(frozen=True)
class Fit:
    lam: float
    sigma: float
    kappa: float

    def at(self, n: Any) -> Any:
        """X(n): the capacity the law predicts at `n` (a number or an array)."""
        n = np.asarray(n, dtype=float)
        return self.lam * n / (1 + self.sigma * (n - 1) + self.kappa * n * (n - 1))

    @property
    def peak(self) -> float | None:
        """The N where X peaks (None when κ = 0: it never turns down)."""
        if self.kappa <= KAPPA_ZERO or self.sigma >= 1:
            return None
        return math.sqrt((1 - self.sigma) / self.kappa)


def law(n: Any, lam: float, sigma: float, kappa: float) -> Any:
    return Fit(lam, sigma, kappa).at(n)


def fit(n: ArrayLike, x: ArrayLike) -> Fit:
    """The least-squares fit of X(N) to capacities `x` at `n` (distinct N, two or more)."""
    from scipy.optimize import OptimizeWarning, curve_fit

    ns, xs = np.asarray(n, dtype=float), np.asarray(x, dtype=float)
    if len(set(ns.tolist())) < 2:
        raise ValueError("the law needs capacities at two or more N")
    first = float(xs[np.argmin(ns)] / ns.min())
    with warnings.catch_warnings():  # as many points as parameters: no covariance, still a fit
        warnings.simplefilter("ignore", OptimizeWarning)
        if len(ns) == 2:  # two points: contention only
            (lam, sigma), _ = curve_fit(lambda v, a, s: law(v, a, s, 0.0), ns, xs,
                                        p0=(first, 0.01), bounds=([1e-12, 0.0], [np.inf, 1.0]),
                                        maxfev=20_000)  # fmt: skip
            return Fit(float(lam), float(sigma), 0.0)
        (lam, sigma, kappa), _ = curve_fit(law, ns, xs, p0=(first, 0.01, 0.0001),
                                           bounds=([1e-12, 0.0, 0.0], [np.inf, 1.0, 1.0]),
                                           maxfev=20_000)  # fmt: skip
    return Fit(float(lam), float(sigma), float(kappa))


def quality(found: Fit, n: ArrayLike, x: ArrayLike) -> dict[str, Any]:
    """R² and the largest relative miss of the fit at the points it was fitted to, and the
    degrees of freedom left (0: the curve goes through every point, the R² says nothing)."""
    ns, xs = np.asarray(n, dtype=float), np.asarray(x, dtype=float)
    predicted = found.at(ns)
    total = float(((xs - xs.mean()) ** 2).sum())
    residual = float(((xs - predicted) ** 2).sum())
    parameters = 2 if found.kappa == 0 and len(ns) == 2 else 3
    return {"r2": round(1 - residual / total, 4) if total > 0 else None,
            "maxRelativeError": round(float(np.max(np.abs(predicted - xs) / xs)), 4),
            "degreesOfFreedom": max(0, len(ns) - parameters)}  # fmt: skip


def model(
    n: Sequence[float], low: Sequence[float], high: Sequence[float | None], seed: int = SEED
) -> dict[str, Any]:
    """The law fitted to capacity intervals [low, high] at each N (a high of None: at least
    low), with the intervals of its parameters and predictions (see the module's docstring)."""
    ns = np.asarray(n, dtype=float)
    lows = np.asarray(low, dtype=float)
    highs = np.asarray([h if h is not None else lo for lo, h in zip(low, high, strict=True)],
                       dtype=float)  # fmt: skip
    middle = fit(ns, (lows + highs) / 2)
    twice = 2 * float(ns.max())
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(DRAWS):
        one = fit(ns, rng.uniform(lows, highs))
        draws.append((one.lam, one.sigma, one.kappa, one.peak or math.nan, float(one.at(twice))))
    table = np.asarray(draws)

    def spread(column: int, value: float | None) -> dict[str, Any]:
        values = table[:, column]
        values = values[~np.isnan(values)]
        if value is None or not len(values):
            return {"value": value, "low": None, "high": None}
        lo, hi = np.percentile(values, [2.5, 97.5])
        return {"value": round(value, 6), "low": round(float(lo), 6), "high": round(float(hi), 6)}

    return {
        "n": [float(v) for v in ns],
        "lambda": spread(0, middle.lam),
        "sigma": spread(1, middle.sigma),
        "kappa": spread(2, middle.kappa),
        "peakN": spread(3, middle.peak),
        "peakJobsPerSecond": round(float(middle.at(middle.peak)), 3) if middle.peak else None,
        "predicted": {"n": twice, "jobsPerSecond": spread(4, float(middle.at(twice)))},
        "fit": quality(middle, ns, (lows + highs) / 2),
        "intervals": f"95 % of {DRAWS} fits to capacities drawn uniformly within each interval",
    }
