"""An experiment's folder: `results.csv` (one row per trial, appended and flushed as each
trial ends, so a kill loses at most the trial running), `results.parquet` (the same rows,
rewritten after each), `manifest.json` (the file's hash, the plan, provenance) and `running.json`
(the trial in progress: its namespace, to clean up after a kill; lab.experiment.running). `load`
returns the rows as a pandas DataFrame.

A cell is data: text starting with `=`, `+`, `-`, `@`, a tab or a carriage return (what a
spreadsheet reads as a formula), or with `'`, is written with a `'` in front, and `load` takes it
off again, so results.parquet and the DataFrame hold the levels exactly."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

CSV, PARQUET, MANIFEST, RUNNING = "results.csv", "results.parquet", "manifest.json", "running.json"
FORMULA = ("=", "+", "-", "@", "\t", "\r", "'")
MAX_MANIFEST_BYTES = 64 * 1024 * 1024


class ResultsError(RuntimeError):
    """The folder holds another experiment, or rows the file cannot resume."""


def done_ids(folder: Path) -> set[str]:
    path = folder / CSV
    if not path.is_file():
        return set()
    return {row["trial"] for row in _rows(path)[1] if isinstance(row.get("trial"), str)}


def _rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The header and rows of results.csv as written (cells still escaped)."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = [{k: v for k, v in row.items() if k is not None} for row in reader]
            return list(reader.fieldnames or []), [row for row in rows if row.get("trial")]
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not results lab can read ({exc})"[:300]) from None


def append(folder: Path, row: dict[str, Any]) -> None:
    """Add a trial's row; the header is the first row's keys plus any new ones (rewritten)."""
    path = folder / CSV
    flat = {k: _cell(v) for k, v in row.items()}
    rows: list[dict[str, Any]] = []
    header: list[str] = []
    if path.is_file():
        header, rows = _rows(path)
    new = [k for k in flat if k not in header]
    if new or not path.is_file():
        header += new
        temporary = path.with_suffix(".tmp")
        with temporary.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, header)
            writer.writeheader()
            writer.writerows([*rows, flat])
            f.flush()
            os.fsync(f.fileno())
        temporary.replace(path)
    else:
        with path.open("a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, header).writerow(flat)
            f.flush()
            os.fsync(f.fileno())
    write_parquet(folder)


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA) else value


def _uncell(value: Any) -> Any:
    return value[1:] if isinstance(value, str) and value.startswith("'") else value


def load(folder: str | Path) -> Any:
    """The experiment's rows as a tidy pandas DataFrame (one row per trial)."""
    import pandas as pd

    path = Path(folder) / CSV
    if not path.is_file():
        raise ResultsError(f"{path} does not exist: no trial has ended in {folder}")
    frame = pd.read_csv(path)
    for column in frame.select_dtypes(include="object").columns:
        frame[column] = frame[column].map(_uncell)
    return frame


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


def read_object(path: Path, limit: int = MAX_MANIFEST_BYTES) -> dict[str, Any] | None:
    """The JSON object in `path` (at most `limit` bytes), None if there is no such file;
    `ResultsError` naming the file for anything else: the folder may hold anything."""
    if not path.exists() and not path.is_symlink():
        return None
    if not path.is_file():
        raise ResultsError(f"{path}: not a file lab wrote")
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except OSError as exc:
        raise ResultsError(f"{path}: cannot be read ({exc.strerror})") from None
    if len(raw) > limit:
        raise ResultsError(f"{path}: larger than {limit:,} bytes, not a file lab wrote")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ResultsError(f"{path}: not JSON, not a file lab wrote") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: not a JSON object, not a file lab wrote")
    return data
