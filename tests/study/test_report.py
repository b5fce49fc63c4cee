"""The study report, built from a synthetic study directory (no model, no data, a few seconds).

The synthetic study has three sizes, untrained + mono/cross/hybrid/random, two seeds, one
LAReQA evaluation set and one MIRACL set. Per-query scores share a per-question difficulty
(as real translations do) and every row's metrics are computed from its own per-query file
with :func:`headline`, so the tables and the statistics agree. Hybrid is built to equal
cross exactly at the smallest size (difference 0, never significant) and to beat every
baseline clearly at the largest (always significant).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langmix.outputs import safe_name
from langmix.study.report import build_report, load_rows
from langmix.study.statistics import headline, seed_summary

LANGS = ["en", "de", "es"]
N_QUESTIONS = 40
SIZES = [  # label, total, non-embedding; listed out of size order on purpose
    ("L12", 117_000_000, 21_000_000),
    ("L2", 100_000_000, 3_500_000),
    ("L6", 107_000_000, 10_600_000),
]
SEEDS = [0, 1]
# Quality shift per strategy, and hybrid's extra gain over cross per size.
SHIFT = {"untrained": -0.15, "mono": 0.0, "cross": 0.03, "random": 0.01}
HYBRID_GAIN = {"L2": 0.0, "L6": 0.03, "L12": 0.10}
BASE = {"L2": 0.40, "L6": 0.48, "L12": 0.55}
LAREQA = "xquad-r"
MIRACL = "miracl:sw"
DESCRIPTION = "Synthetic three-size study; MIRACL cut to one language."
LAREQA_METRICS = (
    "map_mono",
    "map_cross",
    "map_multi",
    "r1_mono",
    "r1_cross",
    "r10_multi",
    "rank_distance",
)
MIRACL_METRICS = ("ndcg@10", "recall@100", "map@100")


def _lareqa_arrays(quality: float, difficulty: np.ndarray, rng: np.random.Generator) -> dict:
    n_lang = len(LANGS)
    nq = N_QUESTIONS * n_lang
    question = np.repeat(np.arange(N_QUESTIONS), n_lang)
    query_lang = np.tile(np.arange(n_lang), N_QUESTIONS)

    def score(shape: tuple[int, ...]) -> np.ndarray:
        d = difficulty[question].reshape((nq,) + (1,) * (len(shape) - 1))
        return np.clip(quality + d + rng.normal(0, 0.05, shape), 0.0, 1.0)

    cross_ap = score((nq, n_lang))
    cross_ap[np.arange(nq), query_lang] = np.nan
    cross_r1 = (cross_ap > 0.5).astype(float)
    cross_r1[np.arange(nq), query_lang] = np.nan
    multi_ap = score((nq,))
    return {
        "languages": np.array(LANGS),
        "parallel_ids": np.array([f"p{q}" for q in question]),
        "query_lang": query_lang,
        "n_relevant": np.full(nq, n_lang),
        "mono_ap": score((nq,)),
        "mono_recall1": (score((nq,)) > 0.5).astype(float),
        "cross_ap": cross_ap,
        "cross_recall1": cross_r1,
        "multi_ap": multi_ap,
        "multi_recall10": np.clip(multi_ap + 0.2, 0, 1),
        "rank_distance": 200.0 * (1.0 - multi_ap) + rng.uniform(0, 5, nq),
    }


def _miracl_arrays(quality: float, difficulty: np.ndarray, rng: np.random.Generator) -> dict:
    base = quality + difficulty + rng.normal(0, 0.05, difficulty.shape)
    return {
        "query_ids": np.array([f"q{i}" for i in range(difficulty.size)]),
        "ndcg@10": np.clip(base, 0, 1),
        "recall@100": np.clip(base + 0.3, 0, 1),
        "map@100": np.clip(base - 0.1, 0, 1),
    }


def _per_pair(arrays: dict) -> dict[str, float]:
    ap = arrays["cross_ap"].copy()
    rows = np.arange(ap.shape[0])
    ap[rows, arrays["query_lang"]] = arrays["mono_ap"]
    return {
        f"{x}-{y}": float(np.nanmean(ap[arrays["query_lang"] == i, j]))
        for i, x in enumerate(LANGS)
        for j, y in enumerate(LANGS)
    }


def _cells() -> list[tuple[str, str, float | None, int | None]]:
    """(label, strategy, alpha, seed) of the grid, untrained first per model."""
    cells = []
    for label, *_ in SIZES:
        cells.append((label, "untrained", None, None))
        for seed in SEEDS:
            for strategy in ("mono", "cross", "hybrid", "random"):
                cells.append((label, strategy, 0.5 if strategy == "hybrid" else None, seed))
    return cells


def _row(study: Path, cell: tuple, eval_set: str, arrays: dict, total: int, ne: int) -> dict:
    label, strategy, alpha, seed = cell
    name = f"{label}/untrained" if seed is None else f"{label}/{strategy}-s{seed}"
    rel = f"cells/{name}/{safe_name(eval_set)}/per_query.npz"
    (study / rel).parent.mkdir(parents=True, exist_ok=True)
    np.savez(study / rel, **arrays)
    lareqa = eval_set == LAREQA
    metrics = LAREQA_METRICS if lareqa else MIRACL_METRICS
    row: dict[str, Any] = {
        "study": "synthetic",
        "cell": name,
        "model": f"offline:multilingual-e5-small@{label}",
        "model_label": label,
        "parameters": {"total": total, "non_embedding": ne},
        "strategy": strategy,
        "alpha": alpha,
        "seed": seed,
        "train_set": None if seed is None else "mlqa-r",
        "eval_set": eval_set,
        "eval_kind": "lareqa" if lareqa else "miracl",
        "metrics": {m: headline(arrays, m) for m in metrics},
        "per_query": rel,
        "train_seconds": None if seed is None else 60.0,
        "examples_per_s": None if seed is None else 100.0,
        "eval_seconds": 5.0,
        "finished_at": "2025-01-01T00:00:00Z",
    }
    if lareqa:
        row["per_pair_map"] = _per_pair(arrays)
    return row


def make_study(study: Path) -> list[dict]:
    """Write a synthetic study directory; returns the rows as written (before damage)."""
    rng = np.random.default_rng(1)
    difficulty = {LAREQA: rng.normal(0, 0.1, N_QUESTIONS), MIRACL: rng.normal(0, 0.1, 60)}
    params = {label: (total, ne) for label, total, ne in SIZES}
    rows = []
    for eval_set, make in ((LAREQA, _lareqa_arrays), (MIRACL, _miracl_arrays)):
        cross_arrays: dict[tuple[str, int | None], dict] = {}
        for cell in _cells():
            label, strategy, _, seed = cell
            if strategy == "hybrid" and HYBRID_GAIN[label] == 0.0:
                arrays = cross_arrays[(label, seed)]  # identical to cross: difference 0
            else:
                shift = (
                    SHIFT["cross"] + HYBRID_GAIN[label] if strategy == "hybrid" else SHIFT[strategy]
                )
                seed_rng = np.random.default_rng(rng.integers(2**32))
                arrays = make(BASE[label] + shift, difficulty[eval_set], seed_rng)
            if strategy == "cross":
                cross_arrays[(label, seed)] = arrays
            rows.append(_row(study, cell, eval_set, arrays, *params[label]))
    # A stale row for one cell that a later row replaces ("keep the last").
    stale = json.loads(json.dumps(rows[0]))
    stale["metrics"]["map_mono"] = 0.987654
    lines = [json.dumps(stale)] + [json.dumps(r) for r in rows]
    text = "\n".join(lines) + "\n" + json.dumps(rows[1])[:57]  # an interrupted final write
    (study / "results.jsonl").write_text(text, encoding="utf-8")
    (study / "study.toml").write_text(
        f'[study]\nname = "synthetic"\ndescription = "{DESCRIPTION}"\n', encoding="utf-8"
    )
    return rows


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict], str]:
    study = tmp_path_factory.mktemp("study")
    rows = make_study(study)
    path = build_report(study)
    return study, rows, path.read_text(encoding="utf-8")


def _section(report: str, title: str) -> str:
    start = report.index(f"## {title}\n")
    end = report.find("\n## ", start + 1)
    return report[start : end if end >= 0 else None]


def _subsection(section: str, title: str) -> str:
    start = section.index(f"### {title}")
    end = section.find("\n### ", start + 1)
    return section[start : end if end >= 0 else None]


def _table_row(text: str, first_cell: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {first_cell} |"))


def _mean_sd(rows: list[dict], label: str, strategy: str, eval_set: str, metric: str) -> str:
    values = [
        r["metrics"][metric]
        for r in rows
        if r["model_label"] == label and r["strategy"] == strategy and r["eval_set"] == eval_set
    ]
    mean, sd = seed_summary(values)
    digits = 1 if metric == "rank_distance" else 3
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def test_load_rows_tolerates_cut_last_line_and_keeps_last_duplicate(built) -> None:
    study, rows, _ = built
    loaded = load_rows(study / "results.jsonl")
    assert loaded.last_line_cut
    assert len(loaded.rows) == len(rows)
    first = next(r for r in loaded.rows if r["cell"] == rows[0]["cell"] and r["eval_set"] == LAREQA)
    assert first["metrics"]["map_mono"] == rows[0]["metrics"]["map_mono"] != 0.987654


def test_report_sections_and_run_summary(built) -> None:
    _, _, report = built
    assert report.startswith("# Scaling study: synthetic\n")
    for title in ("What was run / what was cut", "Answer", "Results", "Significance", "Plots"):
        assert f"\n## {title}\n" in report
    run = _section(report, "What was run / what was cut")
    assert DESCRIPTION in run
    assert "depth-cut proxy" in run and "configs/paper-gpu.toml" in run
    assert "- Seeds: 0, 1" in run and "- Hybrid alphas: 0.5" in run
    assert "- Train set: mlqa-r" in run and f"- Evaluation sets: {LAREQA}, {MIRACL}" in run
    # 3 models x 8 trained cells x 60 s, each counted once although evaluated twice.
    assert "train 24.0 min" in run
    assert "10,600,000" in run  # non-embedding parameters of L6
    assert "last line was cut" in run
    assert "Missing from the grid" not in run


def test_tables_hold_the_rows_numbers_in_size_order(built) -> None:
    _, rows, report = built
    results = _section(report, "Results")
    # Ordered by non-embedding parameters, not by the order of the rows.
    order = [results.index(f"### {LAREQA} — {label} ") for label in ("L2", "L6", "L12")]
    assert order == sorted(order)
    l6 = _subsection(results, f"{LAREQA} — L6")
    for metric in ("map_mono", "map_cross", "map_multi", "rank_distance"):
        for strategy in ("mono", "random"):
            assert _mean_sd(rows, "L6", strategy, LAREQA, metric) in l6
    assert _mean_sd(rows, "L6", "untrained", LAREQA, "map_multi") in _table_row(l6, "untrained")
    assert "± " not in _table_row(l6, "untrained")  # one untrained run: no sd
    hybrid = _table_row(l6, "hybrid α=0.5")
    assert _mean_sd(rows, "L6", "hybrid", LAREQA, "r10_multi") in hybrid
    miracl = _subsection(results, f"{MIRACL} — L12")
    assert "nDCG@10" in miracl and "MAP@100" in miracl
    assert _mean_sd(rows, "L12", "cross", MIRACL, "ndcg@10") in _table_row(miracl, "cross")


def test_every_plot_exists_is_a_png_and_is_linked(built) -> None:
    study, _, report = built
    expected = [
        f"{kind}_{name}.png"
        for name in ("xquad-r",)
        for kind in ("map_vs_size", "hybrid_gain", "heatmap", "rank_distance_vs_size")
    ] + ["map_vs_size_miracl-sw.png", "hybrid_gain_miracl-sw.png"]
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", _section(report, "Plots"))
    assert sorted(links) == sorted(f"plots/{name}" for name in expected)
    for link in links:
        assert (study / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((study / "plots").glob(".*tmp*"))


def test_clearly_better_hybrid_is_significant_and_equal_hybrid_is_not(built) -> None:
    _, _, report = built
    significance = _section(report, "Significance")
    large = _subsection(significance, f"{LAREQA} — L12")
    for metric in ("mAP mono", "mAP cross", "mAP multi", "rank distance ↓"):
        line = next(
            row
            for row in large.splitlines()
            if row.startswith(f"| {metric} | hybrid α=0.5 − cross |")
        )
        assert "**better**" in line
        difference = float(line.split("|")[5].split("[")[0])
        assert difference > 0 if metric.startswith("mAP") else difference < 0
    small = _subsection(significance, f"{LAREQA} — L2")
    line = next(r for r in small.splitlines() if "| mAP multi | hybrid α=0.5 − cross |" in r)
    assert "+0.0000 [+0.0000, +0.0000]" in line and line.endswith("| n.s. |")


def test_answer_covers_every_size_and_names_significance(built) -> None:
    _, _, report = built
    answer = _section(report, "Answer")
    paragraphs = [p for p in answer.split("\n\n") if p.startswith("**")]
    assert paragraphs[0].startswith(f"**{LAREQA}, mAP multi, hybrid α=0.5 − best baseline**")
    multi = paragraphs[0]
    for label in ("L2", "L6", "L12"):
        assert f"{label} (" in multi
    assert re.search(
        r"L2 \(3\.5M\): \+0\.0000 \[\+0\.0000, \+0\.0000\] vs cross, not significant", multi
    )
    assert re.search(
        r"L12 \(21\.0M\): \+0\.\d{4} \[\+0\.\d{4}, \+0\.\d{4}\] vs \w+, significant, better", multi
    )
    assert "From L2 to L12 the difference changes by +" in multi
    assert "CI excludes 0 at: " in multi and "L12" in multi.split("CI excludes 0 at: ")[1]
    assert any(p.startswith(f"**{MIRACL}, nDCG@10") for p in paragraphs)
    assert "at most ~0.01 mAP" in answer and "no significance tests" in answer


def test_rebuild_gives_the_same_report(built) -> None:
    study, _, report = built
    again = build_report(study).read_text(encoding="utf-8")

    def strip(text: str) -> str:
        return re.sub(r"^Built: .*$", "", text, flags=re.MULTILINE)

    assert strip(again) == strip(report)
    assert not list(study.glob(".*tmp*"))
