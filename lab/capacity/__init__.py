"""Capacity: the highest constant rate a pipeline sustains while its objectives hold, as an
interval, with the knee curve and a scalability model (docs/CAPACITY.md).

bracket.py  the search's decisions, pure: bracket by doubling, bisect, repeat, when it is done
step.py     a probe's step judged after the fact from what Redis counted, pure
probe.py    one probe on a running lab: its run, its judgment, its queue drained or purged
plan.py     a capacity spec's searches, their bounds and worst-case time; the spec of the flags
runner.py   the searches of a spec into a folder, one per configuration, resumable
answer.py   capacity.json: the intervals, the verdict, the fits, the faults' shares, pure
usl.py      Gunther's Universal Scalability Law fitted to the capacities, pure
plots.py    the knee curves and the fit, drawn (matplotlib)

    import lab.capacity
    found = lab.capacity.search(kind="synthetic", payload={...}, slo=["endToEnd.p99<500ms"],
                                start_rate=50, workers=[1, 2, 4], out="capacity/synthetic")
    found.verdict, found.low, found.high, found.probes   # the probes: a pandas DataFrame
    lab.capacity.load("capacity/synthetic")               # the same from a folder
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.config import Settings

__all__ = ["Result", "load", "search"]


@dataclass
class Result:
    """capacity.json (`answer`) and every probe's row (`probes`, a pandas DataFrame)."""

    answer: dict[str, Any]
    probes: Any
    folder: Path

    @property
    def low(self) -> float | None:
        return self.answer["jobsPerSecond"]["low"]

    @property
    def high(self) -> float | None:
        return self.answer["jobsPerSecond"]["high"]

    @property
    def verdict(self) -> str:
        return str(self.answer["verdict"])


def load(folder: str | Path) -> Result:
    """A capacity folder's answer and probes."""
    from lab.experiment import results

    path = Path(folder)
    found = results.read_object(path / "capacity.json")
    if found is None:
        raise results.ResultsError(f"{path / 'capacity.json'} does not exist: no search has "
                                   "ended in this folder")  # fmt: skip
    return Result(found, results.load(path), path)


def search(
    *,
    out: str | Path,
    start_rate: float,
    slo: Sequence[str | dict[str, Any]],
    resume: bool = False,
    settings: Settings | None = None,
    say: Callable[[str], None] = print,
    **spec: Any,
) -> Result:
    """Search the capacity (`lab capacity`'s flags as arguments: `kind`, `payload`, `seed`,
    `target`, `workers`, `concurrency`, `faults`, `precision`, `repetitions`, `step_seconds`,
    `warmup_seconds`, `max_rate`, `max_probes`, `name`; `lab.capacity.plan.spec_of`) into the
    folder `out`, starting the stack if it is not up; returns its answer and probes."""
    from lab import config
    from lab.capacity.plan import spec_of
    from lab.capacity.runner import Searches
    from lab.ops import stack

    settings = settings or config.load()
    searches = Searches(spec_of(start_rate=start_rate, slo=slo, **spec), Path(out), settings,
                        resume=resume, say=say)  # fmt: skip
    searches.check()
    stack.up(settings, say=say)
    searches.run()
    return load(out)
