"""Did the pipeline do what the run declared? The judgements of the workloads drill, kept pure so
unit tests can hold them to known inputs.

shape_fit            released by the end of each second against the shape's planned total
binomial_interval    where a count of independent yes/no outcomes should fall
quantile_agrees      an observed quantile against a declared one, from order statistics
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

Z999 = NormalDist().inv_cdf(0.9995)  # two-sided 99.9 %
MARKS = ("forgiven", "backpressure", "paused")  # seconds the release did not follow its shape


def shape_fit(
    points: list[dict[str, Any]], x: int, jobs: int = 1, share: float = 0.005
) -> dict[str, Any]:
    """Each whole second's released total against its `planned` total (the timeline's points).

    Judged: seconds the release followed its shape (no mark) before the run's last job went out.
    Within when the gap is at most `jobs` or `share` of the plan, whichever is larger: the
    scheduler releases whole jobs, so a plan of 10.4 by a second's end is met by 10 or 11."""
    total, rows = 0, []
    for point in points:
        total += int(point.get("released") or 0)
        planned = point.get("planned")
        if planned is None:
            continue
        marked = [m for m in MARKS if point.get(m)]
        judged = not marked and planned < x and total < x
        gap = total - int(planned)
        rows.append({
            "t": point["t"], "released": total, "planned": int(planned), "gap": gap,
            "judged": judged, "within": abs(gap) <= max(jobs, share * planned), "marks": marked,
        })  # fmt: skip
    judged = [r for r in rows if r["judged"]]
    worst = max(judged, key=lambda r: abs(r["gap"]), default=None)
    return {
        "seconds": rows,
        "judged": len(judged),
        "within": sum(r["within"] for r in judged),
        "marked": sum(bool(r["marks"]) for r in rows),
        "worstGap": worst["gap"] if worst else 0,
        "worstAt": worst["planned"] if worst else 0,
    }


def binomial_interval(n: int, p: float, z: float = Z999) -> tuple[float, float]:
    """The counts out of `n` that a chance `p` gives with probability 99.9 % (normal
    approximation, widened by one for the count's granularity)."""
    sd = math.sqrt(n * p * (1 - p))
    return max(0.0, n * p - z * sd - 1), min(float(n), n * p + z * sd + 1)


def quantile_agrees(
    observed: list[float], q: float, declared: float, slack: float = 0.0, z: float = Z999
) -> dict[str, Any]:
    """Whether `declared` lies between the order statistics that bracket the `q` quantile of
    `observed` with 99.9 % confidence, the lower one less `slack` (what the pipeline adds to
    each observation: a job never takes less than it was asked to)."""
    values = sorted(observed)
    n = len(values)
    if n == 0:
        return {
            "q": q,
            "declared": declared,
            "observed": None,
            "low": None,
            "high": None,
            "agrees": False,
        }
    spread = z * math.sqrt(n * q * (1 - q))
    low_rank = max(0, math.floor(n * q - spread) - 1)
    high_rank = min(n - 1, math.ceil(n * q + spread) - 1)
    low, high = values[low_rank] - slack, values[high_rank]
    observed_q = values[min(n - 1, max(0, math.ceil(n * q) - 1))]
    return {
        "q": q, "declared": declared, "observed": observed_q, "low": low, "high": high,
        "agrees": low <= declared <= high or (high_rank == n - 1 and declared >= low),
    }  # fmt: skip
