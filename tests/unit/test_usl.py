"""The Universal Scalability Law fit (lab.capacity.usl) on capacities made from the law itself:
it gives back what made them, linear scaling as σ = κ = 0, and intervals that hold the truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lab.capacity import usl
from lab.capacity.usl import Fit


def test_linear_scaling_is_no_contention_and_no_coherency() -> None:
    n = [1, 2, 4, 8]
    found = usl.fit(n, [100.0 * v for v in n])
    assert found.lam == pytest.approx(100, rel=1e-3)
    assert found.sigma == pytest.approx(0, abs=1e-4) and found.kappa == pytest.approx(0, abs=1e-5)
    assert found.peak is None


@pytest.mark.parametrize(("sigma", "kappa"), [(0.05, 0.0), (0.1, 0.01), (0.3, 0.002)])
def test_a_known_law_is_recovered(sigma: float, kappa: float) -> None:
    truth = Fit(250.0, sigma, kappa)
    n = [1, 2, 4, 8, 16]
    found = usl.fit(n, truth.at(n))
    assert found.lam == pytest.approx(250, rel=1e-3)
    assert found.sigma == pytest.approx(sigma, abs=1e-3)
    assert found.kappa == pytest.approx(kappa, abs=1e-4)
    if kappa:
        assert found.peak == pytest.approx(math.sqrt((1 - sigma) / kappa), rel=0.02)


def test_intervals_of_capacities_give_intervals_that_hold_the_truth() -> None:
    truth = Fit(50.0, 0.08, 0.004)
    n = [1, 2, 4]
    middle = truth.at(n)
    model = usl.model(n, list(middle * 0.97), list(middle * 1.03))
    for name, value in (("lambda", 50.0), ("sigma", 0.08)):
        assert model[name]["low"] <= value <= model[name]["high"], (name, model[name])
    predicted = model["predicted"]
    assert predicted["n"] == 8
    assert predicted["jobsPerSecond"]["low"] <= truth.at(8) <= predicted["jobsPerSecond"]["high"]
    assert model["fit"]["degreesOfFreedom"] == 0  # three points, three parameters


def test_two_levels_fit_contention_only_and_one_level_fits_nothing() -> None:
    model = usl.model([1, 2], [48.0, 90.0], [50.0, 94.0])
    assert model["kappa"]["value"] == 0 and model["peakN"]["value"] is None
    assert 0 < model["sigma"]["value"] < 0.2
    with pytest.raises(ValueError, match="two or more"):
        usl.fit([4, 4], [10.0, 11.0])
    assert np.isfinite(model["predicted"]["jobsPerSecond"]["value"])
