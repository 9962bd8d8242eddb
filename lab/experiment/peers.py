"""`lab bench throughput --peers`: lab beside other frameworks as one experiment whose factor is
`target` (lab and the peers), every target draining the same reference work (the `index` kind:
one Elasticsearch document per job, each end counted once in Redis) with the same workers and
job threads, the repetitions interleaved in the runner's seeded order. Pure: which peers were
asked for, and what the trials' rows say, each figure a mean with its 95 % interval
(lab.experiment.analysis) and lab's ratio to the best peer judged by Welch's test.
"""

from __future__ import annotations

from typing import Any

from lab import targets
from lab.experiment.analysis import interval, verdict
from lab.measure.bench import BenchError

# A target's figures: the summary's key, the row's column.
MEASURES = {
    "release": "releasedPerSecond",
    "drain": "drainedPerSecond",
    "e2e": "endToEndPerSecond",
    "workerCpu": "cpu.workerSecondsPer1000",
}


def names(text: str) -> tuple[str, ...]:
    """`celery,dramatiq` → the peers, in order and once each (lab, always measured, is not a
    peer); `BenchError` naming the targets lab knows for anything else."""
    known = [name for name in targets.names() if name != targets.DEFAULT]
    asked = [name.strip() for name in text.split(",") if name.strip()]
    for name in asked:
        if name not in targets.names():
            raise BenchError(f"--peers: {name[:40]!r} is not a target lab knows; give some of "
                             f"{', '.join(known)}, comma-separated")  # fmt: skip
    peers = tuple(dict.fromkeys(n for n in asked if n != targets.DEFAULT))
    if not peers:
        raise BenchError(f"--peers: name at least one of {', '.join(known)} (lab is always run)")
    return peers


def check_installed(peers: tuple[str, ...]) -> None:
    """Before minutes of benchmarking, not after: what this machine lacks to drive a peer."""
    for name in peers:
        missing = targets.target_class(name).missing()
        if missing:
            raise BenchError(f"--peers {name}: {missing}")


def summary(
    rows: list[dict[str, Any]], order: tuple[str, ...], jobs: int, workers: int, concurrency: int
) -> dict[str, Any]:
    """Each target's figures over its trials (in `order`: lab, then the peers as asked), the
    best peer by drain, and lab ÷ that peer."""
    by_target: dict[str, list[dict[str, Any]]] = {name: [] for name in order}
    for row in rows:
        by_target.setdefault(str(row["target"]), []).append(row)
    found = {name: of_target(trials, jobs) for name, trials in by_target.items() if trials}
    out: dict[str, Any] = {"jobs": jobs, "workers": workers, "concurrency": concurrency,
                           "targets": found}  # fmt: skip
    peers = [name for name in found if name != targets.DEFAULT and found[name]["drain"]["n"]]
    if targets.DEFAULT in found and peers:
        best = max(peers, key=lambda name: found[name]["drain"]["mean"])
        lab, other = by_target[targets.DEFAULT], by_target[best]
        out["best"] = best
        out["labVsBest"] = {key: ratio(lab, other, MEASURES[key]) for key in ("drain", "e2e")}
    return out


def of_target(trials: list[dict[str, Any]], jobs: int) -> dict[str, Any]:
    """One target's trials: each measure's mean and interval (over the trials that ran), the
    jobs its runs processed of those they should have (two runs a trial), and its verdict."""
    ran = [row for row in trials if not row.get("error")]
    out: dict[str, Any] = {key: interval(values(ran, column)).as_dict()
                           for key, column in MEASURES.items()}  # fmt: skip
    out["processed"] = sum(int(row.get("processed") or 0) for row in ran)
    out["expected"] = 2 * jobs * len(trials)
    out["errors"] = len(trials) - len(ran)
    out["clean"] = bool(ran) and all(_true(row.get("verdict.clean")) for row in ran)
    return out


def ratio(lab: list[dict[str, Any]], peer: list[dict[str, Any]], column: str) -> dict[str, Any]:
    """lab's mean ÷ the peer's, the range their 95 % intervals allow, and Welch's verdict."""
    a, b = values(lab, column), values(peer, column)
    mine, theirs = interval(a), interval(b)
    said, p = verdict(b, a)
    out: dict[str, Any] = {"ratio": mine.mean / theirs.mean if theirs.mean else None,
                           "low": None, "high": None, "verdict": said, "p": p}  # fmt: skip
    low, high, peer_low, peer_high = mine.low, mine.high, theirs.low, theirs.high
    if low is not None and high is not None and peer_low and peer_low > 0 and peer_high:
        out["low"], out["high"] = max(0.0, low) / peer_high, high / peer_low
    return out


def values(rows: list[dict[str, Any]], column: str) -> list[float]:
    return [
        float(row[column]) for row in rows if not row.get("error") and row.get(column) is not None
    ]


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"
