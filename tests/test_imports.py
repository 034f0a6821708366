"""The package's imports point one way: no module of corral imports, directly or through others, a
module that imports it back.

The graph is read from the source (the AST of every module under src/corral), with imports at the
top level and inside functions alike; imports under `if TYPE_CHECKING:` are left out (they never
run). Every module is also imported for real, so a module that can't be imported fails here too.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import corral

ROOT = Path(corral.__file__).parent
PACKAGE = "corral"

KNOWN_CYCLES: set[frozenset[str]] = set()
"""Cycles allowed for now, each with why (none: a new one fails the test)."""


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement under `node`, leaving out the bodies of `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            found.append(child)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                found.extend(_imports(ast.Module(body=[other], type_ignores=[])))
        else:
            found.extend(_imports(child))
    return found


def _resolve(name: str) -> str | None:
    """The corral module that `name` names (a module, or a name inside one), or None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(module: str, statement: ast.Import | ast.ImportFrom) -> set[str]:
    """The corral modules one import statement of `module` loads."""
    is_package = MODULES[module].name == "__init__.py"
    if isinstance(statement, ast.Import):
        names = [alias.name for alias in statement.names]
    else:
        base = statement.module or ""
        if statement.level:
            anchor = module.split(".")
            if not is_package:
                anchor.pop()
            anchor = anchor[: len(anchor) - (statement.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        # `from package import name`: the submodule if `name` is one, else the package itself.
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
            for alias in statement.names
        ]
    found = {_resolve(name) for name in names if name.split(".")[0] == PACKAGE}
    return {target for target in found if target is not None and target != module}


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for statement in _imports(tree):
            edges |= _targets(module, statement)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _path_within(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One cycle through the component, for the message: start -> ... -> start."""
    members = set(component)
    start = component[0]
    trail = [start]
    seen = {start}
    while True:
        step = sorted(graph[trail[-1]] & members)
        if start in step and len(trail) > 1:
            return [*trail, start]
        nxt = next((m for m in step if m not in seen), start)
        if nxt == start:
            return [*trail, start]
        trail.append(nxt)
        seen.add(nxt)


def test_the_graph_sees_every_kind_of_import() -> None:
    """The reader itself: relative, absolute, in a function, and TYPE_CHECKING left out."""
    graph = import_graph()
    assert "corral.store" in graph["corral.worker.sink"]  # `from ..store import Store`
    assert "corral.store" in graph["corral.worker.heartbeat"]  # inside a function
    assert "corral.worker.middleware" in graph["corral.app"]  # `from .worker.middleware import`
    assert "corral.app" not in graph["corral.workflow"]  # under TYPE_CHECKING only
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


@pytest.mark.parametrize(
    "module", ["corral.worker.worker", "corral.callbacks", "corral.registry", "corral.workflow"]
)
def test_below_the_app_nothing_imports_it(module: str) -> None:
    """The worker and the callback service need the registry and the store, never the App."""
    reached = _reaches(import_graph(), module)
    assert "corral.app" not in reached
    assert "corral" not in reached  # the package's __init__ imports the app


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module: str) -> None:
    importlib.import_module(module)


def test_no_import_cycles() -> None:
    graph = import_graph()
    found = [c for c in cycles(graph) if frozenset(c) not in KNOWN_CYCLES]
    described = [" -> ".join(_path_within(graph, c)) for c in found]
    assert not found, "import cycles in corral:\n" + "\n".join(described)
