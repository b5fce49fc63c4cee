"""The README's sentence-transformers example runs (tests/docs/test_readme.py checks that the
README shows this very file, through scripts/update_readme.py --check)."""

from __future__ import annotations

import runpy
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "sentence_transformers_quickstart.py"


def test_example_trains_and_scores(tmp_path, data_dir, offline_cache, monkeypatch, capsys):
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
