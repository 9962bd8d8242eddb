"""The notebooks run headless, top to bottom, against real services (papermill, a real kernel)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.config import Settings, kernel_env
from lab.runtime.stores import Stores

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_notebook(name: str, settings: Settings, out_dir: Path, **parameters: object) -> dict:
    """Execute `notebooks/<name>.ipynb` with papermill; returns the executed notebook."""
    out = out_dir / f"{name}.out.ipynb"
    args = [sys.executable, "-m", "papermill", str(NOTEBOOKS / f"{name}.ipynb"), str(out)]
    for key, value in parameters.items():
        args += ["-y", json.dumps({key: value})]
    done = subprocess.run(
        [*args, "--cwd", str(NOTEBOOKS), "--kernel", "python3", "--no-progress-bar"],
        env=kernel_env(settings),
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())


def outputs(notebook: dict) -> str:
    text = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            text.append("".join(output.get("text", "")))
            text.append("".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(text)


@pytest.mark.slow
def test_control_notebook_runs_all(settings: Settings, stores: Stores, tmp_path: Path) -> None:
    notebook = run_notebook("control", settings, tmp_path, X=300, WORKERS=1, TEAR_DOWN=True)
    shown = outputs(notebook)
    assert "300 jobs processed" in shown and "stopped after" in shown
    assert "medianMs" in shown
    runs = stores.runs.newest()
    assert [r.state for r in runs] == ["stopped", "completed"] and runs[1].processed == 300
    # TEAR_DOWN stopped every process it started.
    assert stores.redis.hlen(stores.keys.processes) == 0
