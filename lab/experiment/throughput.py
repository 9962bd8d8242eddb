"""`lab bench throughput` as the built-in experiment it is: one configuration, `reps`
repetitions of the throughput procedure (lab.experiment.trial), its rows in a folder like any
experiment's, then the bench's report beside the path's ceilings. With `--peers`, the factor
`target` (lab and the peers, lab.experiment.peers) makes one configuration per target, their
repetitions interleaved, and the report adds each target's figures and lab's ratio to the best.

This sits above lab.measure: the bench's instruments (`Bench.rep`, the report, the ceilings)
are measurements; running them as trials is the experiment's part.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab import targets
from lab.config import Settings
from lab.experiment import peers as peer_figures
from lab.experiment.runner import Runner
from lab.experiment.spec import Spec, SpecError
from lab.experiment.trial import rep_of
from lab.measure.bench import BenchError, Report
from lab.measure.bench_table import markdown
from lab.measure.ceilings import ceilings
from lab.ops import stack
from lab.version import __version__


def run_bench(
    base: Settings,
    jobs: int,
    workers: int,
    prefetch: int,
    batch: int,
    reps: int,
    out_dir: Path,
    peers: tuple[str, ...] = (),
    say: Callable[[str], None] = lambda _line: None,
) -> tuple[Report, Path]:
    peer_figures.check_installed(peers)
    spec = throughput_spec(jobs, workers, prefetch or base.prefetch, batch or base.batch, reps,
                           peers, base.concurrency)  # fmt: skip
    stack.up(base)
    report = Report(
        params={"jobs": jobs, "workers": workers, "prefetch": prefetch, "batch": batch,
                "reps": reps},
        machine={"python": platform.python_version(), "platform": platform.platform(),
                 "cpus": os.cpu_count(), "lab": __version__},
    )  # fmt: skip
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    # Every target acks a job after its write (Celery's default acks before the task runs).
    rows = run_as_experiment(base.with_overrides(celery_acks="late"), spec, out_dir / stamp,
                             allow_failed=bool(peers), say=say)  # fmt: skip
    own = [row for row in rows if row.get("target", targets.DEFAULT) == targets.DEFAULT]
    failed = [row for row in own if row.get("error")]
    if failed:
        raise BenchError(f"trial {failed[0]['trial']} failed: {failed[0]['error']}")
    report.reps = [rep_of(row) for row in own]
    report.redis_bytes_per_run = int(own[-1]["redisBytesPerRun"])
    report.ceilings = ceilings(base, jobs, batch)
    if peers:
        order = (targets.DEFAULT, *peers)
        report.peers = peer_figures.summary(rows, order, jobs, workers, base.concurrency)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stamp}.json"
    data = {**asdict(report), "summary": report.summary(), "ratios": report.ratios(), "when": stamp}
    path.write_text(json.dumps(data, indent=2))
    (out_dir / f"{stamp}.md").write_text(markdown(report))
    return report, path


def throughput_spec(
    jobs: int,
    workers: int,
    prefetch: int,
    batch: int,
    reps: int,
    peers: tuple[str, ...] = (),
    concurrency: int = 1,
) -> Spec:
    """`reps` repetitions of the throughput procedure: one configuration, or with `peers` one
    per target (lab first), every one with the same jobs, workers and job threads, the trials
    shuffled by the seed so the repetitions interleave. Settings the worker would refuse are
    refused here, in one line, before anything starts."""
    factors: dict[str, list[Any]] = {"workers": [workers], "prefetch": [prefetch],
                                     "batch": [batch]}  # fmt: skip
    if peers:
        factors = {"target": [targets.DEFAULT, *peers], **factors, "concurrency": [concurrency]}
    try:
        return Spec.of({
            "name": "throughput", "procedure": "throughput", "repetitions": reps,
            "order": "random" if peers else "sequential", "run": {"x": jobs},
            "factors": factors,
        })  # fmt: skip
    except SpecError as exc:
        raise BenchError(str(exc)) from None


def run_as_experiment(
    base: Settings,
    spec: Spec,
    folder: Path,
    allow_failed: bool = False,
    say: Callable[[str], None] = lambda _line: None,
) -> list[dict[str, Any]]:
    """Run a built-in experiment's trials into `folder` (results.csv and .parquet, manifest:
    `lab experiment report` and `lab.experiment.load` read it); a trial that failed fails the
    measure, naming its error, unless `allow_failed` (a peer's failure is a row the report
    shows)."""
    rows = Runner(spec, folder, base, say=say).run()
    failed = [row for row in rows if row.get("error")]
    if failed and not allow_failed:
        raise BenchError(f"trial {failed[0]['trial']} failed: {failed[0]['error']}")
    return rows
