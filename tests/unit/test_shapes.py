"""Load shapes themselves: integrals, bounds, short forms, seeded Poisson arrivals, the ETA.
How the scheduler follows each one through `release.lua` (and its stand-in) is
`tests/contracts/test_release.py`."""

from __future__ import annotations

import math

import pytest

from lab.runtime import shapes

SHAPES = {
    "constant": {"type": "constant", "y": 600},
    "ramp": {"type": "ramp", "from": 600, "to": 12000, "seconds": 120},
    "steps": {"type": "steps", "steps": [{"seconds": 20, "y": 600}, {"seconds": 20, "y": 3000},
                                         {"seconds": 20, "y": 120}]},
    "spike": {"type": "spike", "base": 600, "peak": 6000, "at": 30, "seconds": 10},
    "sine": {"type": "sine", "min": 300, "max": 3000, "period": 40},
    "poisson": {"type": "poisson", "y": 1200},
    "trace": {"type": "trace", "perSecond": [3, 0, 7, 12, 1, 0, 0, 25, 4] * 10},
}  # fmt: skip


# --- the shapes themselves ----------------------------------------------------------------------
def test_integrals_of_the_analytic_shapes() -> None:
    ramp = shapes.parse(SHAPES["ramp"])
    assert ramp.count(120) == pytest.approx((600 + 12000) / 2 * 2)  # the mean rate, 2 minutes
    assert ramp.count(180) == pytest.approx(12600 + 12000)  # then it holds the last rate
    assert ramp.rate(60) == 6300
    steps = shapes.parse(SHAPES["steps"])
    assert steps.count(60) == pytest.approx(200 + 1000 + 40) and steps.rate(100) == 120
    spike = shapes.parse(SHAPES["spike"])
    assert spike.count(30) == 300 and spike.count(40) == 1300 and spike.rate(45) == 600
    sine = shapes.parse(SHAPES["sine"])
    assert sine.count(40) == pytest.approx(1650 / 60 * 40)  # whole periods: the mean rate
    trace = shapes.parse({"type": "trace", "perSecond": [5, 10]})
    assert trace.count(1.5) == 10 and trace.count(4) == 15 + 20  # then 10 a second


def test_poisson_arrivals_are_seeded_and_have_the_mean_rate() -> None:
    a, b = shapes.parse(SHAPES["poisson"], 1), shapes.parse(SHAPES["poisson"], 1)
    other = shapes.parse(SHAPES["poisson"], 2)
    assert [a.count(t / 10) for t in range(600)] == [b.count(t / 10) for t in range(600)]
    assert [a.count(t) for t in range(60)] != [other.count(t) for t in range(60)]
    # 20 a second for 600 s: 12,000 expected, sd ≈ 110; the 99.9 % interval is ± 3.3 sd.
    assert abs(a.count(600) - 12_000) <= 3.3 * math.sqrt(12_000)
    fresh = shapes.parse(SHAPES["poisson"], 1)
    assert fresh.count(599.5) == a.count(599.5)  # any second is known without the ones before


@pytest.mark.parametrize(
    ("shape", "field"),
    [
        ({"type": "ramp", "from": 600, "to": 0, "seconds": 10}, "shape.to"),
        ({"type": "ramp", "from": 600, "to": 1200}, "shape.seconds"),
        ({"type": "constant", "y": float("inf")}, "shape.y"),
        ({"type": "constant", "y": True}, "shape.y"),
        ({"type": "constant", "y": 600, "extra": 1}, "shape.extra"),
        ({"type": "steps", "steps": []}, "shape.steps"),
        ({"type": "steps", "steps": [{"seconds": 1, "y": 1e12}]}, "shape.steps[0].y"),
        ({"type": "sine", "min": 900, "max": 600, "period": 10}, "shape.max"),
        ({"type": "trace", "perSecond": [1, -2]}, "shape.perSecond[1]"),
        ({"type": "trace", "perSecond": [0, 0]}, "shape.perSecond"),
        ({"type": "trace", "perSecond": [1] * (shapes.MAX_TRACE + 1)}, "shape.perSecond"),
        ({"type": "warp", "y": 1}, "shape.type"),
        ([1, 2], "shape"),
    ],
)
def test_a_shape_lab_cannot_follow_is_refused_naming_the_field(shape: object, field: str) -> None:
    with pytest.raises(shapes.ShapeError) as refused:
        shapes.parse(shape)
    assert refused.value.field == field


def test_the_short_forms_of_the_command_line() -> None:
    def parsed(text: str) -> dict:
        return shapes.from_text(text, read=lambda _path: "second,jobs\n0,3\n1,5\n")

    assert parsed("ramp:600..12000:120s") == SHAPES["ramp"]
    assert parsed("constant:600") == SHAPES["constant"]
    assert parsed("steps:20s@600,20s@3000,20s@120") == SHAPES["steps"]
    assert parsed("spike:600..6000@30s+10s") == SHAPES["spike"]
    assert parsed("sine:300..3000/40s") == SHAPES["sine"]
    assert parsed("poisson:1200") == SHAPES["poisson"]
    assert parsed("@traffic.csv") == {"type": "trace", "perSecond": [3, 5]}
    assert parsed('{"type": "constant", "y": 5}') == {"type": "constant", "y": 5}
    for bad in ("ramp:600", "steps:30@600", "fast", "{not json"):
        with pytest.raises(shapes.ShapeError):
            parsed(bad)


def test_the_eta_follows_the_shape() -> None:
    plan = shapes.Plan(shapes.parse(SHAPES["ramp"]), base=1, x=1 + 12600, version="1")
    assert plan.eta_s(0, lag=0) == pytest.approx(120, abs=0.01)
    assert plan.eta_s(60, lag=0) == pytest.approx(60, abs=0.01)


@pytest.mark.parametrize("mean", [0.5, 12, 35, 400, 20_000])
def test_poisson_counts_have_the_mean_and_variance_of_a_poisson(mean: float) -> None:
    import random
    from statistics import fmean, pvariance

    rng = random.Random(3)
    draws = [shapes.poisson_draw(rng, mean) for _ in range(4000)]
    sd_of_mean = math.sqrt(mean / len(draws))
    assert abs(fmean(draws) - mean) <= 4 * sd_of_mean
    assert pvariance(draws) == pytest.approx(mean, rel=0.15)


def test_a_fast_poisson_far_into_a_run_costs_one_draw_per_second() -> None:
    import time

    fast = shapes.parse({"type": "poisson", "y": 60_000_000}, 5)  # a million a second
    began = time.perf_counter()
    total = fast.count(600.0)  # ten minutes in: 600 counts, and one second's offsets
    assert time.perf_counter() - began < 5
    assert abs(total - 600_000_000) <= 4 * math.sqrt(600_000_000)
