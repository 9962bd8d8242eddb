"""The package's layout holds (docs/ARCHITECTURE.md, "Layout"): each part of `lab` imports only
what its rule allows, and no module of `lab` reaches itself round a cycle of imports.

Every import is read, wherever it stands: at module level, inside a function, under
`if TYPE_CHECKING:`, and `importlib.import_module("lab.…")` (or `__import__`) with a name
written in the code. A lazy import is still a dependency; it only fails later.

Type-only imports count for cycles too: two modules that name each other only for the type
checker still cannot be read, changed or tested apart, and moving one annotation to run time
turns the cycle into an import error. Where a module needs to name something above it, it names
a Protocol below it instead (`lab.runtime.seams`).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

LAB = Path(__file__).resolve().parents[2] / "lab"

# The top level: the foundation every package above the runtime may read.
TOP = {"lab", "lab.version", "lab.config", "lab.addresses", "lab.redaction", "lab.wait",
       "lab.stats", "lab.extras", "lab.client", "lab.gate"}  # fmt: skip
BELOW_VIEWS = {*TOP, "lab.runtime", "lab.targets", "lab.api", "lab.ops"}

# Each part of lab (a top-level module, or a package with all below it unless a deeper part has
# its own rule) → what it may import besides itself. A part with no rule fails the test: a new
# package is one line here, and its row in docs/ARCHITECTURE.md.
RULES: dict[str, set[str]] = {
    # The public API: a kind's names from the runtime; the notebook's loaded when first asked.
    "lab": {"lab.version", "lab.runtime", "lab.client", "lab.experiment"},
    "lab.version": set(),
    "lab.addresses": set(),
    "lab.redaction": set(),
    "lab.config": {"lab.addresses", "lab.redaction"},
    "lab.wait": set(),
    "lab.stats": set(),
    "lab.extras": set(),
    "lab.client": {"lab.config"},
    "lab.gate": {"lab.config"},
    "lab.__main__": {"lab.cli"},  # `python -m lab` is the CLI
    "lab.runtime": {"lab.config", "lab.redaction", "lab.wait", "lab.stats"},
    "lab.testing": {"lab.runtime"},
    # The systems under test: each drives its framework through the runtime's stores and kinds.
    "lab.targets": {
        "lab.version",
        "lab.config",
        "lab.redaction",
        "lab.wait",
        "lab.stats",
        "lab.runtime",
    },
    "lab.api": {*TOP, "lab.runtime", "lab.targets"},
    "lab.ops.faults": {*TOP, "lab.runtime", "lab.ops.processes"},
    "lab.ops": {*TOP, "lab.runtime", "lab.targets", "lab.ops.faults"},
    "lab.views": BELOW_VIEWS,
    "lab.measure": {*BELOW_VIEWS, "lab.views"},
    "lab.experiment": {*BELOW_VIEWS, "lab.views", "lab.measure"},
    "lab.capacity": {*BELOW_VIEWS, "lab.views", "lab.measure", "lab.experiment"},
    "lab.cli": {*BELOW_VIEWS, "lab.views", "lab.measure", "lab.experiment", "lab.capacity"},
}


def covers(prefix: str, module: str) -> bool:
    """`prefix` names `module` or a package holding it (`lab` itself holds only `lab`)."""
    return module == prefix or (prefix != "lab" and module.startswith(prefix + "."))


def part_of(module: str) -> str | None:
    """The rule a module keeps: the deepest part that covers it."""
    return max((p for p in RULES if covers(p, module)), key=len, default=None)


@functools.cache
def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(LAB.rglob("*.py")):
        name = ".".join(path.relative_to(LAB.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imported_names(tree: ast.AST, package: str) -> Iterator[tuple[str, int]]:
    """(name, line) of everything `tree` imports, wherever the import stands. `from a import b`
    gives `a.b`, which is `a` when `b` is not a module. A package's `__init__` run on the way to
    its module is not counted: it would put every package that gathers its modules' names in a
    circle with them."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package this module is in
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield from ((f"{base}.{alias.name}", node.lineno) for alias in node.names)
        elif isinstance(node, ast.Call) and _called(node.func) in ("import_module", "__import__"):
            name = _written(node.args[0]) if node.args else None
            if name:
                yield name, node.lineno


