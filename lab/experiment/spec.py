"""An experiment file (TOML, read with `tomllib`), checked before anything runs:

    name = "scaling"
    repetitions = 3
    order = "random"        # or "sequential"
    seed = 1                # the order and every synthetic workload repeat exactly
    warmupSeconds = 5       # left out of the throughput measures

    [run]                   # what every trial runs: x, y, shape, kind, payload, seed
    x = 20000
    kind = "index"

    [factors]               # every combination of levels is a configuration
    workers = [1, 2]
    prefetch = [50, 500]

    [[slo]]                 # optional: the run's objectives, judged per trial
    metric = "endToEnd.p99"
    maxMs = 2000

A factor is one of `lab.experiment.factors.FACTORS` (a run field such as `y`, `shape` or a payload
field by its dotted name, `payload.serviceMs.median`; a setting of the trial's processes such as
`workers` or `prefetch`; what surrounds the run: `statusLoad`, `fault`): each checks its own
levels and says how a level makes the trial (`Spec.setup`). Pure: `SpecError` names the key at
fault.

`procedure` says what a trial does: `run` (the default: one run of `[run]` and the factors) or
`throughput` (`lab bench throughput`'s measure: the scheduler alone releases `x` index jobs, then
the workers, lab's or a target's, drain them, then an unthrottled run end to end while GET
/status is polled); `capacity`
searches each configuration's highest sustained rate instead (`[capacity]`: its start rate,
precision, step; lab.capacity runs it).

Every value is checked before anything is built (lab.experiment.tomlfile bounds the numbers;
the plan's size is the product of the level counts, refused past `MAX_TRIALS` before a
configuration exists), and a process setting's level is checked as the trial's processes check
it at start (`lab.config.load`), so a factor a process refuses never gets past the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.experiment import tomlfile
from lab.experiment.factors import FACTORS, PROCEDURES, Factor, Setup, payload_value, run_fields
from lab.runtime import slo
from lab.runtime.fields import FieldError
from lab.runtime.shapes import MAX_PER_SECOND, MIN_RATE
from lab.runtime.stores.runs import MAX_JOBS

MAX_TRIALS = 10_000
MAX_FACTORS = 32
MAX_LEVELS = 100
MAX_SEED = 2**31 - 1
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
KNOWN = ("name", "repetitions", "order", "seed", "warmupSeconds", "run", "factors", "slo",
         "procedure", "capacity")  # fmt: skip
CAPACITY = ("startRate", "precision", "stepSeconds", "maxRate", "maxProbes")
SPAN = 1024  # a search probes from startRate / SPAN to startRate × SPAN unless maxRate says


class SpecError(ValueError):
    """The experiment file cannot run as written; the message names the key."""


@dataclass(frozen=True)
class Spec:
    name: str
    repetitions: int
    order: str
    seed: int
    warmup_s: float
    run: dict[str, Any]
    factors: dict[str, list[Any]]
    slo: list[dict[str, Any]] = field(default_factory=list)
    digest: str = ""  # sha256 of the file's bytes: a resumed experiment must be this one
    procedure: str = "run"
    capacity: dict[str, Any] = field(default_factory=dict)  # the capacity procedure's search

    @classmethod
    def from_file(cls, path: str | Path) -> Spec:
        try:
            raw = tomlfile.read(path)
        except tomlfile.TomlError as exc:
            raise SpecError(str(exc)) from None
        return cls.from_bytes(raw)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Spec:
        """An experiment file's bytes (TOML); its identity is their hash."""
        try:
            data = tomlfile.loads(raw)
        except tomlfile.TomlError as exc:
            raise SpecError(str(exc)) from None
        return cls.of(data, hashlib.sha256(raw).hexdigest())

    @classmethod
    def of(cls, data: Any, digest: str = "") -> Spec:
        """The experiment `data` describes, or `SpecError` naming the key; nothing else."""
        try:
            return cls._of(data, digest)
        except SpecError:
            raise
        except (tomlfile.TomlError, FieldError) as exc:  # a factor's check names its key
            raise SpecError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - what no check foresaw is still this error
            problem = f"cannot be read as an experiment ({type(exc).__name__})"
            raise SpecError(f"file: {problem}") from None

    @classmethod
    def _of(cls, data: Any, digest: str) -> Spec:
        if not isinstance(data, dict):
            raise SpecError("file: a table of keys (name = …, [run], [factors])")
        data = tomlfile.bounded(data)
        if not digest:  # built in code: the same data, the same experiment
            digest = hashlib.sha256(
                json.dumps(data, sort_keys=True, default=str).encode()
            ).hexdigest()
        unknown = sorted(set(data) - set(KNOWN))
        if unknown:
            raise SpecError(f"{unknown[0][:40]}: not a key of an experiment "
                            f"({', '.join(sorted(KNOWN))})")  # fmt: skip
        name, repetitions, order, seed, warmup = _header(data)
        run = _run(data.get("run", {}))
        factors = data.get("factors", {})
        _check_size(factors, repetitions)
        kinds = {key: _factor(key, levels) for key, levels in factors.items()}
        for key, kind in kinds.items():
            kind.check_with(key, run, factors)
        objectives = data.get("slo", [])
        try:
            slo.parse(objectives)
        except slo.SloError as exc:
            raise SpecError(str(exc)) from None
        procedure = data.get("procedure", "run")
        if procedure not in PROCEDURES:
            raise SpecError(f"procedure: {' or '.join(PROCEDURES)}")
        _procedure_varies(procedure, run, kinds, objectives)
        search = _capacity(data.get("capacity"), procedure, warmup)
        if "x" not in run and "x" not in factors and procedure != "capacity":
            raise SpecError("run.x: how many jobs each trial runs")
        return cls(name, repetitions, order, seed, warmup, dict(run),
                   {k: list(v) for k, v in factors.items()}, list(objectives), digest,
                   procedure, search)  # fmt: skip

    @property
    def configurations(self) -> list[dict[str, Any]]:
        """Every combination of the factors' levels, in the file's order."""
        combos: list[dict[str, Any]] = [{}]
        for key, levels in self.factors.items():
            combos = [{**c, key: level} for c in combos for level in levels]
        return combos

    @property
    def trial_count(self) -> int:
        """From the level counts alone: nothing is built to count it."""
        return math.prod(len(levels) for levels in self.factors.values()) * self.repetitions

    def setup(self, levels: dict[str, Any]) -> Setup:
        """The trial these levels make: `[run]` (a `[run]` field as its factor applies it), the
        seed, then each level applied by its factor, and the objectives."""
        setup = Setup.of(self.run)
        setup.body.setdefault("seed", self.seed)
        for key, value in self.run.items():
            if key in FACTORS.kinds:
                FACTORS.kinds[key].apply(key, value, setup)
        for key, level in levels.items():
            _factor_of(key).apply(key, level, setup)
        if self.slo:
            setup.body["slo"] = self.slo
        return setup

    def body(self, levels: dict[str, Any]) -> dict[str, Any]:
        """The trial's POST /run body."""
        return self.setup(levels).body


