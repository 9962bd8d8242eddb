"""A probe's step judged after the fact, from what Redis counted: pure.

The step is the span between two snapshots of the run (`Runs.snapshot`: Redis' clock, the run's
timeline and its latency histograms, read in one transaction), taken when the warm-up ends and
a step later. Everything counted in between is the difference of the two, so every figure is
exactly the step's, whatever its length and wherever it falls, and nothing of the warm-up or of
what came after is in it:

- counts (processed, failed, released) and the histograms of queue wait, service and end to
  end: of the jobs counted in the step, by the same script, at the same instant;
- what the shape asked for: the run's plan (`shapes.planner`) at the two instants;
- the seconds of the step at the backlog's bound, from the timeline's marks;
- the jobs released and not settled when the step ended, at their age then: a floor of their
  latency (a censored observation, as the live judgment counts them; `lab.runtime.slo`), so a
  pipeline that stalls breaches instead of judging nothing. The timeline says how many and when
  they were released (the queue is first in, first out: they are the newest); of those, all but
  the jobs the workers can be running (`slots`) have not started, which floors their queue wait.

Each objective is then judged once on that window (`slo.judge`, no grace: the warm-up is behind
the step already). A probe holds when no objective breached, the backlog never reached its
bound in the step, and the pipeline kept up: the jobs the shape asked for in the step, less
those that settled in it, are at most what is in hand at any moment of a steady pipeline (its
slots, and `IN_HAND_S` of the rate: a scheduler's tick, a batch's write). A rate the pipeline
cannot drain grows that difference by the excess every second, so it breaks within a few percent
above the capacity whatever the objectives, which a queue-wait bound alone would let through
until the backlog it grows is a second old.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lab.runtime import headage, latency, slo
from lab.runtime.headage import HeadAge, Released

QUANTILES = {"p50Ms": 0.5, "p99Ms": 0.99}
IN_HAND_S = 0.5  # seconds of the rate a steady pipeline holds unsettled besides its slots


@dataclass(frozen=True)
class Snapshot:
    """What had been counted of a run at `at_ms` (Redis' clock)."""

    at_ms: int
    timeline: Mapping[str, str]  # `<second>:<field>` → count
    latency: Mapping[str, str]  # the run's histograms, `<q|s|e>|<kind>|<bucket>` → count


@dataclass(frozen=True)
class Judged:
    held: bool
    why: str  # what broke ("" when it held)
    states: list[dict[str, Any]]  # each objective: text, state, value
    figures: dict[str, Any]  # the knee's: offered, achieved, latency, failures, per second


def by_second(raw: Mapping[str, str]) -> dict[int, dict[str, int]]:
    """A timeline hash by second (the minute and hour totals it also holds are left out)."""
    out: dict[int, dict[str, int]] = {}
    for name, value in raw.items():
        second, _, field = name.partition(":")
        if second.isascii() and second.isdigit() and field:
            try:
                out.setdefault(int(second), {})[field] = int(value)
            except ValueError:
                continue
    return out


def _total(seconds: dict[int, dict[str, int]], field: str) -> int:
    return sum(c.get(field, 0) for c in seconds.values())


def _histograms(first: Snapshot, last: Snapshot) -> dict[str, latency.Histogram]:
    """Each metric's histogram of the jobs counted between the two snapshots."""
    added: dict[tuple[str, int], int] = {}
    for sign, snapshot in ((-1, first), (1, last)):
        for metric, _kind, bucket, n in latency.parse_fields(snapshot.latency):
            added[(metric, bucket)] = added.get((metric, bucket), 0) + sign * n
    out = {m: latency.Histogram() for m in latency.METRICS}
    for (metric, bucket), n in added.items():
        if n > 0:
            out[metric].add(bucket, n)
    return out


def window(
    first: Snapshot, last: Snapshot, planned: Callable[[float], int], slots: int
) -> tuple[slo.Window, dict[str, Any]]:
    """The step between two snapshots as an objective's window, and its figures."""
    early, late = by_second(first.timeline), by_second(last.timeline)
    seconds = max((last.at_ms - first.at_ms) / 1000, 1e-3)
    processed = _total(late, "processed") - _total(early, "processed")
    failed = _total(late, "failed") - _total(early, "failed")
    released = _total(late, "released") - _total(early, "released")
    asked = planned(last.at_ms / 1000) - planned(first.at_ms / 1000)
    histograms = _histograms(first, last)
    unsettled = max(
        0, _total(late, "released") - _total(late, "processed") - _total(late, "failed")
    )
    spans = [Released(s * 1000, 1000, c.get("released", 0)) for s, c in sorted(late.items())[::-1]]
    waiting = max(0, unsettled - slots)
    end = HeadAge(last.at_ms)
    oldest = headage.released_at(spans, waiting) if waiting else None
    head_ms = max(0, int(end.now_ms - oldest)) if oldest is not None else 0
    unfinished = {"endToEnd": end.ages(headage.newest(spans, unsettled)),
                  "queueWait": end.ages(headage.newest(spans, waiting))}  # fmt: skip
    marked = range(first.at_ms // 1000, last.at_ms // 1000 + 1)
    figures: dict[str, Any] = {
        "stepSeconds": round(seconds, 3),
        "offeredPerSecond": round(asked / seconds, 3),
        "releasedPerSecond": round(released / seconds, 3),
        "achievedPerSecond": round(processed / seconds, 3),
        "failedRatio": round(failed / (processed + failed), 6) if processed + failed else None,
        "unsettledAtEnd": unsettled,
        "fellBehind": asked - processed - failed,
        "headAgeAtEndMs": head_ms,
        "backpressureSeconds": sum(1 for s in marked if late.get(s, {}).get("backpressure")),
    }
    for metric, histogram in histograms.items():
        for name, q in QUANTILES.items():
            value = histogram.quantile(q)
            figures[f"{metric}.{name}"] = round(value, 3) if value is not None else None
        mean = histogram.mean()
        figures[f"{metric}.meanMs"] = round(mean, 3) if mean is not None else None
    found = slo.Window(histograms, processed, failed, asked, head_ms, unfinished)
    return found, figures


def judge(
    objectives: list[slo.Objective],
    first: Snapshot,
    last: Snapshot,
    planned: Callable[[float], int],
    slots: int,
) -> Judged:
    """Whether the objectives held over the step (see the module's docstring)."""
    found, figures = window(first, last, planned, slots)
    states = slo.judge(objectives, [found] * len(objectives), figures["stepSeconds"], 0.0, None,
                       last.at_ms)  # fmt: skip
    broke = [s["text"] for s in states if s["state"] == "breached"]
    in_hand = slots + IN_HAND_S * figures["offeredPerSecond"]
    if figures["fellBehind"] > in_hand:
        broke.append(f"fell behind by {figures['fellBehind']} jobs in the step (a steady pipeline "
                     f"holds at most {in_hand:.0f})")  # fmt: skip
    if figures["backpressureSeconds"]:
        broke.append(f"the backlog reached its bound for {figures['backpressureSeconds']} s")
    shown = [{"text": s["text"], "state": s["state"], "value": s["value"]} for s in states]
    return Judged(not broke, "; ".join(broke), shown, figures)
