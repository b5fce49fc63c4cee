"""The README's sentence-transformers example runs, and the README shows it verbatim."""

from __future__ import annotations

import ast
import re
import runpy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "sentence_transformers_quickstart.py"
README = REPO / "README.md"


def example_body() -> str:
    """The example as the README shows it: the file without its module docstring."""
    text = EXAMPLE.read_text(encoding="utf-8")
    docstring = ast.parse(text).body[0]
    lines = text.splitlines(keepends=True)
    return "".join(lines[docstring.end_lineno :]).strip() + "\n"


def test_example_trains_and_scores(tmp_path, data_dir, offline_cache, monkeypatch, capsys):
    pytest.importorskip("datasets")
    monkeypatch.setenv("LANGMIX_DATA_DIR", str(data_dir))
    monkeypatch.setenv("LANGMIX_EXAMPLE_MODEL", "offline:multilingual-e5-small@L2")
    monkeypatch.setenv("LANGMIX_EXAMPLE_STEPS", "2")
    monkeypatch.setenv("LANGMIX_EXAMPLE_ARTICLES", "1")
    monkeypatch.setenv("LANGMIX_EXAMPLE_OUT", str(tmp_path / "out"))
    namespace = runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert namespace["STEPS"] == 2
    result = namespace["result"]
    assert set(result.map) == {"mono", "cross", "multi"}
    assert all(0.0 <= value <= 1.0 for value in result.map.values())
    assert namespace["args"].prompts == {"query": "query: ", "passage": "passage: "}
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed.startswith("{'mono': ")


def test_readme_shows_the_example_verbatim():
    readme = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    if not blocks:
        pytest.skip(
            "README.md has no ```python block yet; paste docs/examples/"
            "sentence_transformers_quickstart.py (from `import os` on) into one"
        )
    body = example_body()
    assert any(body in block for block in blocks), (
        "README.md's ```python blocks do not hold docs/examples/sentence_transformers_quickstart.py "
        "verbatim (from `import os` on); copy the file there again"
    )
