"""A load shape is one class. The example of docs/guides/extending.md ("A load shape"), registered
here as it is written there (and gone again after), is parsed with an error naming its field,
read from its short form, listed in the reference's table, integrates its own rate, and is
followed by a scheduler on a simulated clock second by second (through `lab.testing`'s
stand-in for the release script, which `tests/contracts/` holds to the script)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lab.cli import reference_pages
from lab.runtime import shapes
from lab.runtime.shapes import SHAPES, kinds
from lab.testing import FakeClock, FakeLimiter
from tests import docs_pages
from tests.contracts.conftest import START
from tests.contracts.test_release import assert_follows, run_for, scheduler

SAWTOOTH = {"type": "sawtooth", "low": 600, "high": 6000, "period": 60}


def guide_example() -> str:
    """The Python of the guide's `## A load shape` section."""
    return docs_pages.guide_python("extending.md", "A load shape")


@pytest.fixture
def sawtooth() -> Iterator[type[Any]]:
    """The guide's class, as if it were written in kinds.py."""
    with docs_pages.registered(guide_example(), kinds, SHAPES, "sawtooth") as cls:
        yield cls


def test_the_guides_shape_parses_reads_and_refuses_by_field(sawtooth: type[Any]) -> None:
    shape = shapes.parse(SAWTOOTH)
    assert isinstance(shape, sawtooth) and shape.as_json() == SAWTOOTH
    assert shapes.from_text("sawtooth:600..6000/60s") == SAWTOOTH
    assert shapes.describe(SAWTOOTH) == "sawtooth 600→6,000/min every 60 s"
    for bad, field in (({**SAWTOOTH, "period": 0.5}, "shape.period"),
                       ({**SAWTOOTH, "high": 1e12}, "shape.high"),
                       ({**SAWTOOTH, "teeth": 3}, "shape.teeth")):  # fmt: skip
        with pytest.raises(shapes.ShapeError) as refused:
            shapes.parse(bad)
        assert refused.value.field == field
    assert "| `sawtooth` |" in reference_pages.shapes_and_objectives()


def test_its_count_is_the_integral_of_its_rate(sawtooth: type[Any]) -> None:
    shape = shapes.parse(SAWTOOTH)
    step, total = 0.001, 0.0
    for i in range(int(150 / step)):  # two and a half periods, by the midpoint rule
        total += shape.rate((i + 0.5) * step) / 60 * step
    assert shape.count(150) == pytest.approx(total, rel=1e-6)
    assert shape.count(60) == pytest.approx(3300)  # one period: the mean rate for a minute
    assert shape.rate(59.9) > 5900 and shape.rate(60) == 600  # then it starts again


def test_a_scheduler_follows_it_second_by_second(sawtooth: type[Any]) -> None:
    clock = FakeClock(START)
    limiter = FakeLimiter(clock, x=1_000_000, shape=SAWTOOTH, seed=7)
    s = scheduler(limiter, clock)
    run_for(s, clock, limiter, 180)
    assert not limiter.marks, limiter.marks  # nothing held back, nothing forgiven
    assert_follows(limiter, shapes.parse(SAWTOOTH))
