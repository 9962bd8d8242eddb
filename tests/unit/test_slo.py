"""Objectives without a service: the grammar (JSON and the command line's short form), refusals
that name the field, and judging windows: pending in the grace or with nothing to judge, ok,
breached (kept once reached, with the first breach's value and time)."""

from __future__ import annotations

import pytest

from lab.runtime import latency, slo


def window(
    ms: list[float] = (), processed: int = 0, failed: int = 0, planned: int = 0
) -> slo.Window:
    histograms = {m: latency.Histogram() for m in latency.METRICS}
    for value in ms:
        histograms["endToEnd"].add(latency.bucket_of(value))
    return slo.Window(histograms, processed, failed, planned)


def test_the_short_forms() -> None:
    assert slo.from_text("endToEnd.p99<2s") == {"metric": "endToEnd.p99", "maxMs": 2000.0}
    assert slo.from_text("service.p50<200ms@10s") == {
        "metric": "service.p50", "maxMs": 200.0, "windowSeconds": 10}  # fmt: skip
    assert slo.from_text("failedRatio<0.01") == {"metric": "failedRatio", "max": 0.01}
    assert slo.from_text("throughput>0.95") == {"metric": "throughput", "minRatioOfShape": 0.95}
    assert slo.from_text("headAge<30s") == {"metric": "headAgeMs", "max": 30000.0}
    assert slo.from_text("headAgeMs<500") == {"metric": "headAgeMs", "max": 500.0}
    for bad in ("endToEnd.p98<2s", "endToEnd.p99>2s", "failedRatio<2s", "fast", "throughput<1",
                "headAge<30", "headAge>1s", "headAge<1s@10s"):  # fmt: skip
        with pytest.raises(slo.SloError):
            slo.from_text(bad)


@pytest.mark.parametrize(
    ("objectives", "field"),
    [
        ([{"metric": "endToEnd.p99"}], "slo[0].maxMs"),
        ([{"metric": "endToEnd.p99", "maxMs": -1}], "slo[0].maxMs"),
        ([{"metric": "failedRatio", "max": 2}], "slo[0].max"),
        ([{"metric": "throughput", "minRatioOfShape": 0.9, "maxMs": 3}], "slo[0].maxMs"),
        ([{"metric": "nope"}], "slo[0].metric"),
        ([{"metric": "headAgeMs", "max": 30000, "windowSeconds": 10}], "slo[0].windowSeconds"),
        ([{"metric": "headAgeMs"}], "slo[0].max"),
        ([{"metric": "failedRatio", "max": 0.1, "windowSeconds": 0}], "slo[0].windowSeconds"),
        ({"metric": "failedRatio"}, "slo"),
        ([1], "slo[0]"),
    ],
)
def test_an_objective_lab_cannot_judge_is_refused_naming_the_field(
    objectives: object, field: str
) -> None:
    with pytest.raises(slo.SloError) as refused:
        slo.parse(objectives)
    assert refused.value.field == field


def test_judging_pending_ok_and_a_breach_that_is_kept() -> None:
    objectives = slo.parse([
        {"metric": "endToEnd.p99", "maxMs": 100, "windowSeconds": 10},
        {"metric": "failedRatio", "max": 0.1},
        {"metric": "throughput", "minRatioOfShape": 0.9},
    ])  # fmt: skip
    quiet = [window(), window(), window()]
    states = slo.judge(objectives, quiet, elapsed_s=60, grace_s=None, before=None, now_ms=1)
    assert [s["state"] for s in states] == ["pending"] * 3  # nothing to judge is not a breach
    fine = [window([50] * 99 + [90]), window(processed=100, failed=5), window(processed=95,
                                                                          planned=100)]  # fmt: skip
    in_grace = slo.judge(objectives, fine, elapsed_s=5, grace_s=None, before=None, now_ms=2)
    assert in_grace[0]["state"] == "pending" and in_grace[1]["state"] == "pending"  # 10 s, 30 s
    states = slo.judge(objectives, fine, elapsed_s=60, grace_s=None, before=None, now_ms=3)
    assert [s["state"] for s in states] == ["ok", "ok", "ok"]
    bad = [window([50] * 90 + [500] * 10), window(processed=80, failed=20),
           window(processed=50, planned=100)]  # fmt: skip
    states = slo.judge(objectives, bad, elapsed_s=61, grace_s=None, before=states, now_ms=4)
    assert [s["state"] for s in states] == ["breached"] * 3
    assert states[1]["value"] == 0.2 and states[2]["value"] == 0.5 and states[0]["breachedAt"] == 4
    later = slo.judge(objectives, fine, elapsed_s=70, grace_s=None, before=states, now_ms=5)
    assert [(s["state"], s["breachedAt"]) for s in later] == [("breached", 4)] * 3


def test_the_head_age_is_judged_now_without_a_window_or_grace() -> None:
    objectives = slo.parse([{"metric": "headAgeMs", "max": 5000}])
    assert objectives[0].as_json() == {"metric": "headAgeMs", "max": 5000.0}
    assert slo.parse([objectives[0].as_json()]) == objectives  # stored, read back the same
    waiting = slo.Window({}, 0, 0, 0, head_age_ms=1200)
    states = slo.judge(objectives, [waiting], elapsed_s=1, grace_s=None, before=None, now_ms=1)
    assert (states[0]["state"], states[0]["value"]) == ("ok", 1200)
    stuck = slo.Window({}, 0, 0, 0, head_age_ms=7000)
    states = slo.judge(objectives, [stuck], elapsed_s=2, grace_s=None, before=None, now_ms=2)
    assert (states[0]["state"], states[0]["value"]) == ("breached", 7000)
    held = slo.judge(objectives, [stuck], elapsed_s=2, grace_s=10, before=None, now_ms=2)
    assert held[0]["state"] == "pending"  # the run's own grace still applies
