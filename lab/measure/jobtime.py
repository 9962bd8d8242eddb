"""Where each drill's jobs spent their time: latency percentiles and CDFs, and Little's law as a
check that the lab's measurements agree with each other.

Every drill report calls `job_time` with the runs it made: their queue wait, service and end to
end quantiles (from the histograms `record.lua` counts with each job) become a DataFrame and a
figure in the summary, their end-to-end CDFs a chart, and each settled run gets a verdict:

    Little's law   L = λ × W
    L  jobs in the system on average: released and not yet settled, integrated over the run's
       timeline (jobs per second, each second's placed within it to the millisecond)
    λ  throughput: settled jobs ÷ the run's span
    W  mean end to end: first release → written or dead-lettered, from the histogram

Counted independently (the timeline by the scheduler and the counting script, W per job), they
agree only if neither loses or double counts a job, so a gap beyond the tolerance is a bug in
the measuring, not in the pipeline. The timeline counts when a job was granted and when it was
counted settled, W from the job's own clocks (published → finished), so the ratio sits above 1
by those few milliseconds over W: a little for jobs of tens of ms. A run of a few seconds is
reported and not judged (`LITTLE_MIN_SECONDS`): there a few ms of start-up are no longer small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lab.config import Settings
from lab.measure.drill import Verdicts
from lab.runtime import history, latency
from lab.runtime.stores import Stores

# L ÷ λW within [1 − LITTLE_BELOW, 1 + LITTLE_ABOVE]. The timeline counts a job released when
# the scheduler is granted it, its own clock starts when it is published: a publish held up by an
# outage (the drills make them) is time in the system that W does not see, so outages can only
# raise the ratio, by as much as the outage lasted. Runs without outages agree within a few %;
# through the hostile drill's broker outage 8 to 19 % above were measured, through the cluster
# drill's node kills 26 %, and 94 % where a node's restart took 5.5 s on a slow machine. A run
# with outages (`outages=True`) is held to the lower bound only: below it, a job was lost or
# counted twice by the measuring, whatever the outages did.
LITTLE_BELOW = 0.15
LITTLE_ABOVE = 0.35
LITTLE_MIN_SECONDS = 20  # shorter runs: start-up and the last stragglers weigh too much
QUANTILES = ("p50Ms", "p90Ms", "p95Ms", "p99Ms", "p99.9Ms", "maxMs")


def histograms(stores: Stores, run_id: str) -> dict[str, latency.Histogram]:
    return stores.runs.histograms(run_id)


def time_in_system(points: list[dict[str, Any]]) -> float:
    """The jobs' seconds in the system, summed over a run's timeline: each settled job's time
    less each released job's, placed to the millisecond where the timeline says how far into
    each second its jobs were counted (`history.IN_SECOND`); a timeline without them (a run
    recorded before they were) spreads each second's jobs evenly across it."""
    t0 = points[0]["t"] if points else 0
    if any(field in point for point in points for field in history.IN_SECOND):
        total = 0.0
        for point in points:
            t = point["t"] - t0
            left = point["processed"] + point["failed"]
            total += left * t + (point.get("processedMs", 0) + point.get("failedMs", 0)) / 1000
            total -= point["released"] * t + point.get("releasedMs", 0) / 1000
        return total
    total, waiting = 0.0, 0  # released, not settled, at the start of each second
    for point in points:
        came, left = point["released"], point["processed"] + point["failed"]
        total += waiting + (came - left) / 2
        waiting += came - left
    return total


def littles_law(stores: Stores, run_id: str) -> dict[str, Any]:
    """L, λ, W and their ratio for a settled run (`judged: False` with the reason otherwise)."""
    run = stores.runs.get(run_id)
    if run is None or not run.settled:
        return {"judged": False, "why": "the run has not settled"}
    unended = run.enqueued - run.processed - run.failed
    if unended > 0:  # another target's lost or indeterminate jobs: in the system for ever
        return {"judged": False, "why": f"{unended} released jobs never ended, so L counts them "
                "to the end"}  # fmt: skip
    if run.target not in (None, "", "lab"):
        # A job the target's broker refused (away, restarting) stays in L from its grant and is
        # submitted again with a new clock, so W misses that wait; on a framework's jobs of tens
        # of ms, a drill's broker outage makes the ratio say how long the broker was away.
        return {"judged": False, "why": f"a {run.target} run: a refused submit's wait is in L, "
                "not in W"}  # fmt: skip
    points = (stores.runs.timeline(run_id) or {}).get("points", [])
    end_to_end = histograms(stores, run_id)["endToEnd"]
    if not points or not end_to_end.count:
        return {"judged": False, "why": "no jobs were timed"}
    if len(points) < LITTLE_MIN_SECONDS:
        return {"judged": False, "why": f"the run took {len(points)} s of timeline, fewer than "
                f"the {LITTLE_MIN_SECONDS} s a judgement needs"}  # fmt: skip
    span = len(points)  # seconds from the first release to the last settle
    job_seconds = time_in_system(points)
    in_system = job_seconds / span
    throughput = end_to_end.count / span
    mean_s = (end_to_end.mean() or 0.0) / 1000
    ratio = in_system / (throughput * mean_s) if throughput * mean_s > 0 else None
    return {
        "judged": ratio is not None,
        "inSystem": round(in_system, 3),
        "throughputPerSecond": round(throughput, 3),
        "meanEndToEndMs": round(mean_s * 1000, 3),
        "ratio": round(ratio, 4) if ratio is not None else None,
        "tolerance": [1 - LITTLE_BELOW, 1 + LITTLE_ABOVE],
    }


