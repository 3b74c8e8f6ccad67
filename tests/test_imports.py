"""The package's import graph (read from the source, top-level and function-level imports alike) has no cycles:
each module imports only the layers below it. (`planner.explain` ↔ `planner.search.solve` was the last cycle:
explain borrowed solve's greedy placement, now in planner/search/placement.py.)"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "planner"
KNOWN: set[frozenset[str]] = set()


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> nx.DiGraph:
    mods = {_module(p): p for p in ROOT.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg
                for _ in range(node.level - 1):
                    base = base.rsplit(".", 1)[0]
                target = f"{base}.{node.module}" if node.module else base
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                # `from . import x` of a submodule needs the submodule, not the package's own names
                for t in subs or [target]:
                    if t in mods and t != m:
                        g.add_edge(m, t)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in mods and a.name != m:
                        g.add_edge(m, a.name)
    return g


def test_no_import_cycles_but_the_known_one():
    cycles = {frozenset(c) for c in nx.simple_cycles(import_graph())}
    assert cycles <= KNOWN, sorted(sorted(c) for c in cycles - KNOWN)


def test_the_fleet_package_imports_only_downwards():
    g = import_graph().subgraph([m for m in import_graph() if m.startswith("planner.fleet")])
    assert nx.is_directed_acyclic_graph(g)
    order = ["request", "pools", "table", "model", "lp", "oracle", "search", "verify", "result"]
    for a, b in g.edges:
        if a != "planner.fleet" and b != "planner.fleet":
            assert order.index(b.split(".")[-1]) < order.index(a.split(".")[-1]), (a, b)
