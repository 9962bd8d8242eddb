"""The synthetic workload's draws, without running a job: seeded reproducibility, failure shares
within a 99.9 % binomial interval, quantiles of the declared distributions, and payloads the kind
refuses at the door with the field named."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from lab.runtime import distributions, portable
from lab.runtime.handlers import handler_for
from lab.runtime.payload import PayloadError
from workers import synthetic

Z999 = NormalDist().inv_cdf(0.9995)  # two-sided 99.9 %


def within_binomial(hits: int, n: int, p: float) -> bool:
    sd = math.sqrt(n * p * (1 - p))
    return abs(hits - n * p) <= Z999 * sd + 1


PAYLOAD = {
    "serviceMs": {"dist": "lognormal", "median": 80, "p99": 1200},
    "failRate": 0.05,
    "permanentFailRate": 0.01,
    "docBytes": {"dist": "uniform", "min": 100, "max": 300},
    "seed": 42,
}


def test_the_same_seed_draws_the_same_and_another_seed_does_not() -> None:
    a = [synthetic.draw(PAYLOAD, seq, 1) for seq in range(500)]
    b = [synthetic.draw(PAYLOAD, seq, 1) for seq in range(500)]
    other = [synthetic.draw({**PAYLOAD, "seed": 43}, seq, 1) for seq in range(500)]
    assert a == b and a != other
    failing = {seq for seq, d in enumerate(a) if d["fails"] or d["permanent"]}
    assert failing == {seq for seq, d in enumerate(b) if d["fails"] or d["permanent"]}


def test_failure_shares_are_within_a_binomial_interval() -> None:
    n = 20_000
    draws = [synthetic.draw(PAYLOAD, seq, 1) for seq in range(n)]
    assert within_binomial(sum(d["fails"] for d in draws), n, 0.05)
    assert within_binomial(sum(d["permanent"] for d in draws), n, 0.01)
    # Permanent failures happen on the first attempt only; a retry draws again.
    assert not any(synthetic.draw(PAYLOAD, seq, 2)["permanent"] for seq in range(2000))
    retried = [seq for seq, d in enumerate(draws[:2000]) if d["fails"]]
    assert any(not synthetic.draw(PAYLOAD, seq, 2)["fails"] for seq in retried)


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "lognormal", "median": 80, "p99": 1200},
        {"dist": "exponential", "mean": 50},
        {"dist": "uniform", "min": 10, "max": 30},
        {"dist": "pareto", "min": 20, "alpha": 2.5},
        {"dist": "empirical", "values": [5, 10, 10, 20, 400]},
        {"dist": "fixed", "value": 7},
    ],
)
def test_draws_have_the_declared_quantiles(spec: dict) -> None:
    dist = distributions.parse(spec, 600_000)
    stream = portable.Stream(1, "quantiles", 1)  # the generator jobs draw from
    draws = sorted(dist.sample(stream) for _ in range(40_000))
    for q in (0.5, 0.9, 0.99):
        # The observed quantile's rank: within a 99.9 % interval of the declared share.
        share = dist.cdf(draws[int(q * len(draws)) - 1])
        sd = math.sqrt(q * (1 - q) / len(draws))
        assert share >= q - Z999 * sd - 1e-9 or spec["dist"] in ("empirical", "fixed"), (q, share)
        assert dist.cdf(dist.quantile(q)) >= q - 1e-9
    if spec["dist"] == "lognormal":
        assert dist.quantile(0.5) == pytest.approx(80) and dist.quantile(0.99) == pytest.approx(
            1200
        )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"serviceMs": {"dist": "lognormal", "median": 80, "p99": 50}}, "payload.serviceMs.p99"),
        ({"serviceMs": {"dist": "gamma"}}, "payload.serviceMs.dist"),
        ({"serviceMs": {"dist": "fixed", "value": 10**9}}, "payload.serviceMs.value"),
        ({"serviceMs": 80}, "payload.serviceMs"),
        ({"docBytes": {"dist": "empirical", "values": [1, -1]}}, "payload.docBytes.values[1]"),
        ({"failRate": 1.5}, "payload.failRate"),
        ({"cpuShare": -0.1}, "payload.cpuShare"),
        ({"seed": -1}, "payload.seed"),
    ],
)
def test_a_payload_the_kind_cannot_run_names_the_field(payload: dict, field: str) -> None:
    with pytest.raises(PayloadError) as refused:
        handler_for("synthetic").check(payload)
    assert str(refused.value).startswith(field), str(refused.value)


def test_the_synthetic_kind_runs_one_by_one_and_writes_its_draws() -> None:
    from lab.runtime.messages import run_job

    handler = handler_for("synthetic")
    assert not handler.batchable
    job = run_job("r-1", 3, "synthetic", {"serviceMs": {"dist": "fixed", "value": 5},
                                          "docBytes": {"dist": "fixed", "value": 10}})  # fmt: skip
    out = handler(job)
    assert out["serviceMs"] == 5 and out["tookMs"] >= 4.5 and out["pad"] == "x" * 10


def test_a_spec_is_parsed_once_and_one_that_differs_only_in_type_is_parsed_again() -> None:
    check = handler_for("synthetic").check
    for value, refused in ((1, False), (True, True), (1.0, False), (True, True)):
        payload = {"serviceMs": {"dist": "fixed", "value": value}}
        if refused:  # a bool is no number, even after 1 (equal to True) was parsed
            with pytest.raises(PayloadError, match=r"payload\.serviceMs\.value"):
                check(payload)
        else:
            check(payload)
    first = synthetic.distributions({"serviceMs": {"dist": "uniform", "min": 1, "max": 2}})
    again = synthetic.distributions({"serviceMs": {"dist": "uniform", "min": 1, "max": 2}})
    assert first[0] is again[0]
    with pytest.raises(PayloadError, match=r"payload\.serviceMs: must be a JSON object"):
        synthetic.distributions({"serviceMs": {"dist": "fixed", "value": 10**5000}})
