"""The few statistics lab reports, computed one way everywhere (bench, drills, the panel)."""

from __future__ import annotations

import math
from typing import Any

CONFIDENCE = 0.95  # of every interval lab reports (lab.experiment.analysis, lab report compare)


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank `p`th percentile (0 for no values): a value that was really observed."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def prediction_halfwidth(values: Any) -> float:
    """Half the width of the 95 % prediction interval for one more run, from `values` (two or
    more runs of the same code): how far a new value may land and still be the same."""
    import numpy as np
    from scipy import stats

    data = np.asarray(values, dtype=float)
    n = len(data)
    if n < 2:
        raise ValueError("a prediction interval needs two or more values")
    return float(stats.t.ppf((1 + CONFIDENCE) / 2, n - 1) * data.std(ddof=1) * math.sqrt(1 + 1 / n))
