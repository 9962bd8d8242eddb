"""`lab report` answers bad input with one line that names the problem and exit code 2, before
it starts anything. Apart from tests/test_reports.py: nothing here runs a drill, so it need not
wait its turn in the drills' group."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.config import Settings

from .helpers import run_lab


@pytest.mark.slow
def test_bad_report_input_is_named(settings: Settings, tmp_path: Path) -> None:
    for args, message in [
        (["report", "nosuch"], "invalid choice: 'nosuch'"),
        (["report", "latency", "-p", "not-a-name", "1"], "not a Python name"),
        (["report", "latency", "-p", "STEP_SECOND", "1"], "did you mean STEP_SECONDS?"),
        (["report", "run", "latency", "-p", "TYPO", "1"], "latency has no parameter 'TYPO'"),
        (
            ["report", "resilience", "-p", "TARGET", "kafka"],
            "resilience: TARGET 'kafka': must be one of lab, celery, dramatiq, rq, arq, bullmq",
        ),
        (["report", "compare", "only-one.json"], "compare needs two summaries"),
        (["report", "compare", "a.json", "b.json"], "no report summary at a.json"),
        (["report", "compare", "--last", "2", "nosuch"], "no report 'nosuch'"),
        (["report", "compare", "--last", "3", "latency", "--out", str(tmp_path)], "holds 0"),
        (["report", "list", "--out", str(tmp_path / "none")], "no reports folder"),
        (["loadtest", "--max-fail-ratio", "2"], "--max-fail-ratio must be from 0 to 1"),
    ]:
        done = run_lab(*args, env={**os.environ, **settings.as_env()}, timeout=60)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
