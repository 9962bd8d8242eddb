"""Latency histograms without a service: buckets within 1 % of every value, exact merges (two
workers' halves add up to the whole), quantiles, and what the worker brings to the count for a
job (only for a job that ended: written, or failed for good)."""

from __future__ import annotations

import random
import time

import pytest

from lab.runtime import latency
from lab.runtime.batch import Delivery, Outcome
from lab.runtime.messages import Job
from lab.runtime.recording import timings_of


@pytest.mark.parametrize("ms", [0.0, 0.05, 0.127, 0.2, 1.0, 7.5, 200.0, 1234.5, 59_000.0, 6e5])
def test_every_value_is_within_one_percent_of_its_bucket(ms: float) -> None:
    bucket = latency.bucket_of(ms)
    low, high = latency.bounds_us(bucket)
    assert low <= int(ms * 1000) < high
    if ms >= 0.128:
        assert abs(latency.value_ms(bucket) - ms) <= 0.01 * ms


def test_buckets_are_ordered_and_contiguous() -> None:
    previous_high = 0
    for bucket in range(0, 40 * latency.SUB):
        low, high = latency.bounds_us(bucket)
        assert low == previous_high and high > low
        previous_high = high


def test_histograms_merge_exactly_and_give_quantiles() -> None:
    rng = random.Random(2)
    values = [rng.lognormvariate(4, 1) for _ in range(20_000)]
    whole, first, second = latency.Histogram(), latency.Histogram(), latency.Histogram()
    for i, v in enumerate(values):
        whole.add(latency.bucket_of(v))
        (first if i % 2 else second).add(latency.bucket_of(v))
    merged = first.merge(second)
    assert merged.counts == whole.counts and merged.count == 20_000
    ordered = sorted(values)
    for q in (0.5, 0.99):
        exact = ordered[int(q * len(ordered)) - 1]
        assert merged.quantile(q) == pytest.approx(exact, rel=0.01)
    summary = merged.summary()
    assert summary["count"] == 20_000 and summary["maxMs"] >= ordered[-1]
    assert set(summary) >= {"p50Ms", "p90Ms", "p95Ms", "p99Ms", "p99.9Ms", "meanMs"}


def test_a_run_hash_reads_back_per_metric_kind_and_window() -> None:
    def field(metric: str, kind: str, ms: float) -> str:
        return f"{latency.SHORT[metric]}|{kind}|{latency.bucket_of(ms)}"

    first = {field("service", "index", 5.0): "3", field("endToEnd", "index", 9.0): "3"}
    second = {field("service", "agent", 50.0): "1"}
    whole = {**first, **second, "junk": "1"}
    out = latency.run_latency("r-1", whole, {100: first, 101: second})
    assert out["service"]["count"] == 4 and out["endToEnd"]["count"] == 3
    assert out["service"]["byKind"]["agent"]["count"] == 1
    assert [w["t"] for w in out["service"]["windows"]] == [1000, 1010]
    assert out["queueWait"] == {"count": 0, "byKind": {}, "windows": []}
    assert "windows" not in latency.run_latency("r-1", whole)["service"]
    legacy = {f"s|index|100|{latency.bucket_of(5.0)}": "2"}  # an older lab's field, window inside
    assert latency.run_latency("r-1", legacy)["service"]["count"] == 2
    assert latency.prometheus_bucket(0.5) == 0 and latency.prometheus_bucket(1e9) == 20


def test_each_ended_job_brings_its_three_durations_to_the_count() -> None:
    """What the counting script gets (recording.timings_of): the window and kinds of the batch,
    and per job its seq, kind and the fine buckets, coarse buckets and µs of its queue wait
    (due again → started), service (started → now) and end to end (first released → now);
    nothing for an attempt that did not end the job."""
    now = time.time() * 1000
    job = Job("r-1-3", "r-1", 3, "index", attempt=2, createdAt=int(now - 900), dueAt=int(now - 300))
    ended = Outcome(Delivery(1, b"{}"), job, verdict="written", started_ms=now - 100)
    retried = Outcome(Delivery(2, b"{}"), job, verdict="retry", started_ms=now)
    run = timings_of([ended, retried])["r-1"].detail()
    (row,) = run["jobs"]
    assert row[:2] == [3, 1] and run["kinds"] == ["index"]
    assert run["window"] == int(now // 1000) // latency.WINDOW_S
    waited, served, whole = (latency.value_ms(b) for b in row[2:5])
    assert waited == pytest.approx(200, rel=0.02)
    assert served == pytest.approx(100, rel=0.1)
    assert whole == pytest.approx(900, rel=0.1)
    assert row[7] == latency.prometheus_bucket(whole) and row[10] >= 899_000
    for ms in (0.05, 3.0, 777.0, 5e5):  # the hot path's own bucketing is bucket_of's
        at = latency.timing(1, 1, 1 + ms, 1 + ms)
        assert at[0] == latency.bucket_of(ms) and at[3] == latency.prometheus_bucket(ms)
    unknown = latency.timing(0, 0, now, now + 5)
    assert unknown[0] == unknown[2] == -1 and unknown[1] >= 0 and unknown[6] == -1


def test_a_batch_added_up_counts_what_its_jobs_one_by_one_count() -> None:
    # The script's two ways to take a batch agree bucket for bucket: added up (every job new)
    # and job by job (`[seq, kind, fine ×3, coarse ×3, µs ×3]`, summed as record.lua sums them).
    rng = random.Random(4)
    now = time.time() * 1000
    run = latency.RunTimings(7, ["index", "synthetic"], now)
    for seq in range(3000):
        created = int(now - rng.uniform(0, 5000))
        released = 0 if seq % 97 == 0 else created + rng.choice([0, 0, 1000, 5000])
        started = now - rng.choice([3.25, 3.25, rng.uniform(0, 900)])
        served = 0.0 if seq % 2 else started + rng.uniform(0, 3)  # "synthetic" runs one by one
        run.jobs.append(
            (seq, 1 + seq % 2, 0 if seq % 211 == 0 else created, released, started, served)
        )
    fine: dict = {}
    coarse: dict = {}
    sums: dict = {}
    for _seq, kind, *t in run.detail()["jobs"]:
        for m in (1, 2, 3):
            if t[m - 1] >= 0:
                fine[(m, kind, t[m - 1])] = fine.get((m, kind, t[m - 1]), 0) + 1
                coarse[(m, kind, t[2 + m])] = coarse.get((m, kind, t[2 + m]), 0) + 1
                sums[(m, kind)] = sums.get((m, kind), 0) + t[5 + m]
    added = run.added_up()
    assert added["window"] == 7 and added["kinds"] == ["index", "synthetic"]
    agg = added["agg"]
    assert {tuple(f[:3]): f[3] for f in agg["fine"]} == fine
    assert {tuple(c[:3]): c[3] for c in agg["coarse"]} == coarse
    assert {tuple(x[:2]): x[2] for x in agg["sums"]} == sums
    assert len(agg["fine"]) < len(run.jobs) * 3  # fewer numbers than the jobs one by one


def test_a_kind_run_one_by_one_is_served_until_its_handler_returns() -> None:
    # Its document is written after, on its own: that is end to end, not the job's own work.
    now = float(int(time.time() * 1000))  # whole ms: the released times below are ints
    waited, served, whole = latency.timing(
        int(now - 300), int(now - 300), now - 250, now, now - 50
    )[:3]
    assert latency.value_ms(waited) == pytest.approx(50, rel=0.02)
    assert latency.value_ms(served) == pytest.approx(200, rel=0.02)
    assert latency.value_ms(whole) == pytest.approx(300, rel=0.02)
