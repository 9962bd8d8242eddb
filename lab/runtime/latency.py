"""Where a job's time goes: queue wait, service and end to end, as histograms that merge exactly.

Each value (ms) falls in a log-linear bucket, HDR-style: exact to the microsecond below 128 µs,
then 128 buckets per power of two, so a bucket's midpoint is within 0.4 % of any value in it
(≤ 1 % as promised). Buckets are integers, counted in Redis by the same script that counts the
job, and only when the job is counted for the first time; two workers' histograms add up
exactly, and quantiles come from the merged counts. Pure: no I/O.

    queueWait  released (or due again after a retry's delay) → started, of the attempt that ended
    service    started → its handler returned (a kind run one by one: its own work) or written (a
               kind written in bulk: the write is its work), or failed for good, of that attempt
    endToEnd   first released → finished or dead-lettered, retries included
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

METRICS = ("queueWait", "service", "endToEnd")
SHORT = {"queueWait": "q", "service": "s", "endToEnd": "e"}  # field prefixes in Redis
LONG = {v: k for k, v in SHORT.items()}
WINDOW_S = 10
# The longest duration counted as itself; longer ones (a job released days ago, clocks far
# apart) count as this, so a batch's sums stay whole numbers Redis takes.
MAX_US = 30 * 86_400 * 1_000_000
SUB_BITS = 7  # 128 buckets per power of two
SUB = 1 << SUB_BITS
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
# Prometheus' coarse buckets (seconds): lifetime histograms `lab_job_*_seconds`.
PROMETHEUS_LE = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                 25.0, 50.0, 100.0, 250.0, 600.0, 1800.0, 3600.0)  # fmt: skip
PROMETHEUS_LE_US = tuple(round(le * 1_000_000) for le in PROMETHEUS_LE)


def bucket_of(ms: float) -> int:
    """The bucket of a duration in milliseconds (negative values, clock skew, count as 0)."""
    us = max(0, int(ms * 1000))
    if us < SUB:
        return us
    shift = us.bit_length() - SUB_BITS - 1
    return (shift + 1) * SUB + ((us >> shift) - SUB)


def bounds_us(bucket: int) -> tuple[int, int]:
    """The bucket's values in µs: [low, high)."""
    if bucket < SUB:
        return bucket, bucket + 1
    shift = bucket // SUB - 1
    mantissa = bucket % SUB + SUB
    return mantissa << shift, (mantissa + 1) << shift


def value_ms(bucket: int) -> float:
    """The value a bucket stands for: its midpoint, in ms."""
    low, high = bounds_us(bucket)
    return (low + high) / 2 / 1000


@dataclass
class Histogram:
    counts: dict[int, int] = field(default_factory=dict)

    def add(self, bucket: int, n: int = 1) -> None:
        self.counts[bucket] = self.counts.get(bucket, 0) + n

    def merge(self, other: Histogram) -> Histogram:
        out = Histogram(dict(self.counts))
        for b, n in other.counts.items():
            out.add(b, n)
        return out

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def quantile(self, q: float) -> float | None:
        """The value (ms) at or below which a share `q` of the counted values fall."""
        total = self.count
        if not total:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return value_ms(b)
        return value_ms(max(self.counts))

    def mean(self) -> float | None:
        total = self.count
        return sum(value_ms(b) * n for b, n in self.counts.items()) / total if total else None

    def summary(self) -> dict[str, Any]:
        """count, mean, p50 … p99.9 and max, in ms (rounded to the µs)."""
        out: dict[str, Any] = {"count": self.count}
        if not self.count:
            return out
        out["meanMs"] = round(self.mean() or 0.0, 3)
        for q in QUANTILES:
            out[f"p{q * 100:g}Ms"] = round(self.quantile(q) or 0.0, 3)
        out["maxMs"] = round(bounds_us(max(self.counts))[1] / 1000, 3)
        return out

    def cdf(self) -> list[tuple[float, float]]:
        """(ms, share at or below) for each bucket that holds anything: a CDF to draw."""
        total, seen, out = self.count, 0, []
        for b in sorted(self.counts):
            seen += self.counts[b]
            out.append((value_ms(b), seen / total))
        return out


def parse_fields(raw: Mapping[str, str]) -> Iterable[tuple[str, str, int, int]]:
    """(metric, kind, bucket, count) of a run's histogram hash, `<q|s|e>|<kind>|<bucket>` (a
    hash an older lab wrote, with the window inside each field, reads the same; unknown fields
    are skipped)."""
    for name, value in raw.items():
        parts = name.split("|")
        if len(parts) not in (3, 4) or parts[0] not in LONG:
            continue
        try:
            yield LONG[parts[0]], parts[1], int(parts[-1]), int(value)
        except ValueError:
            continue


def histograms(raw: Mapping[str, str]) -> dict[str, Histogram]:
    """Each metric's whole histogram (every kind) of a run's hash, or of one window's."""
    out = {m: Histogram() for m in METRICS}
    for metric, _kind, bucket, n in parse_fields(raw):
        out[metric].add(bucket, n)
    return out


