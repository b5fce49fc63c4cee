"""The benchmark scripts stay runnable: a tiny growth run and the README summary.

Speed targets live in the benchmarks themselves (``make bench``); these tests only check that
the scripts run and write what ``bench/summarize.py`` reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench_modules(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCH))
    import _common

    monkeypatch.setattr(_common, "RESULTS", tmp_path / "results")
    return _common


def test_growth_benchmark_writes_its_figures(bench_modules, monkeypatch, tmp_path):
    import bench_growth

    # 96 dimensions: the IVF-PQ index splits vectors into 48 sub-vectors.
    tiny = "--pool-sizes 220,440 --pool-queries 50 --corpus 20000 --corpus-queries 20 --dim 96"
    monkeypatch.setattr(sys, "argv", ["bench_growth.py", *tiny.split()])
    bench_growth.main()
    doc = json.loads((tmp_path / "results" / "growth.json").read_text())
    assert doc["environment"]["cores"] >= 1 and doc["environment"]["versions"]["numpy"]
    pools = doc["figures"]["lareqa_pool_growth"]
    assert [row["candidates"] for row in pools] == [220, 440]
    search = doc["figures"]["corpus_search"]
    # The exact index is the reference; approximate ones report how much of it they find.
    assert search["flat"]["recall_of_exact_top_k"] == 1.0
    for name in ("ivf_flat", "ivf_pq48"):
        assert 0.0 < search[name]["recall_of_exact_top_k"] <= 1.0


def test_summary_renders_every_committed_result(bench_modules, monkeypatch, tmp_path):
    import summarize

    monkeypatch.setattr(summarize, "RESULTS", BENCH / "results")
    monkeypatch.setattr(summarize, "README", tmp_path / "README.md")
    summarize.main()
    text = (tmp_path / "README.md").read_text()
    for name in ("metrics", "encode", "train", "growth", "demo"):
        if (BENCH / "results" / f"{name}.json").exists():
            assert f"bench/results/{name}.json` is missing" not in text


def test_scripts_document_themselves():
    for script in sorted(BENCH.glob("bench_*.py")):
        done = subprocess.run(
            [sys.executable, script.name, "--help"],
            cwd=BENCH,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, (script.name, done.stderr[-2000:])
        assert "usage:" in done.stdout
