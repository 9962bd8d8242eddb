"""The targets drill's figures and checks (pure): its throughput leaves a drain's quiet time out,
its failures are judged over the jobs a fault left alone, its lost count from the documents, and
a row of its table puts the delivery verdict first."""

from __future__ import annotations

from lab.measure.targets import (
    Evidence,
    failures_agree,
    jobs_per_second,
    lost_by_documents,
    table_row,
    target_figures,
)
from lab.targets.verdict import Bitmaps, Documents


def bits(*seqs: int) -> int:
    return sum(1 << s for s in seqs)


def maps(done: int, failed: int = 0, again: int = 0) -> Bitmaps:
    return Bitmaps(done=done, failed=failed, again=again, submitted=None, indeterminate=0)


def test_jobs_per_second_runs_to_the_end_of_the_last_second_a_job_ended() -> None:
    ended = [(100, 10, 0), (101, 19, 1), (102, 0, 0), (103, 0, 0)]
    points = [{"t": t, "processed": p, "failed": f} for t, p, f in ended]
    assert jobs_per_second(points) == 15.0  # 30 jobs over seconds 100 and 101
    assert jobs_per_second([{"t": 5, "processed": 0, "failed": 0}]) is None
    assert jobs_per_second([]) is None


def test_the_failed_jobs_are_judged_over_those_that_ended_exactly_once() -> None:
    expected = bits(2, 5, 8)
    # 8 was lost to a kill (never ended), 6 ended twice: both left out; 2 and 5 failed.
    found = failures_agree(maps(done=bits(0, 1, 3, 4, 6, 7), failed=bits(2, 5), again=bits(6)),
                           expected)  # fmt: skip
    assert found == {"agree": True, "expected": 2, "observed": 2, "differ": 0, "leftOut": 1}
    # A job that failed though its seed does not fail it, and one the seed fails that was done.
    wrong = failures_agree(maps(done=bits(0, 1, 3, 5), failed=bits(2, 4)), bits(2, 5))
    assert not wrong["agree"] and wrong["differ"] == 2


def test_lost_by_documents_is_every_job_with_no_document_that_did_not_fail() -> None:
    run = maps(done=bits(0, 1, 2), failed=bits(3))
    assert lost_by_documents(6, run, Documents(found=bits(0, 1, 2))) == 2  # 4 and 5
    # A job counted done without its document is lost by the documents' account.
    assert lost_by_documents(6, run, Documents(found=bits(0, 1))) == 3


def test_a_target_s_figures_are_named_for_compare_and_its_row_puts_the_verdict_first() -> None:
    row = {"verdict.lost": 4, "verdict.duplicated": 0, "verdict.executedMoreThanOnce": 1,
           "verdict.unexpected": 0, "verdict.uncountedEffects": 0, "verdict.submits.ok": 300,
           "verdict.submits.failed": 0, "verdict.submits.indeterminate": 0, "processed": 290,
           "failed": 6, "endToEnd.p99Ms": 123.456, "service.p50Ms": None,
           "fault.killedAt": 150}  # fmt: skip
    seen = Evidence(maps(0), Documents(), [{"t": 1, "processed": 296, "failed": 0}])
    figures = target_figures(row, seen)
    assert figures["lost"] == 4 and figures["endToEnd"] == {"p50Ms": None, "p99Ms": 123.5}
    assert figures["jobsPerSecond"] == 296.0 and figures["killedAt"] == 150
    line = table_row("celery", figures)
    assert list(line)[:5] == ["target", "lost", "duplicated", "executed more than once",
                              "unexpected"]  # fmt: skip
    assert line["submits ok/failed/indeterminate"] == "300/0/0" and line["jobs/s"] == 296.0
    assert line["endToEnd p99 ms"] == 123.5 and line["service p50 ms"] is None
    assert line["killed at"] == 150
