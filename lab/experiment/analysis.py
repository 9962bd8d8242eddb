"""What an experiment's rows say, with the uncertainty the repetitions show:

- a mean with a 95 % confidence interval valid at small n: Student's t below 10 repetitions,
  a seeded bootstrap (10,000 resamples) from 10 on;
- per factor, each level's mean over every trial at that level, and the scaling efficiency of a
  numeric factor against its first level (2 workers at 1.8× the throughput of 1: 90 %);
- pairwise differences between a factor's levels, judged *real* or *within noise* by Welch's t
  test at 5 % after Holm's correction for the number of pairs, never by a fixed tolerance; with a
  single sample on a side it *cannot tell*.

Pure (pandas, numpy, scipy); the report notebook calls it. `lab report compare` judges with
the same confidence and its prediction interval (`lab.stats.prediction_halfwidth`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lab.stats import CONFIDENCE

ALPHA = 0.05
BOOTSTRAP_FROM = 10
RESAMPLES = 10_000


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float | None
    high: float | None
    n: int
    method: str  # "t", "bootstrap", "one sample"

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "low": self.low, "high": self.high,
                "method": self.method}  # fmt: skip


def interval(values: Any, seed: int = 0) -> Interval:
    """The mean of `values` and its 95 % confidence interval."""
    from scipy import stats

    data = np.asarray([v for v in values if v is not None and not _missing(v)], dtype=float)
    n = len(data)
    if n == 0:
        return Interval(math.nan, None, None, 0, "no samples")
    mean = float(data.mean())
    if n == 1:
        return Interval(mean, None, None, 1, "one sample")
    if n < BOOTSTRAP_FROM:
        half = float(stats.t.ppf((1 + CONFIDENCE) / 2, n - 1) * data.std(ddof=1) / math.sqrt(n))
        return Interval(mean, mean - half, mean + half, n, "t")
    rng = np.random.default_rng(seed)
    means = rng.choice(data, size=(RESAMPLES, n), replace=True).mean(axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(mean, float(low), float(high), n, "bootstrap")


def _missing(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def by_configuration(frame: pd.DataFrame, measure: str, factors: list[str]) -> pd.DataFrame:
    """One row per configuration: its levels, n, mean and interval of `measure`."""
    rows = []
    groups = frame.groupby(factors, sort=False, dropna=False) if factors else [((), frame)]
    for levels, group in groups:
        levels = levels if isinstance(levels, tuple) else (levels,)
        rows.append({**dict(zip(factors, levels, strict=False)),
                     **interval(group[measure]).as_dict()})  # fmt: skip
    return pd.DataFrame(rows)


SCALING = ("workers", "concurrency")  # factors whose levels are amounts of capacity


def by_level(frame: pd.DataFrame, measure: str, factor: str) -> pd.DataFrame:
    """Each level of `factor`: the mean of `measure` over every trial at it, its interval, and
    for a factor of capacity (`SCALING`) the speed-up and scaling efficiency against its first
    level (2 workers at 1.8× the throughput of 1: 90 %)."""
    rows = []
    first: tuple[Any, float] | None = None  # (level, mean) of the first level
    for level, group in frame.groupby(factor, sort=True):
        found = interval(group[measure])
        row: dict[str, Any] = {factor: level, **found.as_dict()}
        if first is None:
            first = (level, found.mean)
        if factor in SCALING and _number(level) and _number(first[0]) and first[1] and first[0]:
            speedup = found.mean / first[1]
            row["speedup"] = speedup
            row["efficiency"] = speedup / (float(level) / float(first[0]))
        rows.append(row)
    return pd.DataFrame(rows)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def verdict(a: Any, b: Any) -> tuple[str, float | None]:
    """Welch's t test between two samples: (`real` | `within noise` | `cannot tell`, p)."""
    from scipy import stats

    x = np.asarray([v for v in a if not _missing(v)], dtype=float)
    y = np.asarray([v for v in b if not _missing(v)], dtype=float)
    if len(x) < 2 or len(y) < 2:
        return "cannot tell", None
    if x.std(ddof=1) == 0 and y.std(ddof=1) == 0:
        return ("within noise", 1.0) if x.mean() == y.mean() else ("real", 0.0)
    p = float(stats.ttest_ind(x, y, equal_var=False).pvalue)
    return ("real" if p < ALPHA else "within noise"), p


def differences(frame: pd.DataFrame, measure: str, factor: str) -> pd.DataFrame:
    """Every pair of `factor`'s levels: the difference of the means (b − a, and as a share of a),
    Welch's p, Holm's adjusted p over the pairs, and the verdict."""
    groups = {level: g[measure].tolist() for level, g in frame.groupby(factor, sort=True)}
    levels = list(groups)
    rows = []
    for i, a in enumerate(levels):
        for b in levels[i + 1 :]:
            said, p = verdict(groups[a], groups[b])
            mean_a = interval(groups[a]).mean
            mean_b = interval(groups[b]).mean
            rows.append({"factor": factor, "a": a, "b": b, "meanA": mean_a, "meanB": mean_b,
                         "change": (mean_b - mean_a) / mean_a if mean_a else math.nan,
                         "p": p, "verdict": said})  # fmt: skip
    adjusted = holm([r["p"] for r in rows])
    for row, p_adj in zip(rows, adjusted, strict=True):
        row["pHolm"] = p_adj
        if p_adj is not None:
            row["verdict"] = "real" if p_adj < ALPHA else "within noise"
    return pd.DataFrame(rows)


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (None stays None: a pair that cannot be tested)."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    m = len(tested)
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out
