"""The figures a drill's summary reports, each declared once in `FIGURES`: its name, its unit,
what it measures, which way is better and how much two runs of the same code differ by.
`lab report compare` judges a figure by its declaration, never by guessing from its name; a
figure declared nowhere is compared without a direction, and its row says so.

A figure's name is the end of its path in a summary's `figures`, list labels left out: `p99Ms`
names `jobTime[run].endToEnd.p99Ms` and `status.p99Ms`; `throughput.whole` names only a
`whole` inside `throughput`; `byProcess.*` names every figure inside a `byProcess`. The longest
declared ending wins.

    figure("recoverySeconds", "lower", "seconds from a fault's end until the rate is back",
           unit="s", relative=0.5, absolute=2.0)

`better` is "higher", "lower" or None (a parameter or a count of work: a change is only a
change). A figure with neither tolerance is exact (one lost job is a regression); the others are
noisy, judged from the spread of several baselines (lab.measure.reports.compare). The
tolerances are what two runs of the same commit on a busy 2-core machine differ by: a tail
latency from a few hundred requests moves by several milliseconds, a recovery by a second.
Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from lab.runtime.fields import Field, FieldError
from lab.runtime.registry import Described, Registry, declare

LABEL = re.compile(r"\[[^\]]*\]")  # a list item's label in a path: `faults[kill]`


def _declared(path: str) -> str | None:
    """The declared figure `path` ends with (the longest such ending; at each length the ending
    itself, then with `*` for its last part), or None."""
    parts = LABEL.sub("", path).split(".")
    endings = (e for i in range(len(parts)) for e in (parts[i:], [*parts[i:-1], "*"]))
    return next((n for e in endings if (n := ".".join(e)) in FIGURES.kinds), None)


FIGURES: Registry[Any] = Registry("figure", FieldError, key="figure", kind_of=_declared)


class Figure(Described):
    """One figure of a summary: `help`, `unit`, which way is `better` and its tolerances."""

    registry = FIGURES
    better: ClassVar[str | None] = None  # "higher", "lower", or None: no direction
    relative: ClassVar[float] = 0.0  # a share of the value (0.2: ±20 %)
    absolute: ClassVar[float] = 0.0  # in its unit
    unit: ClassVar[str] = ""
    declared: ClassVar[bool] = True

    @classmethod
    def exact(cls) -> bool:
        return not cls.relative and not cls.absolute

    @classmethod
    def stated(cls) -> str:
        """Its tolerance in words, as the compare table shows it."""
        if not cls.declared:
            return "none stated (undeclared)"
        if cls.better is None:
            return "none stated"
        if cls.exact():
            return "exact"
        parts = []
        if cls.relative:
            parts.append(f"±{cls.relative:.0%}")
        if cls.absolute:
            parts.append(f"±{cls.absolute:g}{(' ' + cls.unit) if cls.unit else ''}")
        return " or ".join(parts)

    @classmethod
    def about(cls) -> str:
        way = f"{cls.better} is better" if cls.better else "no direction"
        return f"{way}, {cls.stated()}: {cls.help}" if cls.better else f"{way}: {cls.help}"


class Undeclared(Figure):
    """A figure no declaration names: compared without a direction, and said so."""

    declared = False
    help = "not declared"


def figure_of(path: str) -> type[Figure]:
    """How the figure at `path` (`faults[kill].recoverySeconds`) is compared."""
    return FIGURES.find(path) or Undeclared


def figure(name: str, better: str | None, help: str, *, unit: str = "", relative: float = 0.0,
           absolute: float = 0.0) -> type[Figure]:  # fmt: skip
    """Declare the figure `name` (one line each, below)."""
    if better not in ("higher", "lower", None):
        raise ValueError(f"{name}: better is 'higher', 'lower' or None")
    attributes = {"help": help, "better": better, "unit": unit, "relative": relative,
                  "absolute": absolute,
                  "fields": (Field("value", "number", help, low=0, unit=unit),)}  # fmt: skip
    return declare(Figure, f"Figure[{name}]", name, attributes)


# --- exact: one more is a regression -------------------------------------------------------------
figure("passed", "higher", "1 when every check of the drill passed")
figure("met", "higher", "1 when a load step kept its latency bar")
figure("lost", "lower", "jobs released (or submitted ok) and never ended")
figure(
    "executedMoreThanOnce", "lower", "jobs that ended more than once (a redelivery ran them again)"
)
figure("unexpected", "lower", "jobs that ended and that lab never released")
figure("clean", "higher", "1 when nothing was lost, duplicated or unexpected")
figure(
    "duplicated",
    "lower",
    "jobs whose effect was written more than once (a document's _version above 1)",
)
figure("duplicates", "lower", "documents beyond one per job")
figure("serverErrors", "lower", "hostile requests answered with a 5xx")
figure("wrongAnswers", "lower", "hostile requests answered other than the rules say")
figure("workerRestarts", "lower", "workers that exited and were restarted during the drill")
figure("streamCuts", "lower", "times the event stream was cut and its client reconnected")
figure("failed", "lower", "jobs (or trials) that failed")
figure("failures", "lower", "requests that failed")
figure("errors", "lower", "errors counted")


# --- noisy: times --------------------------------------------------------------------------------
def recovery(name: str, help: str) -> None:
    figure(name, "lower", help, unit="s", relative=0.5, absolute=2.0)


def tail(name: str, help: str) -> None:
    figure(name, "lower", help, unit="ms", relative=1.0, absolute=10.0)


def rate(name: str, help: str) -> None:
    figure(name, "higher", help, unit="/s", relative=0.2)


recovery("recoverySeconds", "seconds from a fault's end until the rate is back")
recovery("resumedAfterBackSeconds", "seconds from a service's return until work resumed")
figure("seconds", "lower", "how long the run took", unit="s", relative=0.25, absolute=2.0)
figure("p50Ms", "lower", "the median latency", unit="ms", relative=1.0, absolute=5.0)
tail("p95Ms", "the 95th percentile latency")
tail("p99Ms", "the 99th percentile latency")
tail("meanMs", "the mean latency")
tail("maxMs", "the highest latency")

# --- noisy: rates and shares ---------------------------------------------------------------------
rate("jobsPerSecond", "jobs processed a second")
rate("releasedPerSecond", "jobs released a second")
rate("releasePerSecond", "jobs the scheduler alone released a second")
rate("drainedPerSecond", "jobs settled a second after the warm-up")
rate("drainPerSecond", "jobs drained a second under a load step")
rate("idleDrainPerSecond", "jobs drained a second with no GET /status load")
rate("endToEndPerSecond", "jobs a second from the first release to the last settled")
rate("throughputPerSecond", "jobs a second through the system (Little's law)")
rate("answeredPerSecond", "GET /status answers a second")
rate("kneePerSecond", "the most GET /status answers a second within the latency bar")
rate("baselinePerSecond", "jobs processed a second before a fault")
rate("duringPerSecond", "jobs processed a second during a fault")
rate("lowestJobsPerSecond", "the lowest rate of jobs after a fault")
rate("throughput.before", "jobs processed a second before the first fault")
rate("throughput.during", "jobs processed a second while the faults lasted")
rate("throughput.after", "jobs processed a second after the faults")
rate("throughput.whole", "jobs processed a second over the whole run")
figure("speedup", "higher", "throughput against the first level (1.0: the same)", relative=0.2)
figure("jain", "higher", "Jain's fairness of the workers' shares (1.0: even)", relative=0.05,
       absolute=0.02)  # fmt: skip

# --- no direction: parameters and counts of work -------------------------------------------------
figure("x", None, "jobs the run released")
figure("y", None, "jobs a minute the run was asked for")
figure("processed", None, "jobs processed")
figure("documents", None, "documents written")
figure("distinct", None, "distinct job ids among the documents")
figure("requests", None, "requests sent")
figure("samples", None, "samples taken")
figure("offeredPerSecond", None, "GET /status requests a second a load step offered")
figure("workers", None, "worker processes")
figure("trials", None, "trials of the experiment")
figure("repetitions", None, "repetitions of each configuration")
figure("count", None, "jobs timed")
figure("judged", None, "1 when Little's law could be judged on the run")
figure("apiProcesses", None, "API processes sharing the port")
figure("locustProcesses", None, "Locust processes offering the load")
figure("runY", None, "jobs a minute of the run under load")
figure("p95BarMs", None, "the p95 a load step must keep to count", unit="ms")
figure("cores", None, "the machine's cores")
figure("idlePercent", None, "the machine's idle share of its CPU time", unit="%")
figure("stealPercent", None, "CPU time the hypervisor took from the machine", unit="%")
figure("byProcess.*", None, "CPU a kind of process used, in percent of one core", unit="%")
