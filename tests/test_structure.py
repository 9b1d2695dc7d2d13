"""The package is its pipeline: every import (at the top of a module or inside a function) goes to
the same stage or an earlier one, no modules import each other in a circle, and no module grows
past 500 lines. Read from the source with ``ast``; nothing is imported."""

import ast

import networkx as nx
from conftest import ROOT

PACKAGE = ROOT / "memcorr"
# the order memcorr/__init__.py gives: shared modules, the mathematics, the seven stages, the driver, the faces
RANK = {
    "errors": 0,
    "losses": 0,
    "cache": 0,
    "algebra": 1,
    "dsl": 1,
    "model": 2,
    "expand": 3,
    "potential": 4,
    "present": 5,
    "printing": 6,
    "verify": 7,
    "pipeline": 8,
    "__init__": 9,
    "cli": 10,
    "__main__": 11,
}


def module_name(path) -> str:
    """``expand`` for ``memcorr/expand/__init__.py``, ``""`` for ``memcorr/__init__.py``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path) -> set[str]:
    """The memcorr modules ``path`` imports, as dotted names below ``memcorr``."""
    name = module_name(path)
    here = name.split(".") if name else []
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[: len(package) - node.level + 1]
            target = [*base, *(node.module.split(".") if node.module else [])]
        elif node.module and node.module.startswith("memcorr"):
            target = node.module.split(".")[1:]
        else:
            continue
        names = [a.name for a in node.names]
        for name in names if not node.module else [None]:
            full = target + ([name] if name else [])
            # `from . import x` names a module x; `from .m import f` names the module m
            out.add(".".join(full) if (PACKAGE.joinpath(*full).with_suffix(".py").exists()) else ".".join(target))
    return {m for m in out if m}


def rank(module: str) -> int:
    return RANK[module.split(".")[0]] if module else RANK["__init__"]


GRAPH = nx.DiGraph()
for path in PACKAGE.rglob("*.py"):
    GRAPH.add_node(module_name(path))
    GRAPH.add_edges_from((module_name(path), m) for m in imports(path))


def test_every_module_has_a_stage():
    assert {m.split(".")[0] for m in GRAPH.nodes if m} <= set(RANK)


def test_no_import_runs_up_the_pipeline():
    up = [(a, b) for a, b in GRAPH.edges if rank(b) > rank(a)]
    assert not up, f"imports up the pipeline: {up}"


def test_no_modules_import_each_other_in_a_circle():
    circles = [c for c in nx.simple_cycles(GRAPH) if len(c) > 1]
    assert not circles, f"import circles: {circles}"


def test_no_module_past_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long


def test_the_structure_check_sees_imports():
    """The reader finds what is there: the driver imports every stage."""
    assert {"expand", "model.lower", "potential.first", "present", "printing"} <= set(GRAPH.successors("pipeline"))
