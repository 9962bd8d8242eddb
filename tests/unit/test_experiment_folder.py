"""An experiment's folder is read like a request: `--out` writes only into an empty folder or
this experiment's own, running.json must name exactly a namespace this runner makes (or nothing
is touched), the CSV is data a spreadsheet cannot run, the labels reach Rich and HTML as text,
and lab.measure never imports lab.experiment (the one direction between them)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lab.config import Settings
from lab.experiment import results, running
from lab.experiment.runner import Runner
from lab.experiment.spec import Spec

LAB = Path(__file__).resolve().parents[2] / "lab"
SPEC = Spec.of({"name": "Folder_Test", "repetitions": 1, "run": {"x": 10},
                "factors": {"workers": [1, 2]}})  # fmt: skip
TAG = "0123abcd"
GOOD = {"prefix": f"exp-folder-test-{TAG}", "queue": f"exp-folder-test.{TAG}",
        "index": f"exp-folder-test-{TAG}", "apiUrl": "http://127.0.0.1:8123",
        "faultsPid": None}  # fmt: skip


def ours(folder: Path, **extra: object) -> Path:
    """A folder this experiment started: its manifest names it and the file's hash."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"name": SPEC.name, "digest": SPEC.digest}))
    if extra:
        (folder / "running.json").write_text(json.dumps({**GOOD, **extra}))
    return folder


def refusal(folder: Path, resume: bool = False) -> str:
    with pytest.raises(results.ResultsError) as refused:
        Runner(SPEC, folder, Settings(), resume=resume).check()
    message = str(refused.value)
    assert "\n" not in message and str(folder) in message
    return message


def test_out_is_an_empty_folder_or_this_experiments_own(tmp_path: Path) -> None:
    assert Runner(SPEC, tmp_path / "new", Settings()).check() == set()
    assert Runner(SPEC, tmp_path, Settings()).check() == set()  # empty
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.csv").write_text("mine,not,lab's\n")
    for resume in (False, True):
        assert "not a folder of experiment Folder_Test" in refusal(other, resume)
    assert (other / "results.csv").read_text() == "mine,not,lab's\n"
    (other / "manifest.json").write_text(json.dumps({"name": "another", "digest": SPEC.digest}))
    assert "not a folder of experiment" in refusal(other)
    (other / "manifest.json").write_text("[" * 100_000)  # not JSON lab could write
    assert "manifest.json: not JSON" in refusal(other)
    (tmp_path / "a-file").write_text("x")
    assert "not a folder" in refusal(tmp_path / "a-file")
    mine = ours(tmp_path / "mine")
    assert Runner(SPEC, mine, Settings()).check() == set()
    (mine / "manifest.json").write_text(json.dumps({"name": SPEC.name, "digest": "0" * 64}))
    assert "another version of this file" in refusal(mine)


def test_running_json_is_acted_on_only_under_resume_and_only_as_the_runner_writes_it(
    tmp_path: Path,
) -> None:
    folder = ours(tmp_path / "x", faultsPid=None)
    assert "--resume" in refusal(folder)  # an interrupted trial is never ignored, nor cleaned
    assert Runner(SPEC, folder, Settings(), resume=True).check() == set()
    read = running.read(folder, SPEC.name)
    assert read is not None and read.prefix == GOOD["prefix"] and read.faults_pid is None
    hostile = [
        ({"prefix": "*"}, "prefix: '*' is not a namespace of this experiment"),
        ({"prefix": f"exp-other-{TAG}"}, "prefix:"),
        ({"prefix": f"exp-folder-test-{TAG}x"}, "prefix:"),
        ({"prefix": "exp-folder-test-٠١٢٣abcd"}, "prefix:"),  # digits are ASCII digits
        ({"queue": "lab.jobs"}, "queue:"),
        ({"index": "*"}, "index:"),
        ({"apiUrl": "http://10.0.0.1:80"}, "apiUrl:"),
        ({"apiUrl": "http://127.0.0.1:99999"}, "apiUrl:"),
        ({"faultsPid": "1"}, "faultsPid:"),
        ({"faultsPid": True}, "faultsPid:"),
        ({"faultsPid": -1}, "faultsPid:"),
        ({"faultsPid": 0}, "faultsPid:"),
        ({"faultsPid": 2**40}, "faultsPid:"),
        ({"faultsUrl": "http://evil:1"}, "faultsUrl:"),
        ({"faultsStartedAt": 1.5}, "faultsStartedAt:"),
        ({"extra": 1}, "'extra' is not a field"),
    ]
    for change, problem in hostile:
        (folder / "running.json").write_text(json.dumps({**GOOD, **change}))
        message = refusal(folder, resume=True)
        assert f"running.json: {problem}" in message and "nothing was stopped" in message
    for text, problem in (("[" * 50_000, "not JSON"), ("[]", "not a JSON object"),
                          ("1" * 70_000, "larger than")):  # fmt: skip
        (folder / "running.json").write_text(text)
        assert problem in refusal(folder, resume=True)


