"""Targets: the system under test, as a seam.

lab's scheduler owns what a run is (its jobs' ids, the shape's clock, when each job is due) for
every target; a target owns how a job reaches its workers and what those workers are:

    submit       one batch of jobs into the target's broker: each `ok` (with the broker's id),
                 `failed` (refused: released again later) or `indeterminate` (the broker may or
                 may not have taken it: a publish that timed out)
    backlog      jobs waiting in its broker, and the oldest one's age when the broker knows it
    worker_argv  the command of one of its worker processes, which lab's supervisor starts,
                 stops, freezes and kills like its own (`lab up --target NAME`)
    services     the services it talks to (`amqp_url`, `redis_url`, `es_url`): where the fault
                 proxy stands
    purge        what a run left in its broker, gone

What its workers did comes back through the shim in each worker (`lab.targets.shim`), which
counts every job with lab's one counting script, so exactly-once counts, histograms and the
delivery verdict (`lab.targets.verdict`) come from one implementation whatever runs the jobs.
Each target is one class registered in `TARGETS`, in a module of its own: `lab` (lab's own
pipeline), `celery`, `dramatiq`, `rq`, `arq` and `bullmq`.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.config import Settings
from lab.runtime.messages import Job
from lab.runtime.registry import Described, Registry
from lab.runtime.submits import Outcome, Status


class TargetError(ValueError):
    """A target lab does not know, or cannot drive here; the message says what to do."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


__all__ = ["TARGETS", "Backlog", "Outcome", "Status", "Target", "TargetError", "target"]


@dataclass(frozen=True)
class Backlog:
    depth: int  # jobs waiting in the broker, not yet taken by a worker
    oldest_age_ms: int | None = None  # None: the broker cannot tell


TARGETS: Registry[Any] = Registry("target", TargetError)


class Target(Described):
    """The system under test. A subclass declares its name (`type`), what it needs installed
    (`packages`: importable modules; `programs`: commands on PATH), the settings of the
    services it talks to, and how it submits, counts its backlog, starts a worker and purges."""

    registry = TARGETS
    type: ClassVar[str] = ""
    help: ClassVar[str] = ""
    packages: ClassVar[tuple[str, ...]] = ()
    programs: ClassVar[tuple[str, ...]] = ()
    services: ClassVar[tuple[str, ...]] = ()  # Settings fields: amqp_url, redis_url, es_url
    extra: ClassVar[str] = "targets"  # the pip extra that installs its packages

    def __init__(self, settings: Settings):
        self.settings = settings

    @classmethod
    def missing(cls) -> str | None:
        """What this machine lacks to drive the target, in one line; None when nothing."""
        for module in cls.packages:
            try:
                importlib.import_module(module)
            except ImportError:
                return (f"the {cls.type} target needs the Python package {module!r}: "
                        f"pip install -e '.[{cls.extra}]' (make setup installs it)")  # fmt: skip
        for program in cls.programs:
            if shutil.which(program) is None:
                return f"the {cls.type} target needs {program!r} on PATH"
        return None

    @property
    def queue(self) -> str:
        """The target's own queue (or list, or stream) name in this lab's namespace, so its
        broker never meets lab's own queues' declarations."""
        return f"{self.settings.queue}.{self.type}"

    def worker_argv(self, python: str, concurrency: int) -> list[str]:
        raise NotImplementedError

    def open(self) -> None:
        """Connect the submitting side (called once, in the scheduler)."""

    def close(self) -> None:
        pass

    def submit(self, jobs: Sequence[Job]) -> list[Outcome]:
        raise NotImplementedError

    def backlog(self) -> Backlog:
        raise NotImplementedError

    def purge(self) -> None:
        raise NotImplementedError

    def amqp_queues(self) -> tuple[str, ...]:
        """The RabbitMQ queues the target declares in this lab's namespace (none for a Redis
        broker), deleted by `teardown`."""
        return ()

    def teardown(self) -> None:
        """Everything the target made in its broker for this lab, gone (`lab reset`): its
        queues deleted, or its keys."""
        queues = self.amqp_queues()
        if not queues:
            self.purge()
            return
        from lab.runtime import broker

        connection = broker.connect(self.settings.amqp_url, f"lab-{self.type}-teardown",
                                    broker.Deadlines.of(self.settings))  # fmt: skip
        try:
            channel = connection.channel()
            for queue in queues:
                channel.queue_delete(queue)
        finally:
            connection.close()

    @classmethod
    def describe_class(cls) -> dict[str, Any]:
        """The target as `GET /targets` and `lab target list` show it."""
        return {"name": cls.type, "help": cls.help, "services": list(cls.services),
                "packages": list(cls.packages), "programs": list(cls.programs),
                "missing": cls.missing()}  # fmt: skip


DEFAULT = "lab"
# Each target's module, imported when first asked for (each imports its framework lazily too).
MODULES = {"lab": "lab.targets.lab", "celery": "lab.targets.celery",
           "dramatiq": "lab.targets.dramatiq", "rq": "lab.targets.rq", "arq": "lab.targets.arq",
           "bullmq": "lab.targets.bullmq"}  # fmt: skip


def names() -> tuple[str, ...]:
    return tuple(MODULES)


def target_class(name: Any) -> type[Target]:
    """The class of target `name`, or `TargetError` naming the field."""
    if not isinstance(name, str) or name not in MODULES:
        raise TargetError("target", f"must be one of {', '.join(MODULES)}")
    if name not in TARGETS.kinds:
        try:
            importlib.import_module(MODULES[name])
        except ImportError as exc:
            raise TargetError("target", f"{name}: its module cannot be loaded ({exc})") from None
    return TARGETS.kinds[name]


def describe(name: str) -> dict[str, Any]:
    """Target `name` as `GET /targets` and `lab target list` show it, whether or not it can be
    loaded here."""
    try:
        return target_class(name).describe_class()
    except TargetError as exc:
        return {"name": name, "help": "", "services": [], "packages": [], "programs": [],
                "missing": str(exc)}  # fmt: skip


def target(name: str, settings: Settings) -> Target:
    """Target `name` for this lab; `TargetError` when it cannot be driven here."""
    cls = target_class(name)
    why = cls.missing()
    if why:
        raise TargetError("", why)
    return cls(settings)
