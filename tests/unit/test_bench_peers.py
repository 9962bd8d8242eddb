"""`lab bench throughput --peers` is an experiment over targets: which peers `--peers` names (and
a clear refusal of one lab does not know), the spec it builds (the throughput procedure, one
configuration per target, interleaved), and what its rows say (intervals, lab ÷ the best peer,
each target's jobs and verdict) as the bench's table shows it."""

from __future__ import annotations

import pytest

from lab.cli import build_parser
from lab.experiment import peers
from lab.experiment.plan import trials
from lab.experiment.spec import Spec, SpecError
from lab.experiment.throughput import throughput_spec
from lab.measure.bench import BenchError, Rep, Report
from lab.measure.bench_table import markdown


def test_peers_are_named_once_each_and_an_unknown_one_names_the_known_targets() -> None:
    assert peers.names("celery,dramatiq") == ("celery", "dramatiq")
    assert peers.names(" rq , lab,rq,bullmq") == ("rq", "bullmq")  # lab always runs
    with pytest.raises(BenchError) as refused:
        peers.names("celery,nosuch")
    said = str(refused.value)
    assert "'nosuch' is not a target" in said and "celery, dramatiq, rq, arq, bullmq" in said
    with pytest.raises(BenchError, match="at least one of"):
        peers.names("lab")
    parse = build_parser().parse_args
    assert parse(["bench", "throughput", "--peers"]).peers == "celery,dramatiq"
    assert parse(["bench", "throughput", "--peers", "--jobs", "300"]).peers == "celery,dramatiq"
    assert parse(["bench", "throughput", "--peers", "rq,arq"]).peers == "rq,arq"
    assert parse(["bench", "throughput"]).peers is None


def test_the_spec_is_one_configuration_per_target_with_the_same_work() -> None:
    spec = throughput_spec(300, 2, 750, 250, 3, ("celery", "dramatiq"), 4)
    assert spec.procedure == "throughput" and spec.order == "random"
    assert spec.factors["target"] == ["lab", "celery", "dramatiq"]
    plan = trials(spec)
    assert len(plan) == 9
    for trial in plan:
        setup = spec.setup(trial.levels)
        assert setup.body == {"x": 300, "seed": 0, "target": trial.levels["target"]}
        assert (setup.workers, setup.settings) == (2, {"prefetch": 750, "batch": 250,
                                                       "concurrency": 4})  # fmt: skip
    order = [t.levels["target"] for t in plan]
    assert order != sorted(order, key=["lab", "celery", "dramatiq"].index)  # interleaved
    alone = throughput_spec(300, 1, 750, 250, 2)
    assert "target" not in alone.factors and alone.order == "sequential"
    # An experiment file may run the throughput procedure on a target too; nothing else of a run.
    on_rq = Spec.of({"name": "t", "procedure": "throughput", "run": {"x": 10, "target": "rq"}})
    assert on_rq.body({})["target"] == "rq"
    with pytest.raises(SpecError, match=r"^run.kind: .* \(only x and target\)"):
        Spec.of({"name": "t", "procedure": "throughput", "run": {"x": 10, "kind": "sleep"}})


def row(target: str, drain: float, e2e: float, error: str = "") -> dict[str, object]:
    return {"trial": f"{target}-{drain}", "target": target, "error": error,
            "releasedPerSecond": 900.0, "drainedPerSecond": drain, "endToEndPerSecond": e2e,
            "cpu.workerSecondsPer1000": 0.5, "processed": 0 if error else 600,
            "verdict.clean": not error}  # fmt: skip


def test_the_rows_give_each_target_an_interval_and_lab_a_ratio_to_the_best_peer() -> None:
    rows = [row("lab", 9000, 5000), row("celery", 600, 250), row("dramatiq", 950, 300),
            row("lab", 10000, 5200), row("celery", 620, 260), row("dramatiq", 1050, 310),
            row("celery", 0, 0, error="TimeoutError: the drain")]  # fmt: skip
    found = peers.summary(rows, ("lab", "celery", "dramatiq"), 300, 1, 5)
    assert list(found["targets"]) == ["lab", "celery", "dramatiq"]
    lab = found["targets"]["lab"]
    assert lab["drain"]["mean"] == 9500 and lab["drain"]["low"] < 9500 < lab["drain"]["high"]
    assert (lab["processed"], lab["expected"], lab["clean"]) == (1200, 1200, True)
    celery = found["targets"]["celery"]
    assert (celery["drain"]["n"], celery["errors"], celery["expected"]) == (2, 1, 1800)
    assert found["best"] == "dramatiq"
    drain = found["labVsBest"]["drain"]
    assert drain["ratio"] == pytest.approx(9.5) and drain["verdict"] == "real"
    assert drain["low"] < drain["ratio"] < drain["high"]
    report = Report(params={"jobs": 300, "workers": 1, "prefetch": 750, "batch": 250, "reps": 2},
                    machine={"cpus": 2, "python": "3.11"}, peers=found)  # fmt: skip
    report.reps = [Rep(*[1.0] * len(Rep.__dataclass_fields__))]
    assert report.ratios()["drain_vs_best_peer"] == pytest.approx(9.5)
    shown = markdown(report)
    table = shown.split("\n\n")[-1].strip().splitlines()
    command = "--batch 250 --reps 2 --peers celery,dramatiq` on 2 CPUs"
    assert command in shown.splitlines()[0]
    lines = shown.split("| target (")[1].splitlines()
    assert lines[0].startswith("1 worker(s) × 5 job threads, 300 jobs, interleaved)")
    assert lines[3].startswith("| celery | 900 [900–900] | 610 [483–737] | 255 [")
    assert lines[3].endswith("| 1,200 of 1,800 | clean, 1 trial(s) failed |")
    assert table[-1].startswith("lab ÷ best peer (dramatiq): drain 9.5× [")