def run_latency(
    run_id: str, raw: Mapping[str, str], windows: Mapping[int, Mapping[str, str]] | None = None
) -> dict[str, Any]:
    """`GET /runs/{id}/latency`: each metric overall and per kind from the run's histogram
    hash, and (given `windows`, window → its hash) per 10-second window."""
    overall: dict[str, Histogram] = {m: Histogram() for m in METRICS}
    by_kind: dict[str, dict[str, Histogram]] = {m: {} for m in METRICS}
    for metric, kind, bucket, n in parse_fields(raw):
        overall[metric].add(bucket, n)
        by_kind[metric].setdefault(kind, Histogram()).add(bucket, n)
    out: dict[str, Any] = {"runId": run_id, "unit": "ms", "windowSeconds": WINDOW_S}
    per_window = {w: histograms(h) for w, h in sorted((windows or {}).items())}
    for metric in METRICS:
        entry: dict[str, Any] = {
            **overall[metric].summary(),
            "byKind": {k: h.summary() for k, h in sorted(by_kind[metric].items())},
        }
        if windows is not None:
            entry["windows"] = [
                {"t": w * WINDOW_S, **h[metric].summary()}
                for w, h in per_window.items()
                if h[metric].count
            ]
        out[metric] = entry
    return out


def prometheus_bucket(ms: float) -> int:
    """The index of the first coarse bucket (`PROMETHEUS_LE`) a duration fits, or its length
    (+Inf)."""
    return bisect.bisect_left(PROMETHEUS_LE, ms / 1000)


def timing(
    created_ms: int,
    released_ms: int,
    started_ms: float,
    finished_ms: float,
    served_ms: float = 0.0,
) -> list[int]:
    """A job's three durations as the counting script takes them: the fine buckets of queue
    wait, service and end to end, then their coarse (Prometheus) buckets, then their µs; -1
    for one not known (a message without a release time). Service ends at `served_ms` when
    given (a kind run one by one: when its handler returned), else when the job finished.
    Plain ints (`bucket_of` is inlined here)."""
    out = [-1] * 9
    for m, (start, end) in enumerate(
        (
            (released_ms, started_ms),
            (started_ms, served_ms or finished_ms),
            (created_ms, finished_ms),
        )
    ):
        if start:
            us = int(end * 1000 - start * 1000)
            us = min(us, MAX_US) if us > 0 else 0
            if us < SUB:
                out[m] = us
            else:
                shift = us.bit_length() - SUB_BITS - 1
                out[m] = (shift + 1) * SUB + ((us >> shift) - SUB)
            out[3 + m] = bisect.bisect_left(PROMETHEUS_LE_US, us)
            out[6 + m] = us
    return out


@dataclass
class RunTimings:
    """One run's ended jobs of a batch, as the counting script takes them: the 10-second
    `window` they ended in, their `kinds`, and per job `(seq, kind index (1-based), created,
    released, started, served)` in ms (served: when a kind run one by one returned, else 0),
    all `finished` at once.

    `added_up()` is what the script counts when every job of the batch is new: counts per
    bucket, a few hundred numbers whatever the batch's size, made by counting each distinct
    duration once (jobs released in the same millisecond share theirs). `detail()` is one
    `[seq, kind, *timing]` a job, for a batch with a job seen before (the script then adds only
    the new ones)."""

    window: int
    kinds: list[str]
    finished: float
    # (seq, kind, created, released, started, served[, ended]): a shim in another framework's
    # worker gives each job's own end (`lab.targets.shim`); lab's worker ends a batch at once.
    jobs: list[tuple[Any, ...]] = field(default_factory=list)

    def detail(self) -> dict[str, Any]:
        f = self.finished
        return {"window": self.window, "kinds": self.kinds, "jobs": [
            [job[0], job[1], *timing(job[2], job[3], job[4], job[6] if len(job) > 6 else f,
                                     job[5])]
            for job in self.jobs
        ]}  # fmt: skip

    def added_up(self) -> dict[str, Any]:
        """`fine` and `coarse` `[metric, kind, bucket, n]`, `sums` `[metric, kind, µs]`
        (metrics 1-based, as the script's), per kind from plain lists of µs."""
        f_us = self.finished * 1000
        # Each kind's durations in µs, per metric: (queue wait, service, end to end).
        by_kind: dict[int, tuple[list[int], list[int], list[int]]] = {}
        for job in self.jobs:
            _, k, c, r, s, v = job[:6]
            end_us = job[6] * 1000 if len(job) > 6 else f_us  # a job that ended on its own
            lists = by_kind.get(k)
            if lists is None:
                lists = by_kind[k] = ([], [], [])
            if r:
                lists[0].append(int(s * 1000 - r * 1000))
            lists[1].append(int((v * 1000 if v else end_us) - s * 1000))
            if c:
                lists[2].append(int(end_us - c * 1000))
        fine: dict[tuple[int, int, int], int] = {}
        coarse: dict[tuple[int, int, int], int] = {}
        sums: dict[tuple[int, int], int] = {}
        for kind, lists in by_kind.items():
            for m, values in enumerate(lists, start=1):
                if not values:
                    continue
                total = 0
                for us, n in Counter(values).items():  # each distinct duration once
                    us = min(us, MAX_US) if us > 0 else 0
                    if us < SUB:
                        bucket = us
                    else:
                        shift = us.bit_length() - SUB_BITS - 1
                        bucket = (shift + 1) * SUB + ((us >> shift) - SUB)
                    one = (m, kind, bucket)
                    fine[one] = fine.get(one, 0) + n
                    one = (m, kind, bisect.bisect_left(PROMETHEUS_LE_US, us))
                    coarse[one] = coarse.get(one, 0) + n
                    total += us * n
                sums[(m, kind)] = total
        return {
            "window": self.window,
            "kinds": self.kinds,
            "agg": {
                "fine": [[*key, n] for key, n in fine.items()],
                "coarse": [[*key, n] for key, n in coarse.items()],
                "sums": [[*key, us] for key, us in sums.items()],
            },
        }
