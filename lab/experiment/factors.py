"""What an experiment can vary. Each factor is one class registered in `FACTORS`: its name (or a
family of names, `payload.<field>`), what each level is (a `Field`: type, bounds, help, unit),
which procedures can vary it, and how a level applies to a trial (`apply` sets the trial's
`Setup`: its POST /run body, its processes' settings, the conditions around its run). The file's
checks (`lab.experiment.spec`), the trial (`lab.experiment.trial`), `lab experiment run --help`
and the table in docs/EXPERIMENTS.md are built from these classes, so a new factor is one class
here (docs/guides/extending.md walks through one). Pure: no I/O.

A process setting's level is read from `Settings` itself: its field takes the range (`bounded`)
or the choices (`chosen`) `lab.config` declares, and a level is checked by `lab.config.load`,
as the trial's processes read `LAB_<NAME>` at start, so a factor and a child process cannot
disagree.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lab import config, targets
from lab.experiment import tomlfile
from lab.ops.faults import presets
from lab.runtime import messages, shapes
from lab.runtime.fields import PYTHON_TYPES, Field, FieldError, FieldType
from lab.runtime.registry import Described, Registry, declare
from lab.runtime.stores.runs import MAX_JOBS

PROCEDURES = ("run", "throughput", "capacity")
MAX_WORKERS = 32
MAX_STATUS_LOAD = 20_000
MAX_SHAPE_TEXT = 500  # a short form or JSON; a longer shape is a table
PAYLOAD_FACTOR = re.compile(r"payload(\.[A-Za-z0-9_-]{1,64}){1,16}")


@dataclass
class Setup:
    """What a trial is: built from `[run]` and the trial's levels by each factor's `apply`."""

    body: dict[str, Any]  # its POST /run body
    workers: int = 1  # worker processes it starts
    settings: dict[str, Any] = field(default_factory=dict)  # `Settings` of its processes
    status_load: int = 0  # GET /status requests a second offered while its run runs
    fault: str = "none"  # a fault preset on a fault proxy of its own

    @classmethod
    def of(cls, run: dict[str, Any]) -> Setup:
        """`[run]` as a trial starts from it (a copy: a level never changes the file's run)."""
        return cls(copy.deepcopy(run))


def level_field(kind: FieldType, help: str, **bounds: Any) -> Field:
    """What every level of a factor is (a level is never absent)."""
    return Field("level", kind, help, required=True, **bounds)


def _named(name: str) -> str | None:
    """A factor's type from its name: the name itself, or the family it starts with."""
    if name in FACTORS.kinds:
        return name
    return next((c.type for c in FACTORS if c.family and name.startswith(c.family)), None)


FACTORS: Registry[Any] = Registry("factor", FieldError, key="factor", kind_of=_named)


class Factor(Described):
    """One thing an experiment varies. `type` is its name in `[factors]` (for a family, the name
    people read: `payload.<field>`, and `family` the prefix its names start with); `level` is
    what each level is; `procedures` are those that can vary it."""

    registry = FACTORS
    level: ClassVar[Field]
    family: ClassVar[str] = ""
    procedures: ClassVar[tuple[str, ...]] = PROCEDURES

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "level" in cls.__dict__:
            cls.fields = (cls.level,)  # what the registry's table and schema show

    @classmethod
    def about(cls) -> str:
        only = f" ({' or '.join(cls.procedures)} procedure only)"
        return cls.help + ("" if cls.procedures == PROCEDURES else only)

    @classmethod
    def check_name(cls, name: str, where: str) -> None:
        """A name of the family (`payload.serviceMs.median`); `FieldError` naming `where`."""

    @classmethod
    def check_level(cls, name: str, value: Any, where: str) -> None:
        """One level (or the `[run]` value) of factor `name`; `FieldError` naming `where`."""
        cls.level.read(value, where)

    @classmethod
    def check_with(cls, name: str, run: dict[str, Any], factors: dict[str, Any]) -> None:
        """Rules between this factor and the rest of the file (a payload field inside another)."""

    @classmethod
    def apply(cls, name: str, value: Any, setup: Setup) -> None:
        """Make the trial's `setup` what the level `value` says."""
        raise NotImplementedError


# --- the trial's run: a field of its POST /run body, as the API takes it ------------------------
class RunField(Factor):
    """A field of POST /run; it may be given in `[run]` too."""

    procedures: ClassVar[tuple[str, ...]] = ("run",)

    @classmethod
    def apply(cls, name: str, value: Any, setup: Setup) -> None:
        setup.body[name] = value


class X(RunField, type="x"):
    help = "jobs each trial's run releases"
    level = level_field("integer", "jobs", low=1, high=MAX_JOBS, unit="jobs")
    procedures = ("run", "throughput")  # a capacity search sizes each probe's run itself


class WhatRuns(RunField):
    """A field of what each run is, not of how fast it goes: a capacity search varies it too."""

    procedures: ClassVar[tuple[str, ...]] = ("run", "capacity")


class Y(RunField, type="y"):
    help = "the rate its run releases them at"
    level = level_field("number", "jobs per minute", low=shapes.MIN_RATE, high=shapes.MAX_RATE,
                        unit="jobs/min")  # fmt: skip


class Shape(RunField, type="shape"):
    help = "Y over time: a table, or an ASCII short form such as `ramp:600..12000:60s`"
    level = level_field("any", "a load shape")

    @classmethod
    def check_level(cls, name: str, value: Any, where: str) -> None:
        if isinstance(value, str) and (not value.isascii() or len(value) > MAX_SHAPE_TEXT):
            raise FieldError(where, f"a short form of at most {MAX_SHAPE_TEXT} ASCII characters "
                             "(or a table)")  # fmt: skip
        try:
            shape = shapes.from_text(value) if isinstance(value, str) else value
            shapes.parse(tomlfile.bounded(shape, where))
        except shapes.ShapeError as exc:
            raise FieldError(where, str(exc)) from None

    @classmethod
    def apply(cls, name: str, value: Any, setup: Setup) -> None:
        setup.body[name] = shapes.from_text(value) if isinstance(value, str) else value


class Kind(WhatRuns, type="kind"):
    help = "the job kind its run releases, one of `lab kind list`"
    level = level_field("string", "a job kind's name", pattern=messages.KIND.pattern)


class Target(WhatRuns, type="target"):
    help = ("the system under test its run drives, one of `lab target list`: the trial's "
            "workers are that framework's (`lab up --target`)")  # fmt: skip
    level = level_field("string", "a target's name", choices=targets.names())
    procedures = PROCEDURES  # the throughput procedure too: `lab bench throughput --peers`


class Payload(Factor, type="payload.<field>"):
    help = ("a field of the run's payload by its dotted name (`payload.serviceMs.median`), "
            "checked by the kind when the trial's run starts")  # fmt: skip
    family = "payload."
    level = level_field("any", "a JSON value")
    procedures = ("run", "capacity")

    @classmethod
    def check_name(cls, name: str, where: str) -> None:
        if not PAYLOAD_FACTOR.fullmatch(name):
            raise FieldError(where, "payload.<field>[.<field>…], each field letters, digits, "
                             "'_' or '-'")  # fmt: skip

    @classmethod
    def check_level(cls, name: str, value: Any, where: str) -> None:
        payload_value(value, where, parts=name.count("."))

    @classmethod
    def check_with(cls, name: str, run: dict[str, Any], factors: dict[str, Any]) -> None:
        outer = next((f for f in factors if name.startswith(f"{f}.")), None)
        if outer is not None:
            raise FieldError(f"factors.{name}", f"inside factors.{outer}, which sets it whole")
        table: Any = run.get("payload", {})
        for part in name.split(".")[1:-1]:
            table = table.get(part, {})
            if not isinstance(table, dict):
                raise FieldError(f"factors.{name}", f"run.payload.{part} is not a table")

    @classmethod
    def apply(cls, name: str, value: Any, setup: Setup) -> None:
        target = setup.body.setdefault("payload", {})
        *path, last = name.split(".")[1:]
        for part in path:
            target = target.setdefault(part, {})
        target[last] = value


def payload_value(value: Any, where: str, parts: int = 0) -> None:
    """A payload (or a part of one `parts` deep): JSON, nested at most `messages.MAX_DEPTH`."""
    try:
        json.dumps(value)  # a TOML date is not JSON: the run's body could not carry it
    except (TypeError, ValueError):
        raise FieldError(where, "a JSON value (text, a number, a table or a list)") from None
    if messages.depth(value) + parts > messages.MAX_DEPTH:
        raise FieldError(where, f"the payload nests at most {messages.MAX_DEPTH} deep")


# --- the trial's processes ----------------------------------------------------------------------
class Workers(Factor, type="workers"):
    help = "worker processes the trial starts"
    level = level_field("integer", "workers", low=1, high=MAX_WORKERS)

    @classmethod
    def apply(cls, name: str, value: Any, setup: Setup) -> None:
        setup.workers = value


def setting_level(name: str, help: str) -> Field:
    """A level of the process setting `name`, as `Settings` declares it: its range
    (`lab.config.RANGES`) or its choices (`lab.config.CHOICES`). A setting that declares
    neither cannot be a factor: nothing would say which levels its processes take."""
    if name in config.RANGES:
        low, high = config.RANGES[name]
        return level_field("integer", help, low=low, high=high)
    if name in config.CHOICES:
        return level_field("string", help, choices=config.CHOICES[name])
    raise ValueError(f"{name}: declare its range (bounded) or choices (chosen) on Settings")


class Setting(Factor):
    """A setting of the trial's processes (`LAB_<SETTING>`)."""

    setting: ClassVar[str]  # its `Settings` field

    @classmethod
    def check_level(cls, name: str, value: Any, where: str) -> None:
        # The processes' own reader: a level is the text `LAB_<NAME>` will hold for each of them.
        env = f"LAB_{cls.setting.upper()}"
        if isinstance(value, bool) or not isinstance(value, PYTHON_TYPES[cls.level.type]):
            noun = "whole numbers" if cls.level.type == "integer" else "text"
            raise FieldError(where, f"{noun} ({env})")
        try:
            config.load({env: str(value)})
        except config.ConfigError as exc:
            raise FieldError(where, f"{exc}, so every trial's processes would refuse it") from None

    @classmethod
    def apply(cls, name: str, value: Any, setup: Setup) -> None:
        setup.settings[cls.setting] = value


def setting_factor(name: str, setting: str, help: str, noun: str) -> type[Setting]:
    """The factor `name` that sets `Settings.<setting>` for the trial's processes: a `Setting`
    class, registered (the class statement, written out, is in docs/guides/extending.md)."""
    level = setting_level(setting, noun)
    attributes = {"setting": setting, "help": help, "level": level}
    return declare(Setting, name[:1].upper() + name[1:], name, attributes)


setting_factor("concurrency", "concurrency", "job threads of each worker (`LAB_CONCURRENCY`)",
               "job threads")  # fmt: skip
setting_factor("prefetch", "prefetch", "deliveries each worker holds unacked (`LAB_PREFETCH`)",
               "messages")  # fmt: skip
setting_factor("batch", "batch", "deliveries a worker takes at once (`LAB_BATCH`)", "messages")
setting_factor("lingerMs", "linger_ms", "how long a worker waits to fill a batch (`LAB_LINGER_MS`)",
               "milliseconds")  # fmt: skip
setting_factor("queueType", "queue_type", "the queue's type (`LAB_QUEUE_TYPE`; `quorum` wants a "
               "cluster, docs/CLUSTER.md)", "a RabbitMQ queue type")  # fmt: skip


# --- what surrounds the trial's run -------------------------------------------------------------
class StatusLoad(Factor, type="statusLoad"):
    help = ("GET /status requests a second offered while the run runs (Locust; 0: none), "
            "measured as `status.*`")  # fmt: skip
    level = level_field("integer", "requests a second", low=0, high=MAX_STATUS_LOAD, unit="/s")
    procedures = ("run",)

    @classmethod
    def apply(cls, name: str, value: Any, setup: Setup) -> None:
        setup.status_load = value


class Fault(Factor, type="fault"):
    help = ("a fault preset (`lab fault presets`) on a fault proxy of the trial's own in front of "
            "Redis, RabbitMQ and Elasticsearch")  # fmt: skip
    level = level_field("string", "a preset's name", choices=tuple(presets.PRESETS))

    @classmethod
    def apply(cls, name: str, value: Any, setup: Setup) -> None:
        setup.fault = value


def run_fields() -> tuple[str, ...]:
    """The keys `[run]` takes: every run factor's, and the payload and the seed whole."""
    return (*(c.type for c in FACTORS if issubclass(c, RunField)), "payload", "seed")