def _whole(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(f"{key}: a whole number from {low:,} to {high:,}")
    return value


def _header(data: dict[str, Any]) -> tuple[str, int, str, int, float]:
    """The experiment's name, repetitions, order, seed and warm-up."""
    name = data.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise SpecError("name: letters, digits, '.', '_' or '-', up to 64 (it names folders)")
    repetitions = _whole(data.get("repetitions", 3), "repetitions", 1, 1000)
    order = data.get("order", "random")
    if order not in ("random", "sequential"):
        raise SpecError("order: random or sequential")
    seed = _whole(data.get("seed", 0), "seed", 0, MAX_SEED)
    warmup = data.get("warmupSeconds", 0)
    if isinstance(warmup, bool) or not isinstance(warmup, (int, float)) or not 0 <= warmup <= 3600:
        raise SpecError("warmupSeconds: a number of seconds from 0 to 3600")
    return name, repetitions, order, seed, float(warmup)


def _run(run: Any) -> dict[str, Any]:
    """`[run]`: fields of POST /run, each a run factor's level, the payload or the seed."""
    if not isinstance(run, dict):
        raise SpecError("run: a table of POST /run fields ([run] x = 20000 …)")
    allowed = run_fields()
    for key, value in run.items():
        where = f"run.{key[:40]}"
        if key not in allowed:
            raise SpecError(f"{where}: not a field of POST /run ({', '.join(allowed)})")
        if key == "payload":
            if not isinstance(value, dict):
                raise SpecError(f"{where}: a table")
            payload_value(value, where)
        elif key == "seed":
            _whole(value, where, 0, MAX_SEED)
        else:
            FACTORS.kinds[key].check_level(key, value, where)
    return run


def _check_size(factors: Any, repetitions: int) -> None:
    """The plan's size from the level counts, before any configuration is built."""
    if not isinstance(factors, dict) or len(factors) > MAX_FACTORS:
        raise SpecError(f"factors: a table of at most {MAX_FACTORS} name = [levels]")
    for key, levels in factors.items():
        if not isinstance(levels, list) or not 1 <= len(levels) <= MAX_LEVELS:
            raise SpecError(f"factors.{key[:40]}: a list of 1 to {MAX_LEVELS} levels")
    count = math.prod(len(levels) for levels in factors.values()) * repetitions
    if count > MAX_TRIALS:
        named = " × ".join(f"{key[:40]} ({len(levels)})" for key, levels in factors.items())
        raise SpecError(f"factors: {named} × {repetitions} repetitions = {count:,} trials; at "
                        f"most {MAX_TRIALS:,}")  # fmt: skip


def _factor_of(key: str) -> type[Factor]:
    found = FACTORS.find(key)
    if found is None:
        raise SpecError(f"factors.{key[:40]}: not a factor lab can vary "
                        f"({', '.join(FACTORS.names)})")  # fmt: skip
    return found


def _factor(key: str, levels: list[Any]) -> type[Factor]:
    """The factor `key` names, its name and every level checked by it; no level twice."""
    kind = _factor_of(key)
    where = f"factors.{key[:40]}"
    kind.check_name(key, where)
    seen = set()
    for i, level in enumerate(levels):
        kind.check_level(key, level, f"{where}[{i}]")
        try:  # the plan names a trial by its levels' JSON
            seen.add(json.dumps(level, sort_keys=True))
        except (TypeError, ValueError):
            raise SpecError(
                f"{where}[{i}]: a JSON value (text, a number, a table or a list)"
            ) from None
    if len(seen) != len(levels):
        raise SpecError(f"{where}: a level is listed twice")
    return kind


def _procedure_varies(
    procedure: str, run: dict[str, Any], kinds: dict[str, type[Factor]], objectives: Any
) -> None:
    """What a procedure other than `run` can take: the throughput procedure releases `x` index
    jobs to a target as fast as they go, so nothing else of a run can vary, and the bench polls
    GET /status itself; the capacity procedure sizes and paces each probe's run itself and needs
    objectives to judge it by."""
    if procedure == "run":
        return
    capacity = procedure == "capacity"
    fields = ("kind", "payload", "seed", "target") if capacity else ("x", "seed", "target")
    for key in run:
        if key not in fields:
            what = (
                "searches the rate itself (kind, payload, seed, target)"
                if capacity
                else "runs x index jobs as fast as they go (only x and target)"
            )
            raise SpecError(f"run.{key}: the {procedure} procedure {what}")  # fmt: skip
    varies = ", ".join(c.type for c in FACTORS if procedure in c.procedures)
    for key, kind in kinds.items():
        if procedure not in kind.procedures:
            raise SpecError(f"factors.{key}: the {procedure} procedure varies only {varies}")
    if capacity:
        metrics = [o.get("metric") for o in objectives]
        if not any(m in ("throughput", slo.HEAD_AGE) or "." in str(m) for m in metrics):
            raise SpecError("slo: a capacity search needs an objective that sees a pipeline "
                            "fall behind: throughput, a latency or headAge (failedRatio alone "
                            "cannot)")  # fmt: skip
    elif objectives:
        raise SpecError(f"slo: the {procedure} procedure judges no objectives (procedure = run "
                        "does)")  # fmt: skip


def _capacity(table: Any, procedure: str, warmup_s: float) -> dict[str, Any]:
    """The capacity procedure's `[capacity]` table, every key checked and defaulted: the start
    rate (jobs/s), the precision (a share, or text such as "5%"), the step (seconds), the most
    it may probe (what a run can release) and its probes."""
    if procedure != "capacity":
        if table is not None:
            raise SpecError("capacity: only the capacity procedure takes it (procedure = "
                            '"capacity")')  # fmt: skip
        return {}
    if not isinstance(table, dict) or "startRate" not in table:
        raise SpecError("capacity.startRate: the rate the search starts from, jobs/s")
    unknown = sorted(set(table) - set(CAPACITY))
    if unknown:
        raise SpecError(f"capacity.{unknown[0][:40]}: not a key of [capacity] "
                        f"({', '.join(CAPACITY)})")  # fmt: skip
    step = _whole(table.get("stepSeconds", 30), "capacity.stepSeconds", 5, 3600)
    # A probe releases (warm-up + step + 1 s) × its rate jobs.
    ceiling = min(MAX_PER_SECOND, math.floor(MAX_JOBS / (warmup_s + step + 1)))
    start = _rate(table["startRate"], "capacity.startRate", ceiling)
    high = _rate(table.get("maxRate", min(ceiling, start * SPAN)), "capacity.maxRate", ceiling)
    if start > high:
        raise SpecError(f"capacity.startRate: at most capacity.maxRate ({high:,.6g})")
    probes = _whole(table.get("maxProbes", 40), "capacity.maxProbes", 1, 500)
    return {"startRate": start, "precision": precision(table.get("precision", 0.05)),
            "stepSeconds": step, "maxRate": high, "maxProbes": probes}  # fmt: skip


def _rate(value: Any, key: str, high: float) -> float:
    low = MIN_RATE / 60
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise SpecError(f"{key}: jobs per second, from {low:.4g} to {high:,.6g}")
    return float(value)


def precision(value: Any) -> float:
    """A relative precision: a share (0.05) or a percentage as text ("5%"), from 0.1 % to 100 %."""
    share = value
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            share = float(value.strip()[:-1]) / 100
        except ValueError:
            share = None
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.001 <= share <= 1:
        raise SpecError('capacity.precision: a share from 0.001 to 1, or a percentage ("5%")')
    return float(share)