@dataclass(frozen=True)
class Observed:
    """What `job_time` reads of a run, taken while its keys exist (an experiment's trial deletes
    them when it ends: `observe` is called before)."""

    run_id: str
    found: dict[str, latency.Histogram]
    law: dict[str, Any]


def observe(settings: Settings, run_id: str) -> Observed:
    stores = Stores.of(settings)
    return Observed(run_id, histograms(stores, run_id), littles_law(stores, run_id))


def job_time(
    settings: Settings,
    run_ids: dict[str, str | Observed],
    verdicts: Verdicts | None = None,
    outages: bool = False,
) -> dict[str, Any]:
    """For each run (label → run id, or what `observe` took of it): its latency quantiles (ms)
    and Little's law; with `verdicts`, a check per settled run (`outages`: the drill held its
    publishes up, so only the lower bound is judged). Draws the end-to-end CDFs and shows the
    quantiles as a table when run in a notebook; returns the figures for the summary."""
    import matplotlib.pyplot as plt
    import pandas as pd

    figures: dict[str, Any] = {}
    rows = []
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for label, run in run_ids.items():
        seen = run if isinstance(run, Observed) else observe(settings, run)
        run_id, found = seen.run_id, seen.found
        entry: dict[str, Any] = {"runId": run_id}
        for metric in latency.METRICS:
            summary = found[metric].summary()
            entry[metric] = {k: summary.get(k) for k in ("count", "meanMs", *QUANTILES)}
            rows.append({"run": label, "metric": metric, **entry[metric]})
        entry["littlesLaw"] = law = seen.law
        figures[label] = entry
        cdf = found["endToEnd"].cdf()
        if cdf:
            ax.step([ms for ms, _ in cdf], [share for _, share in cdf], where="post", label=label)
        if verdicts is not None and law["judged"]:
            high = float("inf") if outages else 1 + LITTLE_ABOVE
            verdicts.check(
                f"{label}: Little's law (jobs in system = throughput × mean end to end)",
                1 - LITTLE_BELOW <= law["ratio"] <= high,
                f"L ÷ λW at least {1 - LITTLE_BELOW:g} (its outages raise it)"
                if outages
                else f"L ÷ λW from {1 - LITTLE_BELOW:g} to {high:g} (outages only raise it)",
                f"L {law['inSystem']:,.1f} jobs, λW {law['throughputPerSecond']:,.1f}/s × "
                f"{law['meanEndToEndMs'] / 1000:,.3f} s: ratio {law['ratio']:.3f}",
            )
    ax.set_xscale("log")
    ax.set_xlabel("end to end (ms, log)")
    ax.set_ylabel("share of jobs at or below")
    ax.set_title("Job latency: end-to-end CDF")
    ax.grid(True, which="both", alpha=0.3)
    if run_ids:
        ax.legend(loc="lower right")
    plt.tight_layout()
    plt.show()
    _display(pd.DataFrame(rows))
    return figures


def add_job_time(
    settings: Settings,
    run_ids: dict[str, str | Observed],
    figures: dict[str, Any],
    headline: dict[str, Any],
    verdicts: Verdicts | None = None,
    label_prefix: str = "",
    outages: bool = False,
) -> dict[str, Any]:
    """What every drill adds to its summary: `job_time` of its runs as `figures["jobTime"]`,
    and each run's end-to-end p50 and p99 as a headline line (`<prefix><label>: end to end`;
    a run that counted no job has none). Returns the job times."""
    figures["jobTime"] = times = job_time(settings, run_ids, verdicts, outages)
    for label, entry in times.items():
        end = entry["endToEnd"]
        if end["count"]:
            line = f"p50 {end['p50Ms']:,.0f} ms, p99 {end['p99Ms']:,.0f} ms"
            headline[f"{label_prefix}{label}: end to end"] = line
    return times


def _display(frame: Any) -> None:
    try:
        from IPython.display import display

        display(frame)
    except ImportError:  # outside a notebook: the figures are returned anyway
        print(frame.to_string())
