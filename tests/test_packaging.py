"""What langmix imports, it declares: every third-party module imported anywhere in
``src/langmix`` belongs to a distribution named in pyproject's dependencies, and the package
ships ``py.typed``."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules() -> set[str]:
    found = set()
    for path in (ROOT / "src" / "langmix").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"langmix", "__future__"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_library_is_declared():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = {
        _normalise(re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0])
        for dep in config["project"]["dependencies"]
    }
    # Imported only where a user asked for them (a tracker), guarded by a clear error.
    optional = {
        _normalise(re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0])
        for extra in config["project"]["optional-dependencies"].values()
        for dep in extra
    }
    owners = packages_distributions()
    undeclared = {}
    for module in sorted(_imported_modules()):
        dists = {_normalise(d) for d in owners.get(module, [module])}
        if not dists & (declared | optional):
            undeclared[module] = sorted(dists)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_package_ships_its_type_hints():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert (ROOT / "src" / "langmix" / "py.typed").is_file()
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["langmix"]
