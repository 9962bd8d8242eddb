"""The package's layout holds: no import cycles between lab's modules, and each layer imports
only the layers below it (the runtime knows nothing of the API, operations, measurement, views
or the CLI; the API nothing of measurement, views or the CLI)."""

from __future__ import annotations

import ast
from pathlib import Path

LAB = Path(__file__).resolve().parents[2] / "lab"
# What each layer must not import at module level (a lazy import inside a function is a
# deliberate, documented choice and is not counted).
LAYERS = {"runtime", "api", "ops", "measure", "views", "cli"}
FORBIDDEN = {
    # The foundation: read by every layer, so it imports none of them.
    "config": LAYERS,
    "wait": LAYERS,
    "runtime": {"api", "ops", "measure", "views", "cli"},
    "api": {"measure", "views", "cli"},
    "ops": {"api", "measure", "views", "cli"},
    "views": {"cli"},
    "measure": {"cli"},
}


def module_graph() -> dict[str, set[str]]:
    modules = {}
    for path in LAB.rglob("*.py"):
        name = ".".join(path.relative_to(LAB.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lab"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in modules else str(node.module))
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("lab")}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def test_no_module_of_lab_imports_itself_round_a_cycle() -> None:
    graph = module_graph()
    cycles = []

    def visit(name: str, path: list[str], done: set[str]) -> None:
        for dep in sorted(graph[name]):
            if dep in path:
                cycles.append(" → ".join([*path[path.index(dep) :], dep]))
            elif dep not in done:
                done.add(dep)
                visit(dep, [*path, dep], done)

    for name in graph:
        visit(name, [name], {name})
    assert not cycles, cycles


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = []
    for name, deps in module_graph().items():
        layer = name.split(".")[1] if name.count(".") else ""
        for dep in deps:
            if dep.count(".") and dep.split(".")[1] in FORBIDDEN.get(layer, ()):
                wrong.append(f"{name} imports {dep}")
    assert not wrong, wrong
