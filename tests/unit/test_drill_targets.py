"""A drill run against another framework's workers (`-p TARGET NAME`): a name lab does not know is
refused before the drill starts, in one line naming the targets; the drill judges that target's
delivery verdict by its own accounting and against the documents, not by lab's exactly-once."""

from __future__ import annotations

from typing import Any

import pytest

from lab.measure import delivery
from lab.measure.drill import Verdicts
from lab.measure.reports.run import ReportError, check_parameters
from lab.targets import TargetError


@pytest.mark.parametrize("drill", ["resilience", "degraded", "scaleout"])
def test_a_bad_target_is_refused_at_once_naming_the_targets(drill: str) -> None:
    with pytest.raises(ReportError) as refused:
        check_parameters(drill, {"TARGET": "kafka"})
    message = str(refused.value)
    assert message == (f"{drill}: TARGET 'kafka': must be one of lab, celery, dramatiq, rq, arq, "
                       "bullmq")  # fmt: skip
    check_parameters(drill, {"TARGET": "lab", "WORKERS" if drill != "scaleout" else "RESULTS": 1})


def test_a_target_s_broker_is_the_service_that_carries_its_jobs() -> None:
    assert [delivery.broker(n) for n in ("lab", "celery", "dramatiq", "rq", "arq", "bullmq")] == [
        "rabbitmq", "rabbitmq", "rabbitmq", "redis", "redis", "redis"
    ]  # fmt: skip
    assert delivery.worker_args("lab") == [] and delivery.worker_args("rq") == ["--target", "rq"]
    with pytest.raises(TargetError, match="must be one of"):
        delivery.check(3)


def verdict(**changes: Any) -> dict[str, Any]:
    found = {"processed": 90, "failed": 2, "lost": 5, "duplicated": 0, "executedMoreThanOnce": 4,
             "unexpected": 0, "uncountedEffects": 2, "clean": False,
             "indeterminate": {"total": 1, "ended": 0, "unfinished": 1},
             "submits": {"ok": 99, "failed": 0, "indeterminate": 1}}  # fmt: skip
    return {**found, **changes}


def checks(found: dict[str, Any], documents: int, distinct: int, clean: bool = False) -> dict:
    verdicts = Verdicts()
    delivery.judge(verdicts, found, 100, documents, distinct, label="x: ", clean=clean)
    return {row["check"]: row["passed"] for row in verdicts.rows}


def test_a_lossy_run_passes_when_its_verdict_accounts_for_every_job_and_matches_the_documents() -> (
    None
):
    # 90 done + 2 failed + 5 lost + 2 uncounted effects + 1 unfinished indeterminate = 100 jobs;
    # documents: the 90 done and the 2 uncounted, and perhaps the failed ones'.
    assert checks(verdict(), documents=92, distinct=92) == {
        "x: every job accounted for": True,
        "x: the verdict agrees with Elasticsearch": True,
    }
    assert checks(verdict(), 94, 94)["x: the verdict agrees with Elasticsearch"]
    # A document the verdict cannot explain, a job it does not account for, one written twice
    # under two documents, a job that ended and was never released: each fails.
    assert not checks(verdict(), 95, 95)["x: the verdict agrees with Elasticsearch"]
    assert not checks(verdict(), 91, 91)["x: the verdict agrees with Elasticsearch"]
    assert not checks(verdict(lost=4), 92, 92)["x: every job accounted for"]
    assert not checks(verdict(), 93, 92)["x: the verdict agrees with Elasticsearch"]
    assert not checks(verdict(unexpected=1), 92, 92)["x: every job accounted for"]


def test_a_run_no_fault_hit_must_also_be_clean() -> None:
    lossy = checks(verdict(), 92, 92, clean=True)
    assert lossy["x: nothing lost, duplicated or unexpected"] is False
    whole = verdict(processed=100, failed=0, lost=0, uncountedEffects=0, clean=True,
                    indeterminate={"total": 0, "ended": 0, "unfinished": 0})  # fmt: skip
    assert all(checks(whole, 100, 100, clean=True).values())


def test_a_results_row_gives_back_the_verdict_it_was_flattened_from() -> None:
    found = verdict()
    row = {"processed": 90, "failed": 2, **delivery.flat(found)}
    again = delivery.of_row(row)
    assert delivery.accounted(again) == delivery.accounted(found) == 100
    assert again["submits"] == found["submits"] and again["lost"] == 5
    assert delivery.summary(again) == delivery.summary(found)
