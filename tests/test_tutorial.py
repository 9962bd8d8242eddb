"""docs/tutorial.md, run as a newcomer runs it: every ```sh block of the page, in order, through
bash, in a folder of its own, against a lab of its own (the `settings` fixture's namespace, given
to every command as its `LAB_*` environment), with the page's sizes made small. `lab up` runs in
the background as the page's second terminal, and stops (as Ctrl-C stops it) where the page says
so. Each command must do what the page says it does; a command the page changes and this test
does not know (a size it no longer has, a step it no longer takes) fails here, by name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lab.config import Settings
from lab.wait import wait_until
from tests import docs_pages

PAGE = docs_pages.ROOT / "docs" / "tutorial.md"
# The page's sizes → the test's: each must be on the page, so a change of size is noticed.
SMALLER = {
    "--x 6000": "--x 300",
    "ramp:600..12000:60s": "ramp:600..12000:3s",
    "-p FAST_JOBS 5000": "-p FAST_JOBS 300",
    "x = 3000": "x = 200",
    "repetitions = 2": "repetitions = 1",
}
# Lines that set up the reader's shell, and what stands for them here: `make demo` is
# `make setup` (done: this test runs in the virtualenv it made) and `lab demo` (smaller here).
INSTEAD = {"make demo": "lab demo --x 60 --y 60000", "source .venv/bin/activate": ""}
BACKGROUND = "lab up --workers 2"  # the second terminal
STOP_BEFORE = "lab stack down"  # the page's Ctrl-C comes first
API = "http://127.0.0.1:8000"
# What each step's output must show (the page shows the same at its size), by a word of its
# command; a step that may exit other than 0 says with which codes.
SHOWS = {
    "lab demo": ["demo passed"],
    "lab run start": ['"state": "completed"'],
    "lab run latency": ["endToEnd"],
    "lab run verdict": [": clean"],
    "lab report scaleout": ["lab: verdict passed"],
    "--dry-run": ["my-experiment: 2 trials"],
    "lab experiment report": ["lab: verdict passed", "workers: 1 → 2"],
}
EXITS = {"lab report compare": (0, 1, 2)}  # 2: one baseline cannot judge a noisy figure


def steps() -> list[str]:
    """The page's ```sh blocks, with its sizes made small and its setup lines replaced."""
    text = PAGE.read_text()
    for big in SMALLER:
        assert big in text, f"docs/tutorial.md no longer says {big!r}: update SMALLER here"
    blocks = []
    for block in docs_pages.blocks(PAGE):
        if block.info != "sh":
            continue
        script = block.text
        for big, small in SMALLER.items():
            script = script.replace(big, small)
        script = "\n".join(INSTEAD.get(line.strip(), line) for line in script.splitlines())
        if script.strip():
            blocks.append(script.replace(API, "{api}"))
    return blocks


def start_lab_up(env: dict[str, str], settings: Settings, cwd: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        ["lab", *BACKGROUND.split()[1:]], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip

    def answers() -> bool:
        try:
            return httpx.get(f"{settings.api_url}/status", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, 60, f"lab up's API at {settings.api_url}")
    return process


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)  # the reader's Ctrl-C
    output, _ = process.communicate(timeout=60)
    return output


def check(script: str, done: subprocess.CompletedProcess) -> None:
    """The step did what the page says: its exit code, and what its output must show."""
    output = done.stdout + done.stderr
    first = script.strip().splitlines()[-1]
    allowed = next((codes for word, codes in EXITS.items() if word in script), (0,))
    assert done.returncode in allowed, f"`{first}` exited {done.returncode}:\n{output}"
    for word, shows in SHOWS.items():
        if word in script:
            for text in shows:
                assert text in output, f"`{first}` did not show {text!r}:\n{output}"


@pytest.mark.slow
def test_the_tutorial_runs_as_written(settings: Settings, tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, **settings.as_env(), "COLUMNS": "120",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    background: subprocess.Popen | None = None
    ran: list[str] = []
    try:
        for script in steps():
            script = script.replace("{api}", settings.api_url)
            if script.strip() == BACKGROUND:
                background = start_lab_up(env, settings, tmp_path)
                continue
            if script.strip() == STOP_BEFORE and background is not None:
                assert "stopped" in stop(background)
                background = None
            began = time.monotonic()
            done = subprocess.run(
                ["bash", "-ec", script], env=env, cwd=tmp_path, text=True, capture_output=True,
                timeout=600, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            check(script, done)
            ran.append(f"{time.monotonic() - began:5.1f} s  {script.strip().splitlines()[-1]}")
    finally:
        if background is not None:
            stop(background)
        print("\n".join(ran))
    assert any("lab report compare" in line for line in ran), ran
