"""docs/PERFORMANCE.md's "What holds now" is made from docs/performance.json: each row names the
commit and date it was measured at, the page holds exactly what the script makes, and `add`
replaces a claim's row in place."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

from tests.docs_pages import ROOT

SCRIPT = ROOT / "scripts" / "performance_table.py"
spec = importlib.util.spec_from_file_location("performance_table", SCRIPT)
assert spec and spec.loader
performance_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(performance_table)


def test_the_page_holds_the_table_the_data_makes() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_row_names_a_commit_and_a_date() -> None:
    data = json.loads(performance_table.DATA.read_text())
    for row in data["rows"]:
        assert re.fullmatch(r"[0-9a-f]{7,40}", row["commit"]), row
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["date"]), row
        known = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-t", row["commit"]],
                               capture_output=True, text=True)  # fmt: skip
        assert known.stdout.strip() == "commit", f"{row['claim']}: no commit {row['commit']}"


def test_a_new_measure_replaces_its_claims_row_in_place() -> None:
    data = json.loads(performance_table.DATA.read_text())
    claim = data["rows"][1]["claim"]
    after = performance_table.add(data, claim, "1 job/s", "lab bench x", "abc1234", "2030-01-01")
    assert [r["claim"] for r in after["rows"]] == [r["claim"] for r in data["rows"]]
    assert after["rows"][1]["figure"] == "1 job/s" and "`abc1234`, 2030-01-01" in (
        performance_table.table(after)
    )
    added = performance_table.add(data, "a new claim", "2", "lab bench y", "abc1234", "2030-01-01")
    assert added["rows"][-1]["claim"] == "a new claim"
