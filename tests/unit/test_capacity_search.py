"""The capacity search's decisions (lab.capacity.bracket) on a simulated pipeline: a pure function
rate → held or broke, certain away from its capacity and a coin weighted by the distance within
a band around it (the noise a real step shows near its knee). No service, no clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.capacity import bracket
from lab.capacity.bracket import Bounds, Probe, decide, interval
from lab.capacity.plan import bounds_of, configurations, probes_of, spec_of
from lab.experiment import results
from lab.experiment.spec import Spec, SpecError


def pipeline(capacity: float, edge: float = 0.0, seed: int = 0) -> Callable[[float], bool]:
    """Held below capacity × (1 − edge), broke above capacity × (1 + edge), and in between held
    with a chance falling linearly from 1 to 0."""
    rng = random.Random(seed)

    def held(rate: float) -> bool:
        low, high = capacity * (1 - edge), capacity * (1 + edge)
        if rate <= low:
            return True
        if rate >= high:
            return False
        return rng.random() < (high - rate) / (high - low)

    return held


def search(bounds: Bounds, held: Callable[[float], bool]) -> tuple[list[Probe], bracket.Step]:
    probes: list[Probe] = []
    while True:
        step = decide(probes, bounds)
        if step.done:
            return probes, step
        assert step.rate is not None
        probes.append(Probe(step.rate, held(step.rate)))


@pytest.mark.parametrize("capacity", [0.37, 3.0, 49.2, 1234.5, 98_765.0])
@pytest.mark.parametrize("start", [1.0, 25.0, 5000.0])
def test_it_converges_to_an_interval_holding_the_capacity_within_the_precision(
    capacity: float, start: float
) -> None:
    bounds = Bounds(start=start, precision=0.05, repetitions=2, max_rate=1e6, min_rate=0.01)
    probes, step = search(bounds, pipeline(capacity))
    assert step.why == "within 5.0%", step
    assert step.low is not None and step.high is not None
    assert step.low < capacity <= step.high
    assert step.high <= step.low * 1.05 + 1e-9
    assert len(probes) <= bracket.worst_case(bounds)


def test_it_brackets_by_doubling_then_bisects_at_the_geometric_middle() -> None:
    probes, step = search(Bounds(start=20, precision=0.05), pipeline(53.3))
    assert [p.rate for p in probes[:3]] == [20, 40, 80]
    assert probes[3].rate == bracket.rounded((40 * 80) ** 0.5)
    assert (step.low, step.high) == (51.874, 54.171)


def test_a_start_that_breaks_is_halved_until_one_holds() -> None:
    probes, step = search(Bounds(start=100, precision=0.1), pipeline(30))
    assert [p.rate for p in probes[:3]] == [100, 50, 25]
    assert step.low is not None and step.high is not None
    assert step.low < 30 <= step.high


def test_it_stops_at_the_most_and_the_least_it_may_probe() -> None:
    _, held_all = search(Bounds(start=10, max_rate=80, repetitions=2), pipeline(1e9))
    assert (held_all.low, held_all.high) == (80, None) and "the most" in held_all.why
    _, broke_all = search(Bounds(start=10), pipeline(0.0001))
    assert broke_all.low is None and "the least" in broke_all.why
    assert broke_all.high == bracket.rounded(10 / bracket.DOWN_TO)


def test_the_rate_that_held_is_repeated_and_one_break_is_a_break() -> None:
    flips = iter([True, True, False])  # 20 holds, 40 holds, 80 breaks: then 40 is repeated
    probes = [Probe(20, True), Probe(40, True), Probe(80, False)]
    bounds = Bounds(start=20, precision=1.0, repetitions=3)
    assert decide(probes, bounds).phase == "repeat" and decide(probes, bounds).rate == 40
    probes += [Probe(40, next(flips)), Probe(40, next(flips))]
    assert decide(probes, bounds).done and interval(probes, 3) == (40, 80)
    probes.append(Probe(40, next(flips)))  # a fourth repetition that broke: 40 is a break now
    assert interval(probes, 3) == (None, 40) and interval(probes, 1) == (20, 40)


def test_it_never_probes_above_a_rate_that_broke() -> None:
    for seed in range(50):
        probes, _ = search(Bounds(start=7, precision=0.02, repetitions=3),
                           pipeline(41.0, edge=0.05, seed=seed))  # fmt: skip
        for i, probe in enumerate(probes):
            broke_before = [p.rate for p in probes[:i] if not p.held]
            assert not broke_before or probe.rate < min(broke_before)


def test_with_noise_near_the_edge_repetitions_keep_the_interval_honest() -> None:
    """With a 4 % band where a step may go either way, a rate that held once may sit above the
    capacity by luck; holding three times in a row it rarely does. The interval always stays
    within the band and within the precision."""
    capacity, edge, precision = 100.0, 0.04, 0.05

    def above_capacity(repetitions: int) -> int:
        claimed_too_much = 0
        for seed in range(300):
            bounds = Bounds(start=30, precision=precision, repetitions=repetitions)
            _, step = search(bounds, pipeline(capacity, edge, seed))
            assert step.low is not None and step.high is not None
            assert capacity * (1 - edge) <= step.high and step.low <= capacity * (1 + edge)
            assert step.high <= step.low * (1 + precision) + 1e-9
            claimed_too_much += step.low > capacity
        return claimed_too_much

    once, thrice = above_capacity(1), above_capacity(3)
    assert thrice < once / 2, (once, thrice)


def test_resuming_from_the_rows_continues_the_same_search(tmp_path: Path) -> None:
    """Each probe's row goes to results.csv; a search read back from it after any probe makes
    the decisions the uninterrupted one made."""
    bounds = Bounds(start=13.7, precision=0.03, repetitions=2)
    held = pipeline(77.7)
    whole, _ = search(bounds, held)
    for n, probe in enumerate(whole, start=1):
        results.append(tmp_path, {"trial": f"c001-p{n:02d}", "configuration": 1, "probe": n,
                                  "rate": probe.rate, "held": probe.held, "error": ""})  # fmt: skip
        frame = results.load(tmp_path)
        rows = [{k: v for k, v in r.items() if v == v} for r in frame.to_dict("records")]
        read_back = probes_of(rows, 1)
        assert read_back == whole[:n]
        following = decide(read_back, bounds)
        assert following.rate == (whole[n].rate if n < len(whole) else None)


def test_a_probe_that_errored_has_no_verdict_and_is_probed_again() -> None:
    rows = [
        {"configuration": 1, "probe": 1, "rate": 20.0, "held": True, "error": ""},
        {"configuration": 1, "probe": 2, "rate": 40.0, "held": False, "error": "Timeout"},
    ]
    probes = probes_of(rows, 1)
    assert probes == [Probe(20.0, True)]
    assert decide(probes, Bounds(start=20)).rate == 40


def test_a_capacity_spec_is_checked_before_anything_runs() -> None:
    made = spec_of(start_rate=20, slo=["queueWait.p99<1s"], kind="synthetic", workers=[1, 2],
                   faults=["es-slow"], precision="5%")  # fmt: skip
    assert made.procedure == "capacity" and made.capacity["precision"] == 0.05
    assert made.factors == {"workers": [1, 2], "fault": ["none", "es-slow"]}
    assert made.capacity["maxRate"] == 20 * 1024
    for bad, named in (
        ({"slo": ["failedRatio<0.01"]}, "slo: a capacity search needs"),
        ({"precision": "5 percent"}, "capacity.precision"),
        ({"step_seconds": 2}, "capacity.stepSeconds"),
        ({"start_rate": 0}, "capacity.startRate"),
        ({"start_rate": 50, "max_rate": 40}, "capacity.startRate"),
    ):
        given = {"start_rate": 20, "slo": ["throughput>0.9"], **bad}
        with pytest.raises(SpecError, match=named):
            spec_of(**given)  # type: ignore[arg-type]


def test_the_worst_case_bounds_a_noiseless_search() -> None:
    for capacity in (0.02, 1.0, 333.0, 20_000.0):
        bounds = Bounds(start=1.0, precision=0.01, repetitions=3, max_rate=1024)
        probes, _ = search(bounds, pipeline(capacity))
        assert len(probes) <= bracket.worst_case(bounds)


def test_rows_that_lab_did_not_write_are_refused_naming_the_row(tmp_path: Path) -> None:
    from lab import config
    from lab.capacity.runner import Searches

    spec = spec_of(start_rate=20, slo=["throughput>0.9"], name="hostile")
    searches = Searches(spec, tmp_path, config.load())
    good = {"trial": "c001-p01", "configuration": 1, "probe": 1, "rate": 20.0, "held": True,
            "error": ""}  # fmt: skip
    results.append(tmp_path, good)
    assert probes_of(searches.rows(), 1) == [Probe(20.0, True)]
    for bad, named in (({"configuration": 7}, "configuration"), ({"probe": "x"}, "probe"),
                       ({"rate": "=1+1"}, "rate"), ({"rate": -3}, "rate"),
                       ({"held": "maybe"}, "held")):  # fmt: skip
        (tmp_path / results.CSV).unlink()
        results.append(tmp_path, {**good, **bad})
        with pytest.raises(results.ResultsError, match=f"row 1: {named}"):
            searches.rows()


def test_the_documented_experiment_file_is_a_capacity_search() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "CAPACITY.md").read_text()
    toml = docs.split("```toml\n", 1)[1].split("```", 1)[0]
    spec = Spec.from_bytes(toml.encode())
    assert spec.procedure == "capacity" and spec.capacity["startRate"] == 25
    shuffled = [levels for _, levels in configurations(spec)]  # order = "random", by its seed
    assert sorted(shuffled, key=str) == [{"workers": n, "concurrency": 5} for n in (1, 2, 4)]
    assert bounds_of(spec).precision == 0.05 and bounds_of(spec).repetitions == 2


def test_the_trial_runner_leaves_a_capacity_spec_to_its_searches(tmp_path: Path) -> None:
    from lab import config
    from lab.experiment.runner import Runner

    spec = spec_of(start_rate=20, slo=["throughput>0.9"], name="not-trials")
    with pytest.raises(results.ResultsError, match="is a capacity search"):
        Runner(spec, tmp_path, config.load()).run()
