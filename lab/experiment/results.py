"""An experiment's folder: `results.csv` (one row per trial, appended and flushed as each
trial ends, so a kill loses at most the trial running), `results.parquet` (the same rows,
rewritten after each), `manifest.json` (the file's hash, the plan, provenance) and `running.json`
(the trial in progress: its namespace, to clean up after a kill). `load` returns the rows as a
pandas DataFrame."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

CSV, PARQUET, MANIFEST, RUNNING = "results.csv", "results.parquet", "manifest.json", "running.json"


class ResultsError(RuntimeError):
    """The folder holds another experiment, or rows the file cannot resume."""


def done_ids(folder: Path) -> set[str]:
    path = folder / CSV
    if not path.is_file():
        return set()
    with path.open(newline="") as f:
        return {row["trial"] for row in csv.DictReader(f) if row.get("trial")}


def append(folder: Path, row: dict[str, Any]) -> None:
    """Add a trial's row; the header is the first row's keys plus any new ones (rewritten)."""
    path = folder / CSV
    flat = {k: _cell(v) for k, v in row.items()}
    rows: list[dict[str, Any]] = []
    header: list[str] = []
    if path.is_file():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    new = [k for k in flat if k not in header]
    if new or not path.is_file():
        header += new
        temporary = path.with_suffix(".tmp")
        with temporary.open("w", newline="") as f:
            writer = csv.DictWriter(f, header)
            writer.writeheader()
            writer.writerows([*rows, flat])
            f.flush()
            os.fsync(f.fileno())
        temporary.replace(path)
    else:
        with path.open("a", newline="") as f:
            csv.DictWriter(f, header).writerow(flat)
            f.flush()
            os.fsync(f.fileno())
    write_parquet(folder)


def _cell(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def load(folder: str | Path) -> Any:
    """The experiment's rows as a tidy pandas DataFrame (one row per trial)."""
    import pandas as pd

    path = Path(folder) / CSV
    if not path.is_file():
        raise ResultsError(f"{path} does not exist: no trial has ended in {folder}")
    return pd.read_csv(path)


def write_parquet(folder: Path) -> Path | None:
    """`results.parquet` from `results.csv`; None without pyarrow (`.[experiment]`)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return None
    frame = load(folder)
    path = folder / PARQUET
    frame.to_parquet(path.with_suffix(".parquet.tmp"), index=False)
    path.with_suffix(".parquet.tmp").replace(path)
    return path


def write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2, default=str))
    temporary.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
