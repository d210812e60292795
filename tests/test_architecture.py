"""The package's layers import one way, and only the CLI imports lazily.

Data flows config → tasks/pool → prompts/perturb → models → engine → scores → strategies →
training/evaluate → judge → pipeline → report → cli. `rundir` (the run-directory schema) sits
below the pipeline that writes runs through it. Inside a layer imports must not form a cycle.
Run `python tests/test_architecture.py` to print the import graph's cycles and lazy imports.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "activeit"

LAYERS = [
    {"errors", "rng", "atomic", "distributed", "cache", "metrics"},
    {"config"},
    {"tasks"},
    {"pool", "prompts", "perturb"},
    {"replay", "rundir"},
    {"models"},
    {"engine"},
    {"scores"},
    {"strategies"},
    {"training", "evaluate"},
    {"judge"},
    {"pipeline"},
    {"report", "bench"},
    {"cli", "__main__"},
]
LAZY_OK = {"cli"}
"""Modules allowed to import activeit modules inside functions (keeps `activeit --help` light)."""


def _module(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__") or "activeit"


def _layer(module: str) -> int:
    top = module.split(".")[0]
    if top == "activeit":
        return len(LAYERS)
    for rank, layer in enumerate(LAYERS):
        if top in layer:
            return rank
    raise AssertionError(f"module {module!r} is in no layer of tests/test_architecture.py")


def _imports(tree: ast.AST, module: str) -> list[tuple[str, bool, int]]:
    """(imported activeit module, inside a function?, line) for every import in a module."""
    found = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name.removeprefix("activeit."), nested, child.lineno) for a in child.names
                             if a.name.startswith("activeit."))
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if child.module == "activeit":
                    found.extend((a.name, nested, child.lineno) for a in child.names)
                elif child.module.startswith("activeit."):
                    found.append((child.module.removeprefix("activeit."), nested, child.lineno))
            visit(child, inner)

    visit(tree, False)
    return found


def graph() -> dict[str, list[tuple[str, bool, int]]]:
    return {_module(p): _imports(ast.parse(p.read_text()), _module(p)) for p in sorted(SRC.rglob("*.py"))}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            dfs(node)
    return found


def _package_edges(g):
    """Module-level edges, with a package and its submodules counted as one node for cycles."""
    def node(m):
        return m.split(".")[0]
    edges: dict[str, set[str]] = {}
    for mod, imps in g.items():
        for target, _, _ in imps:
            if node(target) != node(mod):
                edges.setdefault(node(mod), set()).add(node(target))
    return edges


def test_no_import_cycles():
    assert cycles(_package_edges(graph())) == []


def test_imports_go_down_the_layers():
    wrong = [f"{mod}:{line} imports {target}" for mod, imps in graph().items() for target, _, line in imps
             if mod != "activeit" and _layer(target) > _layer(mod)]
    assert wrong == []


def test_imports_at_the_top_of_files():
    lazy = [f"{mod}:{line} imports {target} inside a function" for mod, imps in graph().items()
            for target, nested, line in imps if nested and mod.split(".")[0] not in LAZY_OK]
    assert lazy == []


def test_engine_internals_stay_inside_the_engine():
    leaks = [f"{mod}:{line} imports {target}" for mod, imps in graph().items() for target, _, line in imps
             if target.startswith("engine.") and not mod.startswith("engine")]
    assert leaks == []


if __name__ == "__main__":
    g = graph()
    for c in cycles(_package_edges(g)):
        print("cycle:", " -> ".join(c))
    for mod, imps in g.items():
        for target, nested, line in imps:
            if nested:
                print(f"lazy: {mod}:{line} -> {target}")
    sys.exit(0)
