"""The guides' examples, run as the guides show them: the job kind of guides/job-kind.md loaded
the way the worker loads a kind, and the drill of guides/drill.md executed against real services
(the cells of a percent-format notebook are plain Python, run here as papermill would, with its
parameters injected)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from lab.config import Settings
from lab.runtime import handlers
from lab.runtime.messages import Job
from lab.runtime.payload import PayloadError, PermanentError

ROOT = Path(__file__).resolve().parents[1]


def python_block(guide: str) -> str:
    text = (ROOT / "docs" / "guides" / guide).read_text()
    (block,) = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    return block


def test_the_job_kind_guide_kind_behaves_as_the_guide_says() -> None:
    module = types.ModuleType("workers.resize")
    exec(compile(python_block("job-kind.md"), "workers/resize.py", "exec"), module.__dict__)
    handler = handlers.from_module("resize", module)
    described = handler.describe()
    assert not described["batchable"] and described["attempts"] == 5
    assert [f["name"] for f in described["fields"]] == ["url", "width"]
    handler.check({"url": "https://example.com/a.png", "width": 640})
    with pytest.raises(PayloadError, match="payload.url"):
        handler.check({"url": "http://example.com/a.png"})
    with pytest.raises(PayloadError, match="payload.width"):
        handler.check({"url": "https://example.com/a.png", "width": 5})
    job = Job(
        "j-1", None, None, "resize", payload={"url": "https://example.com/a.png", "width": 640}
    )
    assert handler(job) == {"width": 640}
    with pytest.raises(PermanentError):
        handler(Job("j-2", None, None, "resize", payload={"url": "https://example.com/a.svg"}))


def test_the_drill_guide_drill_runs_and_passes(settings: Settings, tmp_path: Path) -> None:
    source = python_block("drill.md")
    injected = "JOBS = 300\nWORKERS = 1\n" + f"SUMMARY_PATH = {str(tmp_path / 's.json')!r}\n"
    cells = source.split("# %%\n", 1)
    drill = tmp_path / "smallest.py"
    drill.write_text(cells[0] + injected + "# %%\n" + cells[1])
    done = subprocess.run(
        [sys.executable, str(drill)], cwd=ROOT / "notebooks", capture_output=True, text=True,
        timeout=300, env={**os.environ, **settings.as_env()}, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["passed"] and summary["figures"]["distinct"] == 300, summary
