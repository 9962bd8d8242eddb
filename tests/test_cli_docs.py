"""What a new user meets first: every command line the README and docs show parses with the real
parser (and the safe ones run as written), errors are one line at any width, colour goes when
NO_COLOR says so, and `.env` is read from the project root wherever `lab` runs."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.cli import build_parser, grammar, reports
from lab.ops import servers
from tests import docs_pages

ROOT = Path(__file__).resolve().parents[1]
SAFE = {("kind", "list"), ("kind", "show"), ("stack", "env"), ("completion",)}
NOT_SHELL = ("json", "toml", "python", "text")


def command_lines() -> list[tuple[str, str]]:
    """(page:line, command) for every `lab …` line in a code block of the docs, fenced or
    indented (a line continued with a backslash is one command, on the line it starts)."""
    found = []
    for page in docs_pages.PAGES:
        for block in docs_pages.blocks(page):
            if block.info in NOT_SHELL:
                continue
            for start, line in logical_lines(block.text):
                for part in re.split(r"&&|;|\|", line.split(" # ")[0]):
                    part = part.strip().removeprefix("$ ").removesuffix(" &").strip()
                    part = re.sub(r"\s+\d?>&?\s*\S+", "", part)  # redirections are the shell's
                    part = re.sub(r'^eval "\$\((.*)\)"$', r"\1", part)
                    if part.startswith("lab ") or part == "lab":
                        found.append((docs_pages.where(page, block.line + start), part))
    return found


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(index of its first line, the line) with continuation lines joined."""
    raw = text.splitlines()
    out, i = [], 0
    while i < len(raw):
        start, line = i, raw[i]
        while line.endswith("\\") and i + 1 < len(raw):
            i += 1
            line = line[:-1] + " " + raw[i]
        out.append((start, line))
        i += 1
    return out


LINES = command_lines()


@pytest.fixture(scope="module")
def guide_classes() -> Iterator[None]:
    """The toxic and the load shape of guides/extending.md, registered as its tests register
    them: the guide's commands that name them parse."""
    from lab.ops.faults import kinds as toxic_kinds
    from lab.ops.faults.toxics import TOXICS
    from lab.runtime.shapes import SHAPES
    from lab.runtime.shapes import kinds as shape_kinds
    from tests.unit import test_fault_toxics, test_shape_guide

    with (
        docs_pages.registered(test_fault_toxics.guide_example(), toxic_kinds, TOXICS, "corrupt"),
        docs_pages.registered(test_shape_guide.guide_example(), shape_kinds, SHAPES, "sawtooth"),
    ):
        yield


@pytest.fixture(scope="module")
def guide_kinds(tmp_path_factory: pytest.TempPathFactory, guide_classes: None) -> Path:
    """The job kind of guides/job-kind.md, saved as the guide says (a module of `workers`), in a
    folder of its own that `workers` also searches: the docs' commands that name it find it."""
    import workers

    folder = tmp_path_factory.mktemp("workers")
    text = (ROOT / "docs" / "guides" / "job-kind.md").read_text()
    (block,) = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    (folder / "resize.py").write_text(block)
    workers.__path__.append(str(folder))
    yield folder
    workers.__path__.remove(str(folder))


def test_the_docs_show_many_commands() -> None:
    assert len(LINES) > 50, LINES


@pytest.mark.parametrize(("where", "line"), LINES, ids=[f"{w}: {c}" for w, c in LINES])
def test_every_command_line_in_the_docs_parses(
    where: str, line: str, guide_kinds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = shlex.split(line)[1:]
    # Files the line names (`--payload @workload.json`, `--shape @traffic.csv`), as a user has them.
    monkeypatch.chdir(tmp_path)
    for word in argv:
        if word.startswith("@") and "/" not in word:
            (tmp_path / word[1:]).write_text("3\n5\n" if word.endswith(".csv") else "{}")
    try:
        build_parser().parse_args(grammar.normalise(argv, reports.REPORTS))
    except SystemExit as exc:
        assert exc.code == 0, f"{where}: the parser refuses `{line}`"


WITH_KINDS = (
    "import sys, workers; workers.__path__.append(sys.argv.pop(1)); "
    "from lab.cli import main; sys.exit(main(sys.argv[1:]))"
)


def run(*argv: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
        kinds: Path | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    """`lab ARGV` in a subprocess at 80 columns; with `kinds`, that folder's modules are kinds
    too (as if saved in workers/)."""
    command = ["-c", WITH_KINDS, str(kinds)] if kinds else ["-m", "lab"]
    return subprocess.run(
        [sys.executable, *command, *argv],
        capture_output=True, text=True, timeout=60, cwd=cwd, stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "80", **(env or {})},
    )  # fmt: skip


@pytest.mark.slow
def test_the_safe_commands_of_the_docs_run_as_written(guide_kinds: Path) -> None:
    ran = 0
    for where, line in LINES:
        argv = shlex.split(line)[1:]
        full = grammar.normalise(argv, reports.REPORTS)
        if (
            "--help" in full
            or "--version" in full
            or tuple(full[:2]) in SAFE
            or tuple(full[:1]) in SAFE
        ):
            done = run(*argv, kinds=guide_kinds)
            assert done.returncode == 0, f"{where}: `{line}`: {done.stderr}"
            ran += 1
    assert ran >= 5


def one_line(done: subprocess.CompletedProcess, *words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("lab: ") and all(w in lines[0] for w in words), lines[0]


def test_errors_are_one_line_naming_the_fix_at_80_columns(tmp_path: Path) -> None:
    free = servers.free_port()
    down = run("status", env={"LAB_API_URL": f"http://127.0.0.1:{free}"})
    one_line(down, "did not answer", f"127.0.0.1:{free}", "lab up")
    assert down.returncode == 1

    malformed = run("status", env={"LAB_API_URL": "localhost:8000"})
    one_line(malformed, "LAB_API_URL", "http://127.0.0.1:8000")

    redis_down = run("reset", "--yes", env={"LAB_REDIS_URL": f"redis://127.0.0.1:{free}/0"})
    one_line(redis_down, "Redis at", "lab stack up")

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        busy = run("api", env={"LAB_API_URL": f"http://127.0.0.1:{port}"})
    one_line(busy, f"127.0.0.1:{port}", "LAB_API_URL")

    env_file = tmp_path / "lab.env"
    env_file.write_text("LAB_PREFECTH=10\n")
    warned = run("stack", "env", env={"LAB_ENV_FILE": str(env_file)})
    assert warned.returncode == 0
    one_line(warned, "LAB_PREFECTH is not a lab setting", "did you mean LAB_PREFETCH?")


def test_no_color_is_honoured() -> None:
    env = {"LAB_API_URL": f"http://127.0.0.1:{servers.free_port()}", "FORCE_COLOR": "1"}
    coloured = run("status", env=env)
    assert "\x1b[" in coloured.stderr
    plain = run("status", env={**env, "NO_COLOR": "1"})
    assert "\x1b[" not in plain.stderr and "did not answer" in plain.stderr


def test_tables_go_to_stdout_messages_to_stderr() -> None:
    listed = run("kind", "list")
    assert "agent" in listed.stdout and listed.stderr == ""
    described = run("kind", "list", "--json")
    assert '"kind": "agent"' in described.stdout


def test_settings_come_from_the_project_root_wherever_lab_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    probe = "from lab import config; s = config.load(); print(s.home)"
    for cwd in (ROOT, ROOT / "notebooks"):
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, env=env,
            timeout=60,
        )  # fmt: skip
        assert done.stdout.strip() == str(ROOT / ".lab"), done.stderr
