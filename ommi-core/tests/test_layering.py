"""ommi-core imports in one direction: the module graph has no cycle.

Every module under ``ommi-core/src/ommi`` is parsed with :mod:`ast` and every
``import`` of an ``ommi`` module becomes an edge, wherever it is written:

* at module level (also inside ``try``/``if`` at module level);
* inside a function or method (a "function-local" import runs when the
  function is first called, and a cycle held together that way breaks as soon
  as someone moves the import to the top);
* implicitly: importing ``ommi.query.find`` first runs ``ommi/query/__init__.py``,
  so an import also depends on every package ``__init__`` above its target
  (except the importing module's own packages, which are being initialised
  already when it runs).

Imports under ``if TYPE_CHECKING:`` never run; they are allowed to point
upwards (a query node is annotated with ``Field``, which is built on the query
nodes) and are left out of the cycle check. They are collected separately, so
that each module using them is checked to postpone its annotations.

The one exception, listed in :data:`LATE_BINDING` and named in its modules'
docstrings, is the late-binding point of model definition: a model's codecs
and its model-library adapter come from plugins, and ``ommi.plugins`` loads
core's own plugin (``ommi._builtins``), which is built on ``ommi.models``.

:data:`DEFERRED` lists function-local imports that close no cycle (they are part
of the graph checked for cycles) but are deferred for start-up time.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import ommi

SOURCE = Path(ommi.__file__).resolve().parent
ROOT = SOURCE.parent

LATE_BINDING = {
    ("ommi.models.schema", "ommi.plugins"): "codecs for a field's type come from plugins (plugins.codecs())",
    ("ommi.models.decorator", "ommi.plugins"): "the model library's adapter comes from plugins",
}
"""Function-local imports allowed to close a cycle, with why."""

DEFERRED = {
    ("ommi.cli", "ommi._demo"): "the tour's module is loaded only when `ommi demo` runs",
    ("ommi.database", "ommi._legacy"): "the Ommi 0.2 shim table, read only when an old name of ommi.database is used",
}
"""Function-local imports that close no cycle, with why they are not at the top."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    kind: str  # "top", "local" (inside a function) or "typing" (under TYPE_CHECKING)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(SOURCE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = known
        self.kinds: list[str] = []
        self.edges: list[Edge] = []

    def _kind(self) -> str:
        if "typing" in self.kinds:
            return "typing"
        return "local" if "local" in self.kinds else "top"

    def _add(self, target: str, line: int) -> None:
        if not target.startswith("ommi"):
            return
        # Importing a.b.c runs a/__init__ and a/b/__init__ first.
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            name = ".".join(parts[:end])
            own_package = self.module == name or self.module.startswith(name + ".")
            if name in self.known and (name == target or not own_package):
                self.edges.append(Edge(self.module, name, line, self._kind()))

    def _nested(self, kind: str, body: list[ast.stmt]) -> None:
        self.kinds.append(kind)
        for statement in body:
            self.visit(statement)
        self.kinds.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._nested("local", node.body)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.kinds.append("local")
        self.generic_visit(node)
        self.kinds.pop()

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        if _is_type_checking(node.test):
            self._nested("typing", node.body)
            self._nested(self.kinds[-1] if self.kinds else "top", node.orelse)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join([*base, node.module] if node.module else base)
        else:
            origin = node.module or ""
        for alias in node.names:
            submodule = f"{origin}.{alias.name}"
            # ``from ommi import errors`` imports a module; ``from ommi.x import name`` needs ommi.x run.
            self._add(submodule if submodule in self.known else origin, node.lineno)


def collect_edges() -> list[Edge]:
    modules = _modules()
    known = set(modules)
    edges: list[Edge] = []
    for name, path in modules.items():
        collector = _Collector(name, path.name == "__init__.py", known)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        edges.extend(e for e in collector.edges if e.target != name)
    return edges


def find_cycle(edges: list[Edge]) -> list[Edge] | None:
    """One cycle of the graph as its edges, or ``None``."""
    graph: dict[str, list[Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[Edge] = []

    def visit(node: str) -> list[Edge] | None:
        state[node] = 1
        for edge in graph.get(node, []):
            if state.get(edge.target) == 1:
                start = next((i for i, e in enumerate(path) if e.source == edge.target), len(path))
                return [*path[start:], edge]
            if edge.target not in state:
                path.append(edge)
                found = visit(edge.target)
                if found:
                    return found
                path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _describe(cycle: list[Edge]) -> str:
    return "\n".join(f"  {e.source} -> {e.target} (line {e.line}, {e.kind})" for e in cycle)


def test_core_modules_form_no_import_cycle() -> None:
    """Counting function-local and package-initialisation imports, no module reaches itself again.

    Only the listed late-binding edges (model definition asking ``ommi.plugins``) are left out.
    """
    edges = [e for e in collect_edges() if e.kind != "typing" and (e.source, e.target) not in LATE_BINDING]
    cycle = find_cycle(edges)
    assert cycle is None, "ommi-core modules import each other in a cycle:\n" + _describe(cycle or [])


def test_function_local_imports_are_only_the_late_binding_point() -> None:
    """No ``ommi`` module is imported inside a function, except the listed late-binding and deferred edges."""
    local = sorted(
        {(e.source, e.target) for e in collect_edges() if e.kind == "local"} - set(LATE_BINDING) - set(DEFERRED),
    )
    assert local == [], f"function-local imports of ommi modules (move them to the top): {local}"


def test_late_binding_edges_exist_and_are_documented() -> None:
    """Each allowed edge is still a function-local import, and its module's docstring names it."""
    edges = {(e.source, e.target): e for e in collect_edges()}
    modules = _modules()
    for (source, target), why in LATE_BINDING.items():
        edge = edges.get((source, target))
        assert edge is not None and edge.kind == "local", f"{source} -> {target} ({why}) is not a local import"
        docstring = ast.get_docstring(ast.parse(modules[source].read_text(encoding="utf-8"))) or ""
        assert target in docstring, f"the docstring of {source} must name its late-bound import of {target}"


def test_type_checking_imports_are_postponed_annotations() -> None:
    """A module importing under ``TYPE_CHECKING`` postpones its annotations, so those names never run."""
    typing_only = {e.source for e in collect_edges() if e.kind == "typing"}
    modules = _modules()
    missing = [
        name
        for name in sorted(typing_only)
        if "from __future__ import annotations" not in modules[name].read_text(encoding="utf-8")
    ]
    assert missing == []


def test_the_checker_sees_each_kind_of_import() -> None:
    """The collector finds module-level, function-local, TYPE_CHECKING and package-initialisation edges."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from ommi.models.schema import Field\n"
        "from ommi import errors\n"
        "if TYPE_CHECKING:\n"
        "    from ommi.database import Ommi\n"
        "def late():\n"
        "    from ommi.plugins import codecs\n"
    )
    collector = _Collector("ommi.query.example", False, set(_modules()) | {"ommi.query.example"})
    collector.visit(ast.parse(source))
    found = {(e.target, e.kind) for e in collector.edges}
    assert found == {
        ("ommi.models", "top"),
        ("ommi.models.schema", "top"),
        ("ommi.errors", "top"),
        ("ommi.database", "typing"),
        ("ommi.plugins", "local"),
    }
    cycle = find_cycle([Edge("a", "b", 1, "top"), Edge("b", "c", 1, "top"), Edge("c", "a", 1, "local")])
    assert cycle is not None and [e.source for e in cycle] == ["a", "b", "c"]
    assert find_cycle([Edge("a", "b", 1, "top"), Edge("a", "c", 1, "top"), Edge("b", "c", 1, "top")]) is None
