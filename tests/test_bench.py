"""`lab bench` runs the real processes end to end and writes its results (figures are not judged
here: performance is measured by the benchmark, not asserted by timers)."""

from __future__ import annotations

import json

import pytest

from lab.experiment import load

from .conftest import ONE_AT_A_TIME, make_settings
from .test_cli import lab_cli

pytestmark = [pytest.mark.slow, ONE_AT_A_TIME]


def test_lab_bench_small_run_writes_json_and_table(es_url: str, tmp_path) -> None:
    settings = make_settings(es_url, tmp_path)
    out = tmp_path / "results"
    done = lab_cli(
        settings,
        "bench",
        "throughput",
        "--jobs",
        "2000",
        "--reps",
        "1",
        "--out",
        str(out),
        timeout=400,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [result] = list(out.glob("*.json"))
    data = json.loads(result.read_text())
    assert data["params"]["jobs"] == 2000
    rep = data["reps"][0]
    for measure in ("release_jobs_s", "drain_jobs_s", "e2e_jobs_s", "status_ms_p99"):
        assert rep[measure] > 0, measure
    assert set(data["ceilings"]) >= {"pika_publish_confirmed_jobs_s", "es_bulk_docs_s"}
    assert 0 < data["redis_bytes_per_run"] < 2000
    assert "| drain (1 worker(s)) |" in result.with_suffix(".md").read_text()
    # The bench is a built-in experiment: its trials are rows an experiment report can take.
    rows = load(result.with_suffix(""))
    assert len(rows) == 1 and rows["drainedPerSecond"].iloc[0] == pytest.approx(
        rep["drain_jobs_s"], rel=1e-3
    )
    assert rows["workers"].iloc[0] == 1 and not str(rows["error"].fillna("").iloc[0])


def test_lab_bench_peers_runs_each_target_through_the_trial_runner(es_url: str, tmp_path) -> None:
    """`--peers`: one experiment over targets; every target's real workers do the same jobs."""
    settings = make_settings(es_url, tmp_path)
    out = tmp_path / "results"
    x = 200  # small: each target's release is one submit batch of the scheduler's
    done = lab_cli(settings, "bench", "throughput", "--peers", "--jobs", str(x), "--reps", "1",
                   "--out", str(out), timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    [result] = list(out.glob("*.json"))
    peers = json.loads(result.read_text())["peers"]
    assert list(peers["targets"]) == ["lab", "celery", "dramatiq"]
    for name, found in peers["targets"].items():
        assert found["processed"] == found["expected"] == 2 * x, name  # two runs of x jobs each
        assert found["clean"] and not found["errors"], name
        assert found["drain"]["mean"] > 0 and found["e2e"]["mean"] > 0, name
    assert peers["best"] in ("celery", "dramatiq") and peers["labVsBest"]["drain"]["ratio"] > 0
    rows = load(result.with_suffix(""))
    assert sorted(rows["target"]) == ["celery", "dramatiq", "lab"]
    for _, row in rows.iterrows():
        assert not str(row["error"]) or str(row["error"]) == "nan", row["error"]
        assert row["processed"] == row["released"] == 2 * x, row["target"]
        assert bool(row["verdict.clean"]) and row["verdict.lost"] == 0, row["target"]
        assert row["drainedPerSecond"] > 0 and row["endToEndPerSecond"] > 0, row["target"]
    table = result.with_suffix(".md").read_text()
    assert "| celery |" in table and "lab ÷ best peer" in table
