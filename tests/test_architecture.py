"""The package's shape: no import circle (hidden or not), every module importable alone, files and
functions of a readable size (split by responsibility when they grow).

See docs/architecture.md for the layers these checks keep apart."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "plumasync"
ROOT = PACKAGE.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom | ast.Import, is_package: bool) -> list[str]:
    """The plumasync modules one import statement names (submodules included when imported by name)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.startswith("plumasync")]
    if node.level:
        base = module.split(".")
        base = base if is_package else base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("plumasync"):
        return []
    names = [target]
    for alias in node.names:
        if f"{target}.{alias.name}" in MODULES:
            names.append(f"{target}.{alias.name}")
    return names


def import_graph() -> dict[str, set[str]]:
    """Every import between plumasync modules, wherever it is written: module level, inside a function,
    under ``if TYPE_CHECKING`` (a circle hidden there is still a circle in the design)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(t for t in _resolve(module, node, path.name == "__init__.py") if t in MODULES)
        edges.discard(module)
        graph[module] = edges
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a circle of imports.

    A package importing its own submodules (``plumasync.governor`` → ``plumasync.governor.clock``) is
    how re-exports work, not a circle: edges from a package ``__init__`` into its own subtree are left out.
    """
    def inward(src: str, dst: str) -> bool:
        return MODULES[src].name == "__init__.py" and dst.startswith(src + ".")

    edges = {m: {d for d in ds if not inward(m, d)} for m, ds in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_circle() -> None:
    assert _circles(import_graph()) == []


def test_the_circle_check_can_fail() -> None:
    graph = import_graph()
    graph["plumasync.errors"] = graph["plumasync.errors"] | {"plumasync.client"}  # errors → client → ... → errors
    assert any("plumasync.errors" in c and "plumasync.client" in c for c in _circles(graph))


def test_the_resources_never_import_the_front_door() -> None:
    graph = import_graph()
    for module in ("plumasync.calllogs", "plumasync.voicetrends", "plumasync.harvest", "plumasync._base_client"):
        assert "plumasync.client" not in graph[module], module


IMPORTABLE = [m for m in MODULES if not m.endswith("__main__")]


@pytest.fixture(scope="module")
def imported_alone() -> dict[str, str]:
    """Each module imported with no other plumasync module loaded before it (see tests/import_alone.py)."""
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("import_alone.py")), *IMPORTABLE],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    answers: dict[str, str] = json.loads(done.stdout)
    return answers


@pytest.mark.parametrize("module", IMPORTABLE)
def test_every_module_imports_alone(module: str, imported_alone: dict[str, str]) -> None:
    """With nothing of plumasync imported before it: import order can hide a circle."""
    if module == "plumasync.governor.stores.redis":
        pytest.importorskip("redis")
    assert imported_alone[module] == ""


def test_importing_alone_catches_a_circle_that_import_order_hides(tmp_path: Path) -> None:
    """The checker itself: a circle that works from one side only is reported from the other."""
    pkg = tmp_path / "plumasync_circle"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from plumasync_circle import b\nA = 1\n")
    (pkg / "b.py").write_text("from plumasync_circle.a import A\n")
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("import_alone.py")),
                           "plumasync_circle.b", "plumasync_circle.a"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    answers = json.loads(done.stdout)
    assert answers["plumasync_circle.b"] == ""
    assert "ImportError" in answers["plumasync_circle.a"]


def test_no_file_is_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_no_function_is_over_60_lines() -> None:
    long: dict[str, int] = {}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long[f"{module}.{node.name}"] = length
    assert long == {}
