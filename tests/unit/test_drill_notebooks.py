"""Each drill notebook is kept as code: `notebooks/<drill>.py`, a jupytext percent file paired
with `notebooks/<drill>.ipynb` (what papermill runs and JupyterLab opens). The two hold the
same cells, so neither can drift: edit either in JupyterLab with jupytext, or edit the `.py`
and run `jupytext --sync notebooks/<drill>.py`."""

from __future__ import annotations

from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
DRILLS = sorted(p.stem for p in NOTEBOOKS.glob("*.py"))


def cells(path: Path) -> list[tuple[str, str, list[str]]]:
    notebook = jupytext.read(path)
    return [
        (c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in notebook.cells
    ]


def test_every_drill_is_kept_as_code() -> None:
    assert DRILLS == [
        "capacity",
        "cluster",
        "degraded",
        "experiment",
        "hostile",
        "latency",
        "resilience",
        "scaleout",
        "targets",
        "workloads",
    ]


@pytest.mark.parametrize("drill", DRILLS)
def test_the_notebook_holds_the_cells_of_its_code(drill: str) -> None:
    code, notebook = NOTEBOOKS / f"{drill}.py", NOTEBOOKS / f"{drill}.ipynb"
    assert cells(code) == cells(notebook), (
        f"notebooks/{drill}.ipynb and .py differ: run jupytext --sync notebooks/{drill}.py"
    )
    assert any("parameters" in tags for _, _, tags in cells(code)), "papermill needs them"
