"""The report logic that needs no service: naming figures, tolerances and verdicts, the spread of
several baselines, folding process noise, and an index that passes over what is not a report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from lab.measure import figures
from lab.measure.figures import FIGURES
from lab.measure.reports.compare import CompareError, compare, flatten, load, rule_for
from lab.measure.reports.index import Entry, rows, summaries, write_index
from lab.measure.reports.page import fold_noise, summary_html


def entry(tmp_path: Path, stamp: str, figures: dict, passed: bool = True) -> Entry:
    summary = {"report": "resilience", "startedAt": stamp, "figures": figures, "passed": passed}
    path = tmp_path / f"resilience-{stamp}.json"
    path.write_text(json.dumps(summary))
    return Entry(path, summary)


def verdicts(table) -> dict[str, str]:
    return dict(zip(table["figure"], table["verdict"], strict=True))


def test_list_items_are_named_by_what_they_are() -> None:
    figures = {
        "faults": [{"fault": "restart the API", "recoverySeconds": 1.5}],
        "steps": [{"offeredPerSecond": 500, "p95Ms": 4}],
        "perWorker": [10, 12],
        "samples": list(range(100)),  # a series, not a figure
        "runId": "abc",
        "ok": True,
    }
    assert flatten(figures) == {
        "faults[restart the API].recoverySeconds": 1.5,
        "steps[500].offeredPerSecond": 500.0,
        "steps[500].p95Ms": 4.0,
        "perWorker[0]": 10.0,
        "perWorker[1]": 12.0,
        "ok": 1.0,
    }


def test_each_figure_is_judged_in_its_own_direction_and_tolerance(tmp_path: Path) -> None:
    def figures(lost: int, recovery: float, whole: int, x: int, p95: int) -> dict:
        return {"lost": lost, "faults": [{"fault": "kill", "recoverySeconds": recovery}],
                "throughput": {"whole": whole}, "x": x, "status": {"p95Ms": p95}}  # fmt: skip

    before = entry(tmp_path, "1", figures(0, 1.0, 1000, 100, 5))
    after = entry(tmp_path, "2", figures(1, 2.5, 1300, 200, 40))
    result = compare([before], after)
    assert verdicts(result.table) == {
        "lost": "regressed",  # exact: one lost job is a regression
        "faults[kill].recoverySeconds": "cannot tell",  # noisy: one baseline shows no spread
        "throughput.whole": "cannot tell",
        "x": "changed",  # a parameter: no direction
        "status.p95Ms": "cannot tell",
        "passed": "same",
    }
    assert result.regressed and list(result.regressions["figure"]) == ["lost"]
    assert len(result.undecided) == 3
    assert rule_for("lost").stated() == "exact" and rule_for("x").stated() == "none stated"
    # Two runs of the same code a minute apart (the scale-out speed-up went 1.13 → 0.61): with
    # one baseline that is not called a regression any more.
    one, two = entry(tmp_path, "3", {"speedup": 1.13}), entry(tmp_path, "4", {"speedup": 0.61})
    speedup = compare([one], two)
    assert verdicts(speedup.table)["speedup"] == "cannot tell" and not speedup.regressed


def test_the_spread_of_several_baselines_counts_as_noise(tmp_path: Path) -> None:
    baselines = [entry(tmp_path, str(i), {"throughput": {"whole": v}}) for i, v in
                 enumerate([1000, 1400, 1200])]  # fmt: skip
    slower = entry(tmp_path, "9", {"throughput": {"whole": 820}})
    # Mean 1,200, sd 200 over 3 runs: a new run lands within ±4.30 × 200 × √(4/3) ≈ 993 of it.
    assert verdicts(compare(baselines, slower).table)["throughput.whole"] == "same"
    far = entry(tmp_path, "10", {"throughput": {"whole": 100}})
    assert verdicts(compare(baselines, far).table)["throughput.whole"] == "regressed"
    tight = [entry(tmp_path, f"t{i}", {"throughput": {"whole": v}}) for i, v in
             enumerate([1000, 1010, 990, 1005, 995])]  # fmt: skip
    assert verdicts(compare(tight, slower).table)["throughput.whole"] == "regressed"
    assert verdicts(compare(baselines[-1:], slower).table)["throughput.whole"] == "cannot tell"


def test_a_figure_is_judged_by_its_declaration_never_by_its_name(tmp_path: Path) -> None:
    # `fooPerSecond` reads like a rate, but nothing declares it: no direction, and said so.
    # `offeredPerSecond` is declared, as a parameter of a load step (the name once made it a
    # throughput, higher is better).
    before = entry(tmp_path, "1", {"fooPerSecond": 100, "steps": [{"offeredPerSecond": 500}],
                                   "drainedPerSecond": 100})  # fmt: skip
    after = entry(tmp_path, "2", {"fooPerSecond": 10, "steps": [{"offeredPerSecond": 900}],
                                  "drainedPerSecond": 10})  # fmt: skip
    table = compare([before, before], after).table.set_index("figure")
    assert table.loc["fooPerSecond", "verdict"] == "changed"
    assert table.loc["fooPerSecond", "tolerance"] == "none stated (undeclared)"
    assert table.loc["steps[900].offeredPerSecond", "tolerance"] == "none stated"
    assert table.loc["drainedPerSecond", "verdict"] == "regressed"  # declared: higher, noisy
    assert rule_for("jobTime[run].endToEnd.p99Ms").better == "lower"
    assert rule_for("throughput.whole").better == "higher" and rule_for("whole").better is None
    assert rule_for("steps[50].cpu.byProcess.worker-1").type == "byProcess.*"


def test_the_guides_figure_is_one_line_and_the_docs_table_is_the_registrys() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    guide = (docs / "guides" / "extending.md").read_text()
    (line,) = [b for b in re.findall(r"^```python\n(.*?)^```", guide, re.M | re.S)
               if b.startswith("figure(")]  # fmt: skip
    try:
        exec(line, vars(figures))
        assert rule_for("drills[a].drainSeconds").stated() == "±25% or ±2 s"
    finally:
        del FIGURES.kinds["drainSeconds"]
    assert rule_for("drainSeconds").declared is False
    docs = (docs / "REPORTS.md").read_text()
    shown = docs.split("<!-- figures: generated from")[1].split("\n", 1)[1].split("<!-- /")[0]
    assert shown.strip() == FIGURES.table(), "paste FIGURES.table():\n" + FIGURES.table()


def test_a_failed_run_is_a_regression_and_missing_figures_are_named(tmp_path: Path) -> None:
    before = entry(tmp_path, "1", {"a": 1})
    after = entry(tmp_path, "2", {"b": 1}, passed=False)
    table = verdicts(compare([before], after).table)
    assert table == {"a": "only before", "b": "only after", "passed": "regressed"}


def test_runs_of_different_drills_or_no_summary_are_refused(tmp_path: Path) -> None:
    other = Entry(tmp_path / "x.json", {"report": "latency", "figures": {}})
    with pytest.raises(CompareError, match="different drills"):
        compare([entry(tmp_path, "1", {})], other)
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(CompareError, match="not a lab report summary"):
        load(tmp_path / "junk.json")
    with pytest.raises(CompareError, match="no report summary"):
        load(tmp_path / "missing.html")


def test_the_index_lists_reports_newest_first_and_skips_the_rest(tmp_path: Path) -> None:
    entry(tmp_path, "2026-01-01T00:00:00", {})
    entry(tmp_path, "2026-02-01T00:00:00", {}, passed=False)
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "other.json").write_text('{"not": "a report"}')
    assert [e.started for e in summaries(tmp_path)] == ["2026-01-01T00:00:00",
                                                       "2026-02-01T00:00:00"]  # fmt: skip
    assert [r["verdict"] for r in rows(tmp_path)] == ["FAILED", "passed"]
    page = write_index(tmp_path).read_text()
    assert page.count("<tr><td>") == 2 and "badge fail" in page


def test_process_noise_is_folded_not_deleted() -> None:
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="t=2s kill -9 worker-1\n"),
        nbformat.v4.new_output("stream", name="stderr", text="lab: worker-1 exited <-9>\nagain\n"),
    ]
    notebook.cells = [cell]
    folded = fold_noise(notebook).cells[0].outputs
    assert folded[0] == cell.outputs[0]
    html = folded[1]["data"]["text/html"]
    assert "<details" in html and "2 lines" in html and "exited &lt;-9&gt;" in html
    assert notebook.cells[0].outputs[1]["output_type"] == "stream"  # the original is untouched


def test_the_summary_escapes_what_the_notebook_wrote() -> None:
    page = summary_html(
        {"report": "hostile", "passed": False, "headline": {"<b>": "<script>"},
         "verdicts": [{"check": "<i>", "passed": False, "expected": 0, "observed": 1}]}
    )  # fmt: skip
    assert "<script>" not in page and "&lt;script&gt;" in page and "FAILED: 0 of 1" in page
