"""An experiment file (TOML, read with `tomllib`), checked before anything runs:

    name = "scaling"
    repetitions = 3
    order = "random"        # or "sequential"
    seed = 1                # the order and every synthetic workload repeat exactly
    warmupSeconds = 5       # left out of the throughput measures

    [run]                   # what every trial runs: any field of POST /run
    x = 20000
    kind = "index"

    [factors]               # every combination of levels is a configuration
    workers = [1, 2]
    prefetch = [50, 500]

    [[slo]]                 # optional: the run's objectives, judged per trial
    metric = "endToEnd.p99"
    maxMs = 2000

A factor is a run field (`y`, `x`, `shape`, `kind`, or a payload field by its dotted name,
`payload.serviceMs.median`), a setting of the trial's processes (`workers`, `concurrency`,
`prefetch`, `batch`, `lingerMs`, `queueType`), `statusLoad` (GET /status requests a second
offered while the trial's run runs, and measured) or `fault` (a fault preset by name, `lab fault
presets`, on the trial's own fault proxy). Pure: `SpecError` names the key at fault.

`procedure` says what a trial does: `run` (the default: one run of `[run]` and the factors) or
`throughput` (`lab bench throughput`'s measure: the scheduler alone releases `x` jobs, then the
workers drain them, then an unthrottled run end to end while GET /status is polled).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.ops.faults import presets
from lab.runtime import shapes, slo

# A factor that sets the trial's processes → the setting it is (`Settings` field) and its bounds.
PROCESS_FACTORS: dict[str, tuple[str, int, int]] = {
    "workers": ("", 1, 32),
    "concurrency": ("concurrency", 1, 1000),
    "prefetch": ("prefetch", 1, 65535),
    "batch": ("batch", 1, 10000),
    "lingerMs": ("linger_ms", 0, 60000),
}
RUN_FIELDS = ("x", "y", "shape", "kind", "payload", "seed")
CONDITIONS = ("statusLoad", "fault")  # what surrounds a trial's run, not the run itself
PROCEDURES = ("run", "throughput")
MAX_STATUS_LOAD = 20_000
MAX_TRIALS = 10_000
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


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

    @classmethod
    def from_file(cls, path: str | Path) -> Spec:
        raw = Path(path).read_bytes()
        try:
            data = tomllib.loads(raw.decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SpecError(f"{path}: not TOML ({exc})") from None
        return cls.of(data, hashlib.sha256(raw).hexdigest())

    @classmethod
    def of(cls, data: dict[str, Any], digest: str = "") -> Spec:
        known = {"name", "repetitions", "order", "seed", "warmupSeconds", "run", "factors", "slo",
                 "procedure"}  # fmt: skip
        if not digest:  # built in code: the same data, the same experiment
            digest = hashlib.sha256(
                json.dumps(data, sort_keys=True, default=str).encode()
            ).hexdigest()
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(
                f"{unknown[0]}: not a key of an experiment ({', '.join(sorted(known))})"
            )
        name = data.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise SpecError("name: letters, digits, '.', '_' or '-', up to 64 (it names folders)")
        repetitions = _whole(data.get("repetitions", 3), "repetitions", 1, 1000)
        order = data.get("order", "random")
        if order not in ("random", "sequential"):
            raise SpecError("order: random or sequential")
        seed = _whole(data.get("seed", 0), "seed", 0, 2**31 - 1)
        warmup = data.get("warmupSeconds", 0)
        if (
            isinstance(warmup, bool)
            or not isinstance(warmup, (int, float))
            or not (math.isfinite(warmup) and 0 <= warmup <= 3600)
        ):
            raise SpecError("warmupSeconds: a number of seconds from 0 to 3600")
        run = data.get("run", {})
        if not isinstance(run, dict):
            raise SpecError("run: a table of POST /run fields ([run] x = 20000 …)")
        for key in run:
            if key not in RUN_FIELDS:
                raise SpecError(f"run.{key}: not a field of POST /run ({', '.join(RUN_FIELDS)})")
        factors = data.get("factors", {})
        if not isinstance(factors, dict):
            raise SpecError("factors: a table of name = [levels]")
        for key, levels in factors.items():
            _check_factor(key, levels)
        objectives = data.get("slo", [])
        try:
            slo.parse(objectives)
        except slo.SloError as exc:
            raise SpecError(str(exc)) from None
        procedure = data.get("procedure", "run")
        if procedure not in PROCEDURES:
            raise SpecError(f"procedure: {' or '.join(PROCEDURES)}")
        if procedure == "throughput":
            _throughput_only(run, factors, objectives)
        spec = cls(name, repetitions, order, seed, float(warmup), dict(run),
                   {k: list(v) for k, v in factors.items()}, list(objectives), digest,
                   procedure)  # fmt: skip
        if "x" not in run and "x" not in factors:
            raise SpecError("run.x: how many jobs each trial runs")
        if spec.trial_count > MAX_TRIALS:
            raise SpecError(f"factors: {spec.trial_count:,} trials; at most {MAX_TRIALS:,}")
        return spec

    @property
    def configurations(self) -> list[dict[str, Any]]:
        """Every combination of the factors' levels, in the file's order."""
        combos: list[dict[str, Any]] = [{}]
        for key, levels in self.factors.items():
            combos = [{**c, key: level} for c in combos for level in levels]
        return combos

    @property
    def trial_count(self) -> int:
        return len(self.configurations) * self.repetitions

    def body(self, levels: dict[str, Any]) -> dict[str, Any]:
        """The trial's POST /run body: `[run]`, its run factors, the seed, the objectives."""
        out: dict[str, Any] = {k: v for k, v in self.run.items()}
        out.setdefault("seed", self.seed)
        for key, level in levels.items():
            if key.startswith("payload."):
                _set_dotted(out.setdefault("payload", {}), key.split(".")[1:], level)
            elif key == "shape" and isinstance(level, str):
                out[key] = shapes.from_text(level)
            elif key in RUN_FIELDS:
                out[key] = level
        if self.slo:
            out["slo"] = self.slo
        return out

    def process_settings(self, levels: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """How many workers the trial starts, and the settings its processes run with."""
        workers, settings = 1, {}
        for key, level in levels.items():
            if key == "workers":
                workers = level
            elif key in PROCESS_FACTORS:
                settings[PROCESS_FACTORS[key][0]] = level
            elif key == "queueType":
                settings["queue_type"] = level
        return workers, settings

    def conditions(self, levels: dict[str, Any]) -> tuple[int, str]:
        """What surrounds the trial's run: GET /status requests a second, the fault preset."""
        return int(levels.get("statusLoad", 0)), str(levels.get("fault", "none"))


def _whole(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(f"{key}: a whole number from {low} to {high}")
    return value


def _check_factor(key: str, levels: Any) -> None:
    where = f"factors.{key}"
    if not isinstance(levels, list) or not 1 <= len(levels) <= 100:
        raise SpecError(f"{where}: a list of 1 to 100 levels")
    if len({repr(level) for level in levels}) != len(levels):
        raise SpecError(f"{where}: a level is listed twice")
    if key in PROCESS_FACTORS:
        _, low, high = PROCESS_FACTORS[key]
        for level in levels:
            _whole(level, where, low, high)
    elif key == "queueType":
        if any(level not in ("classic", "quorum") for level in levels):
            raise SpecError(f"{where}: classic or quorum")
    elif key == "y":
        for level in levels:
            if (
                isinstance(level, bool)
                or not isinstance(level, (int, float))
                or not (shapes.MIN_RATE <= level <= shapes.MAX_RATE)
            ):
                raise SpecError(f"{where}: jobs per minute from {shapes.MIN_RATE:g} to "
                                f"{shapes.MAX_RATE:g}")  # fmt: skip
    elif key == "x":
        for level in levels:
            _whole(level, where, 1, 10_000_000)
    elif key == "shape":
        for level in levels:
            try:
                shapes.parse(shapes.from_text(level) if isinstance(level, str) else level)
            except shapes.ShapeError as exc:
                raise SpecError(f"{where}: {exc}") from None
    elif key == "kind":
        if any(not isinstance(level, str) for level in levels):
            raise SpecError(f"{where}: job kind names (lab kind list)")
    elif key == "statusLoad":
        for level in levels:
            _whole(level, where, 0, MAX_STATUS_LOAD)
    elif key == "fault":
        for level in levels:
            try:
                presets.check(level)
            except presets.PresetError as exc:
                raise SpecError(f"{where}: {exc}") from None
    elif key.startswith("payload.") and len(key) > len("payload."):
        pass  # the kind checks its payload when the trial's run starts (a 422 names the field)
    else:
        allowed = [*RUN_FIELDS[:4], "payload.<field>", *PROCESS_FACTORS, "queueType", *CONDITIONS]
        raise SpecError(f"{where}: not a factor lab can vary ({', '.join(allowed)})")


def _throughput_only(run: dict[str, Any], factors: dict[str, Any], objectives: Any) -> None:
    """The throughput procedure releases `x` index jobs as fast as they go: nothing else of a
    run can vary, and the bench polls GET /status itself."""
    for key in run:
        if key not in ("x", "seed"):
            raise SpecError(f"run.{key}: the throughput procedure runs x index jobs as fast as "
                            "they go (only x)")  # fmt: skip
    for key in factors:
        if key in RUN_FIELDS[1:] or key.startswith("payload.") or key == "statusLoad":
            raise SpecError(f"factors.{key}: the throughput procedure varies x, the processes' "
                            "settings and fault, not the run")  # fmt: skip
    if objectives:
        raise SpecError("slo: the throughput procedure judges no objectives (procedure = run does)")


def _set_dotted(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value