def test_the_namespace_a_trial_gets_is_the_one_form_running_json_may_name(tmp_path: Path) -> None:
    from lab.experiment.plan import trials
    from lab.experiment.trial import namespace

    trial = namespace(Settings(), SPEC, trials(SPEC)[0])  # what the runner records, as it does
    (tmp_path / "running.json").write_text(json.dumps(running.record(trial, None)))
    read = running.read(tmp_path, SPEC.name)
    assert read is not None and (read.prefix, read.queue) == (trial.prefix, trial.queue)
    assert trial.prefix.startswith("exp-folder-test-") and trial.es_index == trial.prefix


def test_a_pid_is_signalled_only_if_proc_shows_the_trials_own_fault_proxy() -> None:
    me = running.Running(GOOD["prefix"], GOOD["queue"], GOOD["index"], GOOD["apiUrl"],
                         os.getpid(), "http://127.0.0.1:8474",
                         running.start_ticks(os.getpid()))  # fmt: skip
    assert not running.stop_fault_proxy(me)  # pytest is not `lab fault serve`: left alone
    older = running.Running(GOOD["prefix"], GOOD["queue"], GOOD["index"], GOOD["apiUrl"], 1)
    assert not running.stop_fault_proxy(older)  # no port nor start time: nothing proves it


def test_cells_a_spreadsheet_would_run_are_written_as_text_and_read_back_exactly(
    tmp_path: Path,
) -> None:
    levels = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tz", "\rz", "'q", "plain"]
    for i, level in enumerate(levels):
        results.append(tmp_path, {"trial": f"t{i}", "note": level, "value": -i})
    raw = (tmp_path / "results.csv").read_text()
    cells = [line.split(",", 2)[1] for line in raw.splitlines()[1:] if line.startswith("t")]
    assert all(cell.lstrip('"').startswith("'") for cell in cells[:7]), cells
    frame = results.load(tmp_path)
    assert list(frame["note"]) == levels and list(frame["value"]) == [-i for i in range(8)]
    assert list(pd.read_parquet(tmp_path / "results.parquet")["note"]) == levels
    (tmp_path / "results.csv").write_bytes(b"trial\n\xff\xfe")
    with pytest.raises(results.ResultsError, match="results.csv: not results lab can read"):
        results.done_ids(tmp_path)


def test_labels_and_levels_reach_the_terminal_and_html_as_text(tmp_path: Path) -> None:
    file = tmp_path / "markup.toml"
    file.write_text('name = "m"\n[run]\nx = 10\n[factors]\n"payload.note" = ["[/]", "[red]x"]\n')
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "lab", "experiment", "run", str(file),
                           "--dry-run"], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[/]" in done.stdout and "[red]x" in done.stdout

    from lab.experiment.runner import Progress
    from lab.experiment.view import Experiment

    view = Experiment(Spec.of({"name": "v", "run": {"x": 1}}), tmp_path / "v", Settings())
    view._show(Progress(0, 2, "payload.note=<img src=x onerror=alert(1)>", 5.0))
    assert "<img" not in view.label.value and "&lt;img" in view.label.value


def imports(path: Path) -> set[str]:
    """Every lab module `path` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name.startswith("lab.")}


def test_lab_measure_never_imports_lab_experiment() -> None:
    backwards = {f"{p.relative_to(LAB.parent)} imports {name}"
                 for p in (LAB / "measure").rglob("*.py") for name in imports(p)
                 if name.startswith("lab.experiment")}  # fmt: skip
    assert not backwards, sorted(backwards)
    forwards = {name for p in (LAB / "experiment").rglob("*.py") for name in imports(p)}
    assert any(name.startswith("lab.measure") for name in forwards)  # the one direction
