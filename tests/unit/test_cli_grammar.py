"""The CLI's shape, read from the parser itself: one grammar (noun, then verb), every command
described, every argument with help, the short forms kept, and the references in docs/reference
generated from the same code."""

from __future__ import annotations

import argparse

import pytest

from lab.cli import build_parser, grammar, reference, reports
from lab.config import project_root

PARSER = build_parser()
COMMANDS = list(grammar.walk(PARSER))


def parse(*argv: str) -> argparse.Namespace:
    return PARSER.parse_args(grammar.normalise(argv, reports.REPORTS))


@pytest.mark.parametrize("path", [p for p, _c, _t in COMMANDS], ids=" ".join)
def test_every_command_has_a_description_and_every_argument_help(path: tuple[str, ...]) -> None:
    child = dict((p, c) for p, c, _ in COMMANDS)[path]
    assert child.description and len(child.description) > 10, path
    for action in grammar.own_arguments(child):
        assert action.help, (path, action.dest)
        assert action.metavar != "ACTION" or action.choices is None, (path, action.dest)
    child.format_help()  # every help renders (a stray % would raise here)


def test_defaults_are_shown_in_help() -> None:
    text = dict((p, c) for p, c, _ in COMMANDS)[("job", "list")].format_help()
    assert "(default: 20)" in text
    assert "(default: False)" not in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status"], ("run", "status")),
        (["status", "-v"], ("run", "status")),
        (["stop"], ("run", "stop")),
        (["runs", "--json"], ("run", "list")),
        (["pause"], ("run", "pause")),
        (["resume"], ("run", "resume")),
        (["run", "--x", "3", "--y", "60"], ("run", "start")),
        (["-v", "run", "--x", "3", "--y", "60", "--wait"], ("run", "start")),
        (["--log-file", "x.log", "runs"], ("run", "list")),
        (["run", "show", "r-1"], ("run", "show")),
        (["report", "latency", "-p", "RUN_X", "5"], ("report", "run")),
        (["report", "run", "latency"], ("report", "run")),
        (["report", "list", "--json"], ("report", "list")),
        (["stack", "status", "--json"], ("stack", "status")),
        (["stack", "env"], ("stack", "env")),
        (["queue", "list", "--json"], ("queue", "list")),
        (["kind", "show", "agent"], ("kind", "show")),
        (["reset", "--yes"], ("reset", None)),
    ],
)
def test_short_forms_mean_their_full_form(argv: list[str], expected: tuple[str, str]) -> None:
    args = parse(*argv)
    action = getattr(args, "action", None) or getattr(args, "report", None)
    assert (args.command, action) == expected


def test_global_flags_are_taken_before_and_after_the_command() -> None:
    assert parse("-v", "status").verbose is True
    assert parse("status", "-v").verbose is True
    assert parse("job", "list", "--log-file", "a.log").log_file.name == "a.log"
    assert parse("status").verbose is False


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        PARSER.parse_args(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("lab ")


def test_drill_names_cannot_shadow_report_actions() -> None:
    assert not {"run", "list", "compare"} & set(reports.REPORTS)


def test_stack_actions_take_only_their_own_options() -> None:
    with pytest.raises(SystemExit):
        parse("stack", "status", "--only", "redis")


@pytest.mark.parametrize(
    "argv",
    [
        ["job", "add", "nosuchkind"],
        ["job", "add", "agent", "--at", "yesterday"],
        ["job", "list", "--from", "yesterday"],
        ["job", "list", "--kind", "nosuchkind"],
        ["dead", "list", "--offset", "-1"],
    ],
)
def test_what_can_be_checked_locally_is(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        parse(*argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "kinds: agent" in err or "is not a time" in err or "must be 0 or more" in err


def test_a_drill_parameter_typo_names_the_valid_ones() -> None:
    from lab.measure.reports.run import ReportError, check_parameters, parameters_of

    assert parameters_of("latency")["STEP_SECONDS"] == 15
    check_parameters("latency", {"STEP_SECONDS": 1})
    with pytest.raises(ReportError, match="did you mean STEP_SECONDS"):
        check_parameters("latency", {"STEP_SECOND": 1})


def test_completion_knows_every_command() -> None:
    from lab.cli.completion import script, words

    table = words(PARSER)
    assert "start" in table["run"] and "--x" in table["run start"]
    assert "up" in table["stack"] and "--rabbitmq-nodes" in table["stack up"]
    assert "_lab_complete" in script(PARSER, "bash")
    assert script(PARSER, "zsh").startswith("autoload")


@pytest.mark.parametrize("name", list(reference.REFERENCES))
def test_generated_references_are_current(name: str) -> None:
    committed = project_root() / "docs" / "reference" / name
    assert committed.is_file(), f"run: python -m lab.cli.reference ({name} is missing)"
    assert committed.read_text() == reference.REFERENCES[name](), (
        f"docs/reference/{name} is stale: python -m lab.cli.reference"
    )


def test_unknown_settings_are_named_with_the_nearest_one() -> None:
    from lab.config import unknown_names

    found = unknown_names(["LAB_PREFECTH", "LAB_PREFETCH", "LAB_ZZZZZZ", "OTHER"])
    assert found == {"LAB_PREFECTH": "LAB_PREFETCH", "LAB_ZZZZZZ": None}


def test_the_project_root_is_found_from_a_subfolder() -> None:
    root = project_root()
    assert project_root(root / "notebooks") == root
    assert (root / "lab" / "__init__.py").is_file()


@pytest.mark.parametrize(
    ("name", "value"),
    [("api_url", "localhost:8000"), ("redis_url", "http://x"), ("amqp_url", "amqp://h:port/")],
)
def test_a_malformed_service_url_is_a_config_error(name: str, value: str) -> None:
    from lab.config import ConfigError, load

    with pytest.raises(ConfigError, match=f"LAB_{name.upper()}"):
        load({f"LAB_{name.upper()}": value})


def test_the_status_example_has_every_field_status_answers() -> None:
    import json
    import re

    from lab.runtime.status import shape_status

    page = (project_root() / "docs" / "reference" / "json.md").read_text()
    example = json.loads(re.search(r'```json\n(\{\n  "runId".*?)```', page, re.S)[1])
    answered = {**shape_status({"nowMs": 0}), "ageMs": 0}
    assert set(answered) <= set(example)