def _called(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _written(arg: ast.expr) -> str | None:
    """The module name as written: a literal, or the literal start of an f-string up to its
    last dot (`f"lab.cli.{name}"` depends at least on `lab.cli`)."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        return str(arg.values[0].value).rpartition(".")[0] or None
    return None


@functools.cache
def graph() -> dict[str, dict[str, int]]:
    """Module → {the lab module it imports: the first line that does}."""
    known = modules()
    edges: dict[str, dict[str, int]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: dict[str, int] = {}
        for target, line in imported_names(ast.parse(path.read_text()), package):
            if target.split(".")[0] != "lab":
                continue
            while target not in known and "." in target:  # `from lab.x import name`: lab.x
                target = target.rpartition(".")[0]
            if target in known and target != name:
                deps.setdefault(target, line)
        edges[name] = deps
    return edges


def strongly_connected(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's components of more than one module (iterative: no recursion limit to meet)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def shortest_cycle(edges: dict[str, dict[str, int]], members: list[str]) -> list[str]:
    """One shortest cycle through the first module of a component, to name in the failure."""
    start, inside = members[0], set(members)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for dep in sorted(edges[node]):
                if dep == start:
                    return [*paths[node], start]
                if dep in inside and dep not in paths:
                    paths[dep] = [*paths[node], dep]
                    following.append(dep)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def test_every_module_of_lab_has_a_rule_and_every_rule_a_module() -> None:
    unruled = sorted(m for m in modules() if part_of(m) is None)
    assert not unruled, f"add a rule to RULES for: {unruled}"
    stale = sorted(p for p in RULES if not any(covers(p, m) for m in modules()))
    assert not stale, f"rules for parts that no longer exist: {stale}"


def test_no_module_of_lab_imports_itself_round_a_cycle() -> None:
    edges = graph()
    cycles = []
    for members in strongly_connected(edges):
        cycle = shortest_cycle(edges, members)
        steps = " → ".join(
            f"{a} (line {edges[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)
        )
        cycles.append(f"{steps} → {cycle[0]}; the circle holds {members}")
    assert not cycles, "\n".join(cycles)


def test_each_part_imports_only_what_its_rule_allows() -> None:
    wrong = []
    for name, deps in graph().items():
        part = part_of(name)
        if part is None:
            continue  # named by the test that every module has a rule
        for dep, line in sorted(deps.items()):
            if part_of(dep) != part and not any(covers(a, dep) for a in RULES[part]):
                wrong.append(f"{modules()[name].relative_to(LAB.parent)}:{line} imports {dep}")
    assert not wrong, "\n".join(wrong)


def test_the_reader_finds_every_kind_of_import() -> None:
    source = """
import lab.config
from lab.runtime import keys
from . import sibling
from ..views import panel
if TYPE_CHECKING:
    from lab.api.app import create_app
def later():
    from lab.cli import main
    importlib.import_module("lab.measure.drill")
    __import__("lab.ops.stack")
    importlib.import_module(f"lab.experiment.{name}")
"""
    found = {name for name, _ in imported_names(ast.parse(source), "lab.measure.reports")}
    assert found >= {
        "lab.config", "lab.runtime.keys", "lab.measure.reports.sibling",
        "lab.measure.views.panel", "lab.api.app.create_app", "lab.cli.main", "lab.measure.drill",
        "lab.ops.stack", "lab.experiment",
    }  # fmt: skip


def test_a_cycle_is_named_by_its_modules() -> None:
    edges = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}}
    (members,) = strongly_connected(edges)
    assert members == ["a", "b", "c"]
    assert shortest_cycle(edges, members) == ["a", "b", "c", "a"]
