"""A probe's step judged from two snapshots of what Redis counted (lab.capacity.step), on
snapshots made here: the step's figures are the differences, the warm-up is left out, a stalled
pipeline breaches through its unfinished jobs, and the backlog's bound breaks a probe."""

from __future__ import annotations

from lab.capacity import step
from lab.capacity.step import Snapshot
from lab.runtime import latency, slo

T0 = 1_700_000_000  # epoch seconds: the run's start


def counted(per_second: dict[int, dict[str, int]], jobs: list[tuple[float, float]]) -> dict:
    """A timeline hash and a latency hash: `per_second` second → {field: count}, and each job
    counted as (queue wait ms, service ms), end to end their sum."""
    timeline = {
        f"{T0 + s}:{field}": str(n) for s, c in per_second.items() for field, n in c.items()
    }
    hist: dict[str, int] = {}
    for wait, service in jobs:
        for short, ms in (("q", wait), ("s", service), ("e", wait + service)):
            name = f"{short}|synthetic|{latency.bucket_of(ms)}"
            hist[name] = hist.get(name, 0) + 1
    return {"timeline": timeline, "latency": {k: str(v) for k, v in hist.items()}}


def snapshot(at_s: float, per_second: dict, jobs: list) -> Snapshot:
    made = counted(per_second, jobs)
    return Snapshot(int((T0 + at_s) * 1000), made["timeline"], made["latency"])


def planned(rate: float):
    return lambda epoch_s: int(max(0.0, epoch_s - T0) * rate)


OBJECTIVES = slo.parse([slo.from_text("queueWait.p99<1s"), slo.from_text("throughput>0.95"),
                        slo.from_text("failedRatio<0.01")])  # fmt: skip


def steady(seconds: int, rate: int, wait_ms: float) -> dict[int, dict[str, int]]:
    return {s: {"released": rate, "processed": rate} for s in range(seconds)}


def test_the_step_is_the_difference_of_its_two_snapshots_and_leaves_the_warm_up_out() -> None:
    # A warm-up of 5 s whose jobs waited 5 s each, then a 10-s step of jobs that waited 10 ms.
    warm = [(5000.0, 100.0)] * 50
    first = snapshot(5, steady(5, 10, 0), warm)
    last = snapshot(15, steady(15, 10, 0), warm + [(10.0, 100.0)] * 100)
    judged = step.judge(OBJECTIVES, first, last, planned(10), slots=5)
    f = judged.figures
    assert judged.held, judged
    assert f["stepSeconds"] == 10 and f["achievedPerSecond"] == 10 and f["offeredPerSecond"] == 10
    assert 9.9 <= f["queueWait.p99Ms"] <= 10.1 and 99 <= f["service.p50Ms"] <= 101
    assert f["failedRatio"] == 0 and f["unsettledAtEnd"] == 0


def test_a_pipeline_that_falls_behind_breaks_on_throughput_and_its_waiting_jobs() -> None:
    # 20 released a second, 10 processed: a backlog of 100 by the step's end; the jobs that
    # finished waited little, those still waiting have waited up to 10 s.
    seconds = {s: {"released": 20, "processed": 10} for s in range(10)}
    first = snapshot(0, {}, [])
    last = snapshot(10, seconds, [(50.0, 100.0)] * 100)
    judged = step.judge(OBJECTIVES, first, last, planned(20), slots=5)
    states = {s["text"].split()[0]: s for s in judged.states}
    assert not judged.held
    assert states["throughput"]["state"] == "breached" and states["throughput"]["value"] == 0.5
    assert states["queueWait.p99"]["state"] == "breached"
    assert states["queueWait.p99"]["value"] >= 4000  # the unfinished, at their age so far
    assert judged.figures["unsettledAtEnd"] == 100 and judged.figures["headAgeAtEndMs"] >= 4000


def test_a_stalled_pipeline_breaches_though_nothing_finished() -> None:
    only_latency = slo.parse([slo.from_text("endToEnd.p99<2s")])
    seconds = {s: {"released": 10} for s in range(10)}
    judged = step.judge(only_latency, snapshot(0, {}, []), snapshot(10, seconds, []),
                        planned(10), slots=5)  # fmt: skip
    assert not judged.held and judged.states[0]["state"] == "breached"


def test_failures_and_the_backlog_bound_break_a_probe() -> None:
    seconds = steady(10, 10, 0)
    seconds[3] = {"released": 10, "processed": 8, "failed": 2}
    jobs = [(5.0, 100.0)] * 100
    failing = step.judge(
        OBJECTIVES, snapshot(0, {}, []), snapshot(10, seconds, jobs), planned(10), 5
    )
    assert not failing.held and "failedRatio" in failing.why
    assert failing.figures["failedRatio"] == 0.02
    seconds = steady(10, 10, 0)
    seconds[7]["backpressure"] = 1
    bound = step.judge(
        OBJECTIVES[:1], snapshot(0, {}, []), snapshot(10, seconds, jobs), planned(10), 5
    )
    assert not bound.held and "backlog reached its bound for 1 s" in bound.why


def test_a_rate_a_little_above_what_the_pipeline_drains_breaks_though_its_objectives_hold() -> None:
    """3 % over: 103 asked a second, 100 settled, so the step ends 90 behind, more than 5 slots
    and half a second of the rate; a loose queue-wait bound alone would hold."""
    loose = slo.parse([slo.from_text("queueWait.p99<5s")])
    seconds = {s: {"released": 103, "processed": 100} for s in range(30)}
    judged = step.judge(loose, snapshot(0, {}, []), snapshot(30, seconds, [(20.0, 50.0)] * 3000),
                        planned(103), slots=5)  # fmt: skip
    assert not judged.held and "fell behind by 90 jobs" in judged.why, judged.why
    assert judged.states[0]["state"] != "breached"
    # At the rate it drains, what is in hand at the step's end is no deficit.
    seconds = {s: {"released": 100, "processed": 100} for s in range(30)}
    seconds[29] = {"released": 100, "processed": 60}
    kept = step.judge(loose, snapshot(0, {}, []), snapshot(30, seconds, [(20.0, 50.0)] * 2960),
                      planned(100), slots=5)  # fmt: skip
    assert kept.held and kept.figures["fellBehind"] == 40, kept.why
