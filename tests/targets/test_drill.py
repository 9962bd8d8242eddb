"""The targets drill (`lab report targets`): the same seeded run and kill -9 on every target.
It judges that every job is accounted for, not figures a neighbour could move, so it runs beside
the other tests like the rest of `tests/targets/` rather than in the drills' one-at-a-time group
(tests/conftest.py), where it was the longest of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import targets
from lab.config import Settings
from tests.test_reports import lab_report


@pytest.mark.slow
def test_targets_report(settings: Settings, tmp_path: Path) -> None:
    """The same seeded run and kill -9 on every target: each one's row with its verdict (or the
    reason it was skipped), lab's clean; what the others lost is theirs to show, not a failure."""
    x = 300
    ramp = {"type": "ramp", "from": 1200, "to": 6000, "seconds": 5}  # 300 jobs in 5 s
    # Each target is drained after 10 s with no job ending (20 in the full report): arq, whose
    # job timeout is 2 s here, runs a killed worker's jobs again 12 s after it took them, so
    # some may count lost; what is judged here is that every job is accounted for.
    summary = lab_report(settings, tmp_path, "targets", X=x, SHAPE=ramp, KILL_AT=0.5,
                         QUIET_SECONDS=10, ARQ_JOB_TIMEOUT_S=2)  # fmt: skip
    figures, notes = summary["figures"]["targets"], summary["figures"]["notes"]
    for name in targets.names():
        if targets.describe(name)["missing"]:
            assert notes[name].startswith("skipped: ") and name not in figures, notes
            continue
        row = figures[name]
        assert name not in notes and row["killedAt"] is not None, (notes, row)
        verdict = [row[k] for k in ("lost", "duplicated", "executedMoreThanOnce", "unexpected")]
        assert all(isinstance(v, int) for v in verdict), row
        ended = row["processed"] + row["failed"] + row["uncountedEffects"]
        assert ended + row["lost"] + row["indeterminateUnfinished"] == x, row
        assert row["endToEnd"]["p99Ms"] and row["jobsPerSecond"], row
    lab = figures["lab"]
    assert (lab["lost"], lab["duplicated"], lab["processed"] + lab["failed"]) == (0, 0, x)
    assert next(iter(summary["headline"])).startswith("delivery")
