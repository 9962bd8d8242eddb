"""docs/REDIS_KEYS.md stays written by hand (it says who writes each key and what its fields hold,
which the code's docstrings do not), and true: every key `lab.runtime.keys.Keys` can name has a
row, every row names a key `Keys` makes, and the states it lists for a run and a job are the
code's."""

from __future__ import annotations

import inspect
import re

from lab.runtime.jobs import STATES
from lab.runtime.keys import Keys
from lab.runtime.status import RUN_STATES
from tests import docs_pages
from tests.docs_pages import ROOT

PAGE = ROOT / "docs" / "REDIS_KEYS.md"
# Keys that name no key of their own: templates for the scripts, a cleanup glob.
NOT_KEYS = ("run_template", "scheduler_template", "worker_template", "jobs_in_template", "pattern")


def shape(key: str) -> str:
    """A key with each variable part (`<runId>`, `%s`, a placeholder value) as `<>`."""
    return re.sub(r"<[^>]*>|%[sd]", "<>", key)


def code_keys() -> dict[str, str]:
    """Each key Keys can name, as a shape, → the member that names it."""
    keys = Keys("<p>")
    found = {}
    for member, value in inspect.getmembers(Keys):
        if member.startswith("_") or member in NOT_KEYS or member == "prefix":
            continue
        if isinstance(value, property):
            key = getattr(keys, member)
        else:
            params = list(inspect.signature(value).parameters)[1:]
            key = getattr(keys, member)(*(f"<{p}>" for p in params))
        if isinstance(key, str):
            found[shape(key)] = member
    return found


def page_rows() -> dict[str, int]:
    """Each key of the page's table (first column), as a shape, → its line."""
    found = {}
    for number, line in enumerate(docs_pages.lines(PAGE), 1):
        match = re.match(r"\| `(<p>[^`]*)`", line)
        if match:
            found[shape(match[1])] = number
    return found


def test_every_key_of_the_code_has_a_row_and_every_row_a_key() -> None:
    code, page = code_keys(), page_rows()
    missing = [f"Keys.{member} ({key})" for key, member in code.items() if key not in page]
    unknown = [f"{PAGE.name}:{line}: `{key}`" for key, line in page.items() if key not in code]
    assert not missing, f"docs/REDIS_KEYS.md has no row for {missing}"
    assert not unknown, f"rows naming no key of lab/runtime/keys.py: {unknown}"


def test_the_states_the_page_lists_are_the_codes() -> None:
    text = PAGE.read_text()
    run_row = next(line for line in text.splitlines() if line.startswith("| `<p>:run:<runId>` |"))
    job_row = next(line for line in text.splitlines() if line.startswith("| `<p>:job:<id>` |"))
    listed_run = re.search(r"`state` \(([^)]*)\)", run_row)
    listed_job = re.search(r"`state` \(([^)]*)\)", job_row)
    assert listed_run and re.findall(r"`(\w+)`", listed_run[1]) == list(RUN_STATES), run_row
    assert listed_job and re.findall(r"`(\w+)`", listed_job[1]) == list(STATES), job_row
