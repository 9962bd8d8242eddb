"""A declared distribution is accepted only if it can be drawn: whatever `parse` accepts draws a
finite value within its cap for any seed, at both ends of the uniform and at every parameter's
declared bounds; whatever it refuses raises `DistributionError` naming the parameter (and, in
a payload, `PayloadError` naming the field), never an arithmetic error at draw time."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lab.runtime import portable
from lab.runtime.distributions import EXTREMES, LAST_U, PARAMS, DistributionError, parse
from lab.runtime.handlers import handler_for
from lab.runtime.payload import PayloadError
from workers import synthetic

CAPS = (synthetic.MAX_SERVICE_MS, synthetic.MAX_DOC_BYTES)


def drawn_everywhere(spec: dict[str, Any], cap: float, seed: int = 0, n: int = 20) -> None:
    """Parse `spec` and draw from it at both ends of the uniform and `n` times from `seed`:
    every draw is finite and within [0, cap], and the figures a report reads are finite."""
    dist = parse(spec, cap)
    stream = portable.Stream(seed, 0, 1)
    draws = [dist.sample(u) for u in EXTREMES] + [dist.sample(stream) for _ in range(n)]
    assert all(math.isfinite(v) and 0 <= v <= cap for v in draws), (spec, draws)
    figures = [dist.quantile(0), dist.quantile(0.99), dist.quantile(1), dist.mean()]
    assert all(math.isfinite(v) for v in figures), (spec, figures)
    assert 0 <= dist.cdf(dist.quantile(0.5)) <= 1


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"dist": "pareto", "min": 20, "alpha": 1e-300}, "payload.serviceMs.alpha"),
        ({"dist": "pareto", "min": 20, "alpha": 0.09}, "payload.serviceMs.alpha"),
        ({"dist": "pareto", "min": 5e-324, "alpha": 1e-300}, "payload.serviceMs.alpha"),
        ({"dist": "lognormal", "median": 5e-324, "p99": 1200}, "payload.serviceMs.median"),
        ({"dist": "lognormal", "median": 80, "p99": 10**400}, "payload.serviceMs.p99"),
        ({"dist": "exponential", "mean": float("inf")}, "payload.serviceMs.mean"),
        ({"dist": "fixed", "value": "80"}, "payload.serviceMs.value"),
        ({"dist": "fixed", "value": "٣"}, "payload.serviceMs.value"),  # an Arabic-Indic three
        ({"dist": "fixed", "value": "²"}, "payload.serviceMs.value"),  # '²'.isdigit() is True
        ({"dist": "uniform", "min": 9, "max": 3}, "payload.serviceMs.max"),
        ({"dist": "empirical", "values": [1, float("nan")]}, "payload.serviceMs.values[1]"),
    ],
)
def test_what_cannot_be_drawn_is_refused_at_the_door_naming_its_parameter(
    spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(PayloadError) as refused:
        handler_for("synthetic").check({"serviceMs": spec})
    assert str(refused.value).startswith(field + ": "), str(refused.value)


def test_a_cap_too_large_for_a_tail_is_refused_by_drawing_its_ends() -> None:
    # The declared bounds keep lab's caps drawable; a caller with a huge cap is still held to
    # what a float can hold, by evaluating the quantile where `random()` ends.
    with pytest.raises(DistributionError) as refused:
        parse({"dist": "pareto", "min": 1e300, "alpha": 0.1}, 1e308)
    assert refused.value.field == "alpha" and "overflows" in str(refused.value)
    with pytest.raises(DistributionError) as refused:
        parse({"dist": "exponential", "mean": 1e308}, math.inf)
    assert refused.value.field == "mean"


def bound_values(kind: str, cap: float) -> list[dict[str, Any]]:
    """Every combination of each parameter at its bounds (the least allowed, the most)."""
    choices = []
    for param in PARAMS[kind]:
        low = math.nextafter(param.low, math.inf) if param.open_low else param.low
        high = cap if param.high is None else param.high
        if param.items:
            choices.append([[low], [high], [low, high] * 5_000])
        else:
            choices.append([low, high])
    return [
        {"dist": kind, **dict(zip((p.name for p in PARAMS[kind]), combo, strict=True))}
        for combo in itertools.product(*choices)
    ]


@pytest.mark.parametrize("kind", list(PARAMS))
def test_every_parameter_at_its_bounds_can_be_drawn(kind: str) -> None:
    for cap in (*CAPS, 1e30):  # lab's caps, and the largest the bounds are made for
        for spec in bound_values(kind, cap):
            try:
                parse(spec, cap)
            except DistributionError as exc:
                # Only a relation between two parameters may refuse a corner (max below min,
                # p99 not above the median), never a bound on its own.
                assert "must be at least" in str(exc) or "must be above" in str(exc), (spec, exc)
                continue
            drawn_everywhere(spec, cap)


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=1e6),
    st.floats(min_value=0, max_value=2),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 5e-324, 1e-300, 0.001, 0.1, 1, 100, 524_288, 600_000, 10**400, LAST_U]),
    st.sampled_from(["80", "٣", "²", "1e3", None, True, [], {}]),
)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
# A parameter's value: mostly plausible (so many specs are accepted), one in five anything.
PLAUSIBLE = st.integers(0, 4).flatmap(
    lambda i: NUMBERS if i == 0 else st.floats(0, 1e6) | st.floats(0, 200) | st.floats(0, 2)
)
PARAM_NAMES = sorted({p.name for params in PARAMS.values() for p in params})


@st.composite
def specs(draw: st.DrawFn) -> Any:
    """Mostly specs of a declared kind with its parameters (so many are accepted), some with
    a stray key, some anything JSON can hold."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    kind = draw(st.sampled_from([*PARAMS, "gamma"]))
    spec: dict[str, Any] = {"dist": kind}
    for param in PARAMS.get(kind, ()):
        if param.items:
            spec[param.name] = draw(st.lists(PLAUSIBLE, min_size=0, max_size=5) | NUMBERS)
        elif draw(st.integers(0, 19)):
            spec[param.name] = draw(PLAUSIBLE)
    if draw(st.integers(0, 19)) == 0:
        spec[draw(st.sampled_from([*PARAM_NAMES, "junk"]))] = draw(NUMBERS)
    return spec


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(), st.sampled_from([*CAPS, 1.0, 1e300, math.inf]), st.integers(0, 2**63 - 1))
def test_what_parse_accepts_draws_for_any_seed_and_what_it_refuses_is_its_own_error(
    spec: Any, cap: float, seed: int
) -> None:
    try:
        parse(spec, cap)
    except DistributionError:
        event("refused")
        return
    event("accepted")
    drawn_everywhere(spec, cap, seed)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "serviceMs": specs(),
            "docBytes": specs(),
            "failRate": NUMBERS,
            "permanentFailRate": NUMBERS,
            "cpuShare": NUMBERS,
            "seed": NUMBERS,
        },
    ),
    st.integers(0, 9_999_999),
    st.integers(1, 10_000),
)
def test_a_synthetic_payload_is_drawn_or_refused_naming_its_field(
    payload: dict[str, Any], seq: int, attempt: int
) -> None:
    try:
        handler_for("synthetic").check(payload)
    except PayloadError:
        event("refused")
        with pytest.raises(PayloadError):
            synthetic.draw(payload, seq, attempt)
        return
    event("accepted")
    drawn = synthetic.draw(payload, seq, attempt)
    assert 0 <= drawn["serviceMs"] <= synthetic.MAX_SERVICE_MS
    assert 0 <= drawn["docBytes"] <= synthetic.MAX_DOC_BYTES


@pytest.mark.parametrize(
    ("number", "field"),
    [
        ("٣", None),  # not JSON: Python's JSON reader takes ASCII digits only
        ("²", None),
        ("9" * 5000, None),  # past Python's 4,300 digits: refused as not JSON, in one line
        ("1e999", "payload.serviceMs.value"),  # JSON reads it as infinity
        ("NaN", "payload.serviceMs.value"),
        ("10" + "0" * 400, "payload.serviceMs.value"),  # compared before any conversion
    ],
)
def test_a_distribution_typed_on_the_command_line_takes_ascii_digits_within_bounds(
    number: str, field: str | None
) -> None:
    import argparse

    from lab.cli.runs import payload_arg

    text = '{"serviceMs": {"dist": "fixed", "value": NUMBER}}'.replace("NUMBER", number)
    if field is None:
        with pytest.raises(argparse.ArgumentTypeError) as refused:
            payload_arg(text)
        assert (
            str(refused.value).startswith("payload is not JSON") and len(str(refused.value)) < 300
        )
        return
    with pytest.raises(PayloadError) as named:
        handler_for("synthetic").check(payload_arg(text))
    assert str(named.value).startswith(field + ": ")
