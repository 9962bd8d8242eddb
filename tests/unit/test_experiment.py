"""Experiments without services: the file is checked naming the key at fault, the plan is
stable and seeded, rows append and resume, and the analysis finds real effects and calls noise
noise (synthetic data with known effects)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lab.experiment import analysis, results
from lab.experiment.plan import trials
from lab.experiment.spec import Spec, SpecError

BASE = {"name": "t", "repetitions": 2, "run": {"x": 100}, "factors": {"workers": [1, 2]}}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"name": "no spaces"}, "name"),
        ({"repetitions": 0}, "repetitions"),
        ({"order": "backwards"}, "order"),
        ({"run": {"x": 10, "colour": 1}}, "run.colour"),
        ({"factors": {"workers": [1, 1]}}, "factors.workers"),
        ({"factors": {"workers": [0]}}, "factors.workers"),
        ({"factors": {"magic": [1]}}, "factors.magic"),
        ({"factors": {"shape": ["ramp:banana"]}}, "factors.shape"),
        ({"factors": {"queueType": ["fast"]}}, "factors.queueType"),
        ({"slo": [{"metric": "nope"}]}, "slo[0].metric"),
        ({"warmupSeconds": -1}, "warmupSeconds"),
        ({"extra": 1}, "extra"),
        ({"run": {}}, "run.x"),
        ({"factors": {"statusLoad": [-1]}}, "factors.statusLoad"),
        ({"factors": {"fault": ["earthquake"]}}, "factors.fault"),
        ({"procedure": "guess"}, "procedure"),
        ({"procedure": "throughput", "run": {"x": 10, "y": 60}}, "run.y"),
        ({"procedure": "throughput", "factors": {"statusLoad": [10]}}, "factors.statusLoad"),
    ],
)
def test_a_file_that_cannot_run_is_refused_naming_the_key(change: dict, key: str) -> None:
    with pytest.raises(SpecError, match=f"^{key.replace('[', '.').replace(']', '.')}"):
        Spec.of({**BASE, **change})


def test_the_plan_is_every_configuration_times_every_repetition_seeded() -> None:
    spec = Spec.of({**BASE, "seed": 5, "factors": {"workers": [1, 2], "payload.serviceMs.value":
                                                    [10, 20]}, "repetitions": 3})  # fmt: skip
    plan = trials(spec)
    assert len(plan) == 12 == len({t.id for t in plan})
    assert [t.id for t in plan] == [t.id for t in trials(spec)]  # the same file, the same plan
    assert [t.id for t in plan] != sorted(t.id for t in plan)  # shuffled by its seed
    body = spec.body({"workers": 2, "payload.serviceMs.value": 20})
    assert body == {"x": 100, "seed": 5, "payload": {"serviceMs": {"value": 20}}}
    setup = spec.setup({"workers": 2, "payload.serviceMs.value": 20})
    assert (setup.workers, setup.settings) == (2, {})
    sequential = Spec.of({**BASE, "order": "sequential"})
    assert [t.id[:8] for t in trials(sequential)] == ["c001-r01", "c001-r02", "c002-r01",
                                                      "c002-r02"]  # fmt: skip


def test_conditions_and_procedures_are_levels_of_their_own() -> None:
    spec = Spec.of({**BASE, "factors": {"workers": [1], "statusLoad": [0, 200],
                                        "fault": ["none", "es-slow"]}})  # fmt: skip
    levels = {"workers": 1, "statusLoad": 200, "fault": "es-slow"}
    setup = spec.setup(levels)
    assert (setup.status_load, setup.fault) == (200, "es-slow")
    assert setup.body == {"x": 100, "seed": 0}  # neither is a run field
    assert (setup.workers, setup.settings) == (1, {})
    assert spec.procedure == "run" and len(trials(spec)) == 8
    data = {"name": "throughput", "procedure": "throughput", "run": {"x": 2000},
            "factors": {"workers": [1], "batch": [100, 500], "fault": ["none"]}}  # fmt: skip
    bench = Spec.of(data)
    assert bench.procedure == "throughput" and bench.digest  # built in code, still one identity
    assert bench.digest == Spec.of(dict(reversed(list(data.items())))).digest  # key order aside
    assert bench.digest != Spec.of({**data, "run": {"x": 3000}}).digest


def test_rows_append_with_new_columns_and_the_done_trials_are_known(tmp_path: Path) -> None:
    results.append(tmp_path, {"trial": "a", "workers": 1, "drainedPerSecond": 10.0})
    results.append(tmp_path, {"trial": "b", "workers": 2, "drainedPerSecond": 20.0, "error": "x"})
    assert results.done_ids(tmp_path) == {"a", "b"}
    frame = results.load(tmp_path)
    assert list(frame["trial"]) == ["a", "b"] and frame["error"].isna()[0]
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == 2


def test_a_real_effect_is_found_and_no_effect_is_called_noise() -> None:
    rng = np.random.default_rng(0)
    base = 1000.0
    rows = [{"level": "a", "m": base * (1 + rng.normal(0, 0.05))} for _ in range(5)]
    rows += [{"level": "b", "m": base * 1.2 * (1 + rng.normal(0, 0.05))} for _ in range(5)]
    rows += [{"level": "c", "m": base * (1 + rng.normal(0, 0.05))} for _ in range(5)]
    frame = pd.DataFrame(rows)
    pairs = analysis.differences(frame, "m", "level").set_index(["a", "b"])
    assert pairs.loc[("a", "b"), "verdict"] == "real"
    assert pairs.loc[("a", "c"), "verdict"] == "within noise"
    assert pairs.loc[("a", "b"), "pHolm"] >= pairs.loc[("a", "b"), "p"]  # corrected upwards
    small = analysis.interval([10.0, 11.0, 9.0])
    assert small.method == "t" and small.low < 10.0 < small.high
    large = analysis.interval(list(rng.normal(100, 5, 40)))
    assert large.method == "bootstrap" and large.low < 100 < large.high
    assert analysis.verdict([1.0], [2.0, 3.0])[0] == "cannot tell"
    assert analysis.holm([0.01, None, 0.04]) == [0.02, None, 0.04]


def test_scaling_efficiency_is_against_the_first_level() -> None:
    frame = pd.DataFrame({"workers": [1, 1, 2, 2], "m": [100.0, 100.0, 180.0, 180.0]})
    table = analysis.by_level(frame, "m", "workers")
    assert list(table["speedup"]) == [1.0, 1.8]
    assert list(table["efficiency"].round(2)) == [1.0, 0.9]
