"""Every name the docs give in backticks is one the code has: a dotted Python name of `lab`
(`lab.runtime.acks.AckTracker`, the short `broker.Publisher` of a module of `lab`, or a member of
a class of lab's, `Supervisor.down`) imports and resolves, a repo path (`lab/…`, `docs/…`,
`tests/x.py::test_y`, …) exists, and a link to another page (and its `#anchor`) leads somewhere.
A failure names the page, the line and the stale name."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from functools import cache
from pathlib import Path

import pytest

from lab.config import Settings
from tests import docs_pages
from tests.docs_pages import ROOT

DOTTED = re.compile(r"(?:[A-Za-z_]\w*)(?:\.[A-Za-z_]\w*)+")
# The default queue's names (`lab.jobs`, `lab.jobs.single`, …) look dotted and are not Python.
QUEUE = Settings().queue
# Names that look like lab's and are another library's.
NOT_LABS = {"Connection.Blocked": "AMQP's method (pika), not lab.runtime.seams.Connection"}
# A repo path: one of these folders, then a path; a placeholder or an output folder is not one.
FOLDERS = ("lab", "docs", "notebooks", "workers", "tests", "scripts", "deploy", "experiments",
           "loadtests", "targets")  # fmt: skip
PLACEHOLDER = re.compile(r"[<>{}*…]|\bNAME\b|\bKIND\b|\bDIR\b|\bCOMMIT\b|\bSTAMP\b")
OUTPUTS = ("experiments/results", "loadtests/results", "reports/")
# Files a page tells its reader to write, which the repository does not hold.
TO_BE_WRITTEN = {"workers/resize.py": "guides/job-kind.md: the guide's kind, the reader saves it"}


def dotted_spans() -> list[tuple[str, str]]:
    found = []
    for page in docs_pages.PAGES:
        for span in docs_pages.spans(page):
            text = re.sub(r"\(.*\)$", "", span.text.strip()).removesuffix(".*")
            if DOTTED.fullmatch(text):
                found.append((docs_pages.where(page, span.line), text))
    return found


@cache
def modules() -> dict[str, list[str]]:
    """The last part of every module and package of `lab` → their full names."""
    found: dict[str, list[str]] = {}
    for path in (ROOT / "lab").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.setdefault(parts[-1], []).append(".".join(parts))
        if len(parts) > 2:  # `views.notebook`, `ops.faults`: a package and its module
            found.setdefault(".".join(parts[-2:]), []).append(".".join(parts))
    return found


@cache
def classes() -> dict[str, list[str]]:
    """Every class defined at the top of a module of `lab` → its full names."""
    found: dict[str, list[str]] = {}
    for path in (ROOT / "lab").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for name in re.findall(r"^class (\w+)", path.read_text(), re.M):
            found.setdefault(name, []).append(f"{module}.{name}")
    return found


def resolve(dotted: str) -> bool:
    """Import the longest module prefix of `dotted`, then getattr the rest."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):  # an instance's attribute ends the name
                return isinstance(obj, type) and attr in instance_attributes(obj)
            obj = getattr(obj, attr)
        return True
    return False


def instance_attributes(cls: type) -> set[str]:
    """What an instance of `cls` has that the class itself may not: its dataclass fields and
    what its methods assign to `self`."""
    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return names
    return names | set(re.findall(r"self\.(\w+)\s*(?::[^=]*)?=", source))


def candidates(dotted: str) -> list[str] | None:
    """The full names `dotted` may mean, or None when it is not a Python name of lab's.

    `lab.…` is one. A short name (`broker.Publisher`, `views.notebook.kernel_env`) counts when
    its head is a module of lab and what follows looks like code (a class, a CONSTANT, a
    snake_case function) rather than a JSON field (`payload.serviceMs`, `status.p50Ms`)."""
    if dotted.startswith(QUEUE):
        return None
    if dotted.split(".")[0] == "lab":
        return [dotted]
    parts = dotted.split(".")
    if parts[0] in classes():  # `LabClient.latency_frame`, `Supervisor.down`: a class's member
        return [f"{full}.{'.'.join(parts[1:])}" for full in classes()[parts[0]]]
    for head in (".".join(parts[:2]), parts[0]):
        rest = dotted[len(head) + 1 :]
        code_like = re.fullmatch(r"[A-Z]\w*|\w*_\w*(\.\w+)*|[A-Z_0-9]+", rest)
        if head in modules() and rest and code_like:
            return [f"{full}.{rest}" for full in modules()[head]]
    return None


SPANS = dotted_spans()


def test_the_docs_name_many_python_names() -> None:
    assert sum(candidates(text) is not None for _, text in SPANS) > 40


def test_every_python_name_in_the_docs_resolves() -> None:
    stale = []
    for where, text in SPANS:
        names = None if text in NOT_LABS else candidates(text)
        if names is not None and not any(resolve(n) for n in names):
            stale.append(f"{where}: `{text}` is not a name of the code ({' or '.join(names)})")
    assert not stale, "\n".join(stale)


def path_spans() -> list[tuple[str, str]]:
    found = []
    for page in docs_pages.PAGES:
        for span in docs_pages.spans(page):
            text = span.text.strip()
            head = text.split("/")[0]
            if "/" in text and head in FOLDERS and " " not in text and not PLACEHOLDER.search(text):
                found.append((docs_pages.where(page, span.line), text))
    return found


def test_every_repo_path_in_the_docs_exists() -> None:
    found = path_spans()
    assert len(found) > 100
    stale = []
    for where, text in found:
        path, _, test = text.partition("::")
        path = path.split("#")[0].rstrip(",.:;")
        if path.startswith(OUTPUTS) or path in TO_BE_WRITTEN:
            continue
        if not (ROOT / path).exists():
            stale.append(f"{where}: `{text}`: no such file or folder")
        elif test and f"def {test.split('[')[0]}(" not in (ROOT / path).read_text():
            stale.append(f"{where}: `{text}`: no test {test} in {path}")
    assert not stale, "\n".join(stale)


@pytest.mark.parametrize("page", docs_pages.PAGES, ids=docs_pages.name)
def test_every_link_leads_somewhere(page: Path) -> None:
    stale = []
    for link in docs_pages.links(page):
        target = link.text
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            stale.append(f"{docs_pages.where(page, link.line)}: link to {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in docs_pages.anchors(dest):
            stale.append(f"{docs_pages.where(page, link.line)}: link to {target}: no heading "
                         f"#{anchor} in {docs_pages.name(dest)}")  # fmt: skip
    assert not stale, "\n".join(stale)


def test_notebooks_readme_names_every_notebook() -> None:
    page = ROOT / "notebooks" / "README.md"
    text = page.read_text()
    missing = [
        p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if f"`{p.name}`" not in text
    ]
    assert not missing, f"notebooks/README.md does not list {missing}"


def test_every_lab_variable_in_the_docs_is_read() -> None:
    from lab.config import EXTRA_VARIABLES

    known = {f"LAB_{f.name.upper()}" for f in dataclasses.fields(Settings)} | set(EXTRA_VARIABLES)
    stale = [
        f"{docs_pages.where(page, span.line)}: `{name}` is no setting of lab/config.py"
        for page in docs_pages.PAGES
        for span in docs_pages.spans(page)
        for name in re.findall(r"\bLAB_[A-Z][A-Z0-9_]*\b", span.text)
        if name not in known and not name.endswith("_")
    ]
    assert not stale, "\n".join(stale)
