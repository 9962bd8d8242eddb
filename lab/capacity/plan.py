"""A capacity spec's searches, pure: each search's bounds, the order they run in, the probes its
rows hold, and the most time they take (`lab capacity --dry-run`)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from lab.capacity import bracket
from lab.experiment.plan import SECONDS_PER_TRIAL_SETUP
from lab.experiment.spec import Spec, SpecError

# A probe at its longest, beyond its warm-up and step: its run started and its queue drained or
# purged (a broke probe's workers finish what they hold).
PROBE_OVERHEAD_S = 1 + 15


def bounds_of(spec: Spec) -> bracket.Bounds:
    c = spec.capacity
    return bracket.Bounds(start=c["startRate"], precision=c["precision"],
                          repetitions=spec.repetitions, max_rate=c["maxRate"],
                          max_probes=c["maxProbes"])  # fmt: skip


def configurations(spec: Spec) -> list[tuple[int, dict[str, Any]]]:
    """Each search: its number (the file's order) and levels, in the order they run."""
    found = list(enumerate(spec.configurations, start=1))
    if spec.order == "random":
        random.Random(spec.seed).shuffle(found)
    return found


def worst_case_s(spec: Spec) -> float:
    """Seconds every search takes at most on a noiseless pipeline (`bracket.worst_case`)."""
    probe_s = spec.warmup_s + spec.capacity["stepSeconds"] + PROBE_OVERHEAD_S
    per_search = SECONDS_PER_TRIAL_SETUP + bracket.worst_case(bounds_of(spec)) * probe_s
    return per_search * len(spec.configurations)


def probes_of(rows: list[dict[str, Any]], configuration: int) -> list[bracket.Probe]:
    """The probes of a search that have a verdict, in the order they ran."""
    mine = sorted(
        (r for r in rows if int(r["configuration"]) == configuration and not r.get("error")),
        key=lambda r: int(r["probe"]),
    )
    return [bracket.Probe(float(r["rate"]), r["held"] in (True, "True")) for r in mine]


def plan_rows(spec: Spec) -> list[dict[str, Any]]:
    """The dry run's table: each search by its number and levels, in the order they run."""
    return [{"search": c, **levels} for c, levels in configurations(spec)]


def plan_title(spec: Spec) -> str:
    """What every search of the dry run shares, and the time they take at most."""
    b = bounds_of(spec)
    return (f"{spec.name}: {len(spec.configurations)} searches from {b.start:,.6g} jobs/s "
            f"(at most {b.max_rate:,.6g}) to within {b.precision:.1%}, the highest rate that "
            f"held probed {b.repetitions}×; at most {bracket.worst_case(b)} probes each of "
            f"{spec.warmup_s:g} s + {spec.capacity['stepSeconds']} s: "
            f"{worst_case_s(spec) / 60:.1f} min")  # fmt: skip


def spec_of(
    *,
    start_rate: float,
    slo: Sequence[str | dict[str, Any]],
    kind: str | None = None,
    payload: dict[str, Any] | None = None,
    seed: int = 0,
    target: str | None = None,
    workers: Sequence[int] = (1,),
    concurrency: Sequence[int] = (),
    faults: Sequence[str] = (),
    precision: float | str = 0.05,
    repetitions: int = 3,
    step_seconds: int = 30,
    warmup_seconds: float = 10,
    max_rate: float | None = None,
    max_probes: int = 40,
    name: str = "capacity",
) -> Spec:
    """The capacity spec of `lab capacity`'s flags and `lab.capacity.search`'s arguments:
    what an experiment file with `procedure = "capacity"` holds, checked the same way
    (`SpecError` names the key). Objectives in the short form (`endToEnd.p99<500ms`) or as
    JSON; `faults` adds the healthy pipeline (`none`) first, its baseline."""
    from lab.runtime import slo as objectives

    run: dict[str, Any] = {"seed": seed}
    for key, value in (("kind", kind), ("payload", payload), ("target", target)):
        if value is not None:
            run[key] = value
    factors: dict[str, Any] = {"workers": list(workers)}
    if concurrency:
        factors["concurrency"] = list(concurrency)
    if faults:
        factors["fault"] = ["none", *(f for f in faults if f != "none")]
    search: dict[str, Any] = {"startRate": start_rate, "precision": precision,
                              "stepSeconds": step_seconds, "maxProbes": max_probes}  # fmt: skip
    if max_rate is not None:
        search["maxRate"] = max_rate
    try:
        parsed = [objectives.from_text(o) if isinstance(o, str) else o for o in slo]
    except objectives.SloError as exc:
        raise SpecError(str(exc)) from None
    return Spec.of({"name": name, "procedure": "capacity", "repetitions": repetitions,
                    "order": "sequential", "seed": seed, "warmupSeconds": warmup_seconds,
                    "run": run, "factors": factors, "slo": parsed, "capacity": search})  # fmt: skip
