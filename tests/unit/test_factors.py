"""Experiment factors are one class each: a factor registered here, inside the test, is read by
the spec parser, checked by its own level field, applied to the plan's trials and listed in the
docs' table; the guide's worked example runs as written; a process setting's levels are the
ones `Settings` declares; and a level never changes the file's `[run]`."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import config
from lab.experiment import factors
from lab.experiment.factors import FACTORS, Factor, RunField, Setting, level_field
from lab.experiment.plan import estimate_s, trials
from lab.experiment.spec import Spec, SpecError
from lab.runtime.fields import FieldError

ROOT = Path(__file__).resolve().parents[2]
BASE = {"name": "t", "repetitions": 2, "run": {"x": 100}}


@pytest.fixture
def own_factors() -> Iterator[None]:
    """Factors for this test only: every factor a class statement registers meanwhile goes
    after it."""
    with FACTORS.restored():
        yield


def test_a_factor_registered_in_a_test_runs_through_the_parser_and_a_plan(own_factors) -> None:
    class AbortOnBreach(RunField, type="abortOnBreach"):
        help = "whether the run stops at its first breached objective"
        level = level_field("boolean", "stop at a breach")

    spec = Spec.of({**BASE, "factors": {"abortOnBreach": [False, True], "workers": [1, 2]}})
    plan = trials(spec)
    assert len(plan) == 8 and estimate_s(spec) > 0
    bodies = {t.label: spec.body(t.levels) for t in plan}
    assert bodies["abortOnBreach=True, workers=2"] == {"x": 100, "seed": 0, "abortOnBreach": True}
    assert spec.setup({"abortOnBreach": False, "workers": 2}).workers == 2
    # Its own field checks its levels; it may be given in [run] as a run field; it lists itself.
    with pytest.raises(SpecError, match=r"^factors.abortOnBreach\[1\]: must be a boolean"):
        Spec.of({**BASE, "factors": {"abortOnBreach": [True, "yes"]}})
    run = Spec.of({**BASE, "run": {"x": 5, "abortOnBreach": True}})
    assert run.body({})["abortOnBreach"] is True
    with pytest.raises(SpecError, match="^factors.abortOnBreach: the throughput procedure"):
        Spec.of({**BASE, "procedure": "throughput", "factors": {"abortOnBreach": [True]}})
    assert "abortOnBreach" in FACTORS.names and "`abortOnBreach` | `level` boolean" in (
        FACTORS.table()
    )


def test_a_condition_is_a_factor_that_applies_to_the_setup(own_factors) -> None:
    class Repeat(Factor, type="faultRepeat"):
        help = "a fault preset, spelt another way (a family: `faultRepeat.<anything>`)"
        family = "faultRepeat."
        level = level_field("string", "a preset", choices=("none", "es-slow"))

        @classmethod
        def check_name(cls, name: str, where: str) -> None:
            if not re.fullmatch(r"faultRepeat\.[a-z]{1,8}", name):
                raise FieldError(where, "faultRepeat.<letters>")

        @classmethod
        def apply(cls, name: str, value: Any, setup: factors.Setup) -> None:
            setup.fault = value

    spec = Spec.of({**BASE, "factors": {"faultRepeat.a": ["none", "es-slow"]}})
    assert [spec.setup(c).fault for c in spec.configurations] == ["none", "es-slow"]
    with pytest.raises(SpecError, match=r"^factors.faultRepeat.1: faultRepeat.<letters>"):
        Spec.of({**BASE, "factors": {"faultRepeat.1": ["none"]}})


def guide_block(containing: str, language: str = "python") -> str:
    text = (ROOT / "docs" / "guides" / "extending.md").read_text()
    blocks = re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)
    (block,) = [b for b in blocks if containing in b]
    return block


def test_the_guides_worked_example_runs_as_written(own_factors, monkeypatch) -> None:
    # `own_factors`: the guide's factor is registered for this test only.
    # The guide's first step: the setting's range on `Settings` (here, for this test only).
    declared = re.search(r"bounded\((\d+), (\d+), ([\d_]+)\)", guide_block("publish_window: int"))
    assert declared is not None
    monkeypatch.setitem(config.RANGES, "publish_window", (int(declared[2]), int(declared[3])))
    FACTORS.kinds.pop("publishWindow", None)  # in case factors.py has it, as the guide says
    exec(guide_block('setting_factor("publishWindow"'), dict(vars(factors)))  # registers it
    # Its class written out is the same factor, registered in its place.
    made = FACTORS.kinds.pop("publishWindow")
    exec(guide_block("class PublishWindow"), dict(vars(factors)))
    spelt = FACTORS.kinds["publishWindow"]
    for part in ("type", "setting", "help", "level"):
        assert getattr(spelt, part) == getattr(made, part), part
    levels = re.search(r"publishWindow = (\[.*\])", guide_block("[factors]", "toml"))
    assert levels is not None
    spec = Spec.of({**BASE, "factors": {"publishWindow": eval(levels[1])}})
    assert [spec.setup(c).settings for c in spec.configurations] == [
        {"publish_window": 500}, {"publish_window": 2000}, {"publish_window": 8000}]  # fmt: skip
    said = "factors.publishWindow[1]: LAB_PUBLISH_WINDOW='200000' must be from 1 to 100000, "
    with pytest.raises(SpecError) as refused:
        Spec.of({**BASE, "factors": {"publishWindow": [500, 200000]}})
    assert str(refused.value).startswith(said)
    assert said.rstrip(", ") in " ".join((ROOT / "docs/guides/extending.md").read_text().split())
    assert "| `publishWindow` | `level` from 1 to 100,000 |" in FACTORS.table()
    test: dict[str, Any] = {"Spec": Spec}
    exec(guide_block("def test_publish_window_levels"), test)
    test["test_publish_window_levels"]()
    # A setting that declares neither a range nor choices cannot be a factor.
    with pytest.raises(ValueError, match="declare its range"):
        factors.setting_level("heartbeat_s", "seconds")


def test_the_docs_table_is_the_registrys() -> None:
    docs = (ROOT / "docs" / "EXPERIMENTS.md").read_text()
    shown = docs.split("<!-- factors: generated from")[1].split("\n", 1)[1].split("<!-- /")[0]
    assert shown.strip() == FACTORS.table(), "paste FACTORS.table():\n" + FACTORS.table()


@pytest.mark.parametrize("cls", [c for c in FACTORS if issubclass(c, Setting)])
def test_a_process_settings_levels_are_the_ones_settings_declares(cls: type[Setting]) -> None:
    level = cls.level
    if level.type == "integer":
        assert (level.low, level.high) == config.RANGES[cls.setting]
        tried: list[Any] = [int(level.low or 0) + d for d in (-1, 0, 1)]
        tried += [int(level.high or 0) + d for d in (-1, 0, 1)]
    else:
        assert level.choices == config.CHOICES[cls.setting]
        tried = [*level.choices, "other", ""]
    for value in tried:  # the field (the docs' bounds) and the processes agree on every level
        try:
            config.load({f"LAB_{cls.setting.upper()}": str(value)})
            processes = value != ""  # an empty variable is no setting at all
        except config.ConfigError:
            processes = False
        try:
            level.read(value, "level")
            field = True
        except FieldError:
            field = False
        assert field == processes, (cls.type, value)


def test_a_level_never_changes_the_files_run_and_is_json() -> None:
    run = {"x": 5, "shape": "constant:600", "payload": {"serviceMs": {"dist": "constant"}}}
    spec = Spec.of({**BASE, "run": run, "factors": {"payload.serviceMs.value": [10, 20]}})
    bodies = [spec.body(c) for c in spec.configurations]
    assert [b["payload"]["serviceMs"] for b in bodies] == [
        {"dist": "constant", "value": 10}, {"dist": "constant", "value": 20}]  # fmt: skip
    assert bodies[0]["shape"] == {"type": "constant", "y": 600}
    assert spec.run == run  # the manifest records the file's [run], not the last trial's
    when = datetime.datetime(1979, 5, 27, 7, 32)
    with pytest.raises(SpecError, match=r"^factors.payload.a\[0\]: a JSON value"):
        Spec.of({**BASE, "factors": {"payload.a": [when]}})
    with pytest.raises(SpecError, match="^run.payload: a JSON value"):
        Spec.of({**BASE, "run": {"x": 5, "payload": {"at": when}}})
    text = b'name = "t"\n[run]\nx = 5\n[factors]\n"payload.a" = [1979-05-27T07:32:00Z]\n'
    with pytest.raises(SpecError, match=r"^factors.payload.a\[0\]: a JSON value"):
        Spec.from_bytes(text)  # it once passed, and crashed the plan (`--dry-run`)
