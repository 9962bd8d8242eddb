"""The words of docs/concepts.md are the code's: its run states are `RUN_STATES`, its job states
`jobs.STATES`, its dead-letter reasons `deadletters.LISTED_REASONS` (a worker's own are
`retry.REASONS`), its delivery verdict the fields `verdict.tally` answers; no page lists some of
a set and leaves out the rest; and a page that uses a word of concepts.md links to its
definition. A failure names the page, the line and the word."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.runtime.deadletters import LISTED_REASONS
from lab.runtime.jobs import STATES
from lab.runtime.retry import REASONS
from lab.runtime.status import RUN_STATES
from lab.targets.verdict import Bitmaps, tally
from tests import docs_pages
from tests.docs_pages import ROOT

CONCEPTS = ROOT / "docs" / "concepts.md"
VERDICT = tuple(k for k in tally({}, Bitmaps(0, 0, 0, None, 0)) if k not in ("runId", "target"))


def first_column(heading: str) -> list[str]:
    """The backticked names of the first column of the table under `heading` in concepts.md."""
    found = []
    for line in docs_pages.sections(CONCEPTS)[heading]:
        cell = line.split("|")[1].strip() if line.startswith("| ") else ""
        if re.fullmatch(r"`[^`]+`", cell):
            found.append(cell.strip("`"))
    return found


@pytest.mark.parametrize(
    ("heading", "code"),
    [
        ("Run states", RUN_STATES),
        ("Job states", STATES),
        ("Dead-letter reasons", LISTED_REASONS),
        ("Delivery verdict", VERDICT),
    ],  # fmt: skip
)
def test_concepts_defines_exactly_the_codes_words(heading: str, code: tuple[str, ...]) -> None:
    defined = first_column(heading)
    missing = [w for w in code if w not in defined]
    unknown = [w for w in defined if w not in code]
    assert not missing and not unknown, (
        f"docs/concepts.md, '{heading}': the code has {missing or 'nothing more'} that the page "
        f"does not define; the page defines {unknown or 'nothing more'} that the code lacks"
    )


def test_the_worker_sets_the_reasons_concepts_says_it_sets() -> None:
    by_worker = [
        line.split("|")[1].strip().strip("`")
        for line in docs_pages.sections(CONCEPTS)["Dead-letter reasons"]
        if line.startswith("| `") and line.split("|")[2].strip() == "worker"
    ]
    assert tuple(by_worker) == REASONS, f"docs/concepts.md: the worker's reasons are {REASONS}"


# A page that names this many of a set in backticks names them all (a list of states or
# reasons that leaves one out is how a page goes stale).
SETS = {
    "run states": (RUN_STATES, 3),
    "job states": (STATES, 3),
    "dead-letter reasons": (REASONS, 2),
}


def chunks(page: Path) -> list[tuple[int, str]]:
    """(line, text) of each paragraph, list or table row of a page, outside code blocks and
    outside a table the code makes (`<!-- NAME: generated … -->` … `<!-- /NAME -->`)."""
    found: list[tuple[int, str]] = []
    lines, start, fenced, made = docs_pages.lines(page), None, False, False
    for index, line in enumerate([*lines, ""]):
        if line.startswith("<!--") and ("generated" in line or "made by" in line):
            made = True
        elif line.startswith("<!-- /"):
            made = False
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced or made:
            continue
        if line.startswith("|"):
            found.append((index + 1, line))
        if not line.strip() or line.startswith("|"):
            if start is not None:
                found.append((start + 1, "\n".join(lines[start:index])))
            start = None
        elif start is None:
            start = index
    return found


@pytest.mark.parametrize("page", docs_pages.PAGES, ids=docs_pages.name)
def test_no_page_lists_part_of_a_set(page: Path) -> None:
    if page == CONCEPTS:
        return
    stale = []
    for line, text in chunks(page):
        named = set(re.findall(r"`([^`]+)`", text))
        for what, (words, enough) in SETS.items():
            given = [w for w in words if w in named]
            if len(given) >= enough and len(given) < len(words):
                left = [w for w in words if w not in named]
                stale.append(f"{docs_pages.where(page, line)}: lists {what} without {left}")
    assert not stale, "\n".join(stale)


# Where a page uses a word of concepts.md, it links to its definition (docs/concepts.md#anchor).
TERMS = {
    "single-job": r"\bsingle jobs?\b",
    "released-processed-failed-settled": r"\bsettle[sd]\b",
    "shape-time": r"\bshape time\b",
    "forgiven": r"\bforgiv",
    "backpressure": r"\bbackpressure\b",
    "head-age": r"\bhead[- ]of[- ]line\b|\bhead age\b",
    "breached": r"\bbreach",
    "target": r"`--target`|\blab target\b",
    "shim": r"\bshims?\b",
    "delivery-verdict": r"\bdelivery verdict\b|\bexecuted more than once\b|\blab run verdict\b",
    "dead-letter-reasons": r"`x-lab-reason`",
}


def test_every_term_has_its_definition() -> None:
    undefined = set(TERMS) - docs_pages.anchors(CONCEPTS)
    assert not undefined, f"docs/concepts.md has no heading for {sorted(undefined)}"


@pytest.mark.parametrize("page", docs_pages.PAGES, ids=docs_pages.name)
def test_a_page_that_uses_a_term_links_to_it(page: Path) -> None:
    if page == CONCEPTS or docs_pages.is_generated(page):
        return
    targets = {link.text.split("#", 1)[1] for link in docs_pages.links(page)
               if link.text.split("#")[0].endswith("concepts.md") and "#" in link.text}  # fmt: skip
    missing = []
    for anchor, pattern in TERMS.items():
        if anchor in targets:
            continue
        for line, text in chunks(page):
            match = re.search(pattern, text, re.I)
            if match:
                line += text[: match.start()].count("\n")
                missing.append(f"{docs_pages.where(page, line)}: uses '{match[0]}' and links "
                               f"nowhere to concepts.md#{anchor}")  # fmt: skip
                break
    assert not missing, "\n".join(missing)


def test_the_fields_an_experiment_file_takes_in_run_are_the_codes() -> None:
    from lab.experiment.factors import run_fields

    page = ROOT / "docs" / "EXPERIMENTS.md"
    lines = docs_pages.lines(page)
    start = next(i for i, line in enumerate(lines) if line.startswith("- `[run]` takes "))
    text = " ".join(lines[start : start + 3]).split(", each as")[0]
    named = re.findall(r"`([^`]+)`", text)[1:]
    assert tuple(named) == run_fields(), (
        f"docs/EXPERIMENTS.md:{start + 1}: `[run]` takes {run_fields()}, the page says {named}"
    )
