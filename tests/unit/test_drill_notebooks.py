"""The drill notebooks in the tree are exactly what `scripts/make_drill_notebooks.py` makes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_regenerating_the_drill_notebooks_changes_nothing(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make", ROOT / "scripts" / "make_drill_notebooks.py"
    )
    assert spec and spec.loader
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    make.main(tmp_path)
    assert set(make.DRILLS)
    for name in make.DRILLS:
        fresh = (tmp_path / f"{name}.ipynb").read_text()
        committed = (ROOT / "notebooks" / f"{name}.ipynb").read_text()
        assert fresh == committed, (
            f"notebooks/{name}.ipynb is stale: run scripts/make_drill_notebooks.py"
        )
