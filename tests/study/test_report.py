"""The study report, built from a synthetic study directory (no model, no data, a few seconds).

The synthetic study has three sizes (listed out of size order), untrained + mono / cross /
hybrid / random, three seeds (listed out of order), a hybrid α sweep (0.25, 0.5, 0.75) at
one size and α = 0.5 at the others, two test sets (one LAReQA, one MIRACL) and the
checkpoint-choosing part of the training set as a third, LAReQA, evaluation set
(``mlqa-r:validation``). Trained rows carry a ``training`` dict as the runner writes it.

Per-query scores share a per-question difficulty (as real translations do) and every row's
metrics are computed from its own per-query arrays with :func:`headline`, so the tables and
the statistics agree. By construction:

* hybrid equals cross exactly at the smallest size (difference 0, never significant) and is
  clearly better than every baseline at the largest, so its gains grow with size;
* on the validation part, no strategy beats the untrained model at one size
  (``UNLEARNED``), and every strategy does at the others.

Every expected number is computed here, independently of the report's code, from the
per-query arrays: seed means of :func:`headline`, their differences, the synergy margins
and ``np.polyfit`` slopes; the report's printed numbers must agree to their precision.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langmix.outputs import safe_name
from langmix.study.comparisons import BASELINE_NAMES, TESTED
from langmix.study.report import build_report, load_rows
from langmix.study.results import METRIC_NAMES, Arm, Size
from langmix.study.statistics import headline

LANGS = ["en", "de", "es"]
SIZES = [  # label, total, non-embedding; listed out of size order on purpose
    ("L12", 117_000_000, 21_000_000),
    ("L2", 100_000_000, 3_500_000),
    ("L6", 107_000_000, 10_600_000),
]
BY_SIZE = ["L2", "L6", "L12"]  # ascending non-embedding parameters
NON_EMBEDDING = {label: ne for label, _, ne in SIZES}
SEEDS = [2, 0, 1]  # listed out of order on purpose: the report lists seeds in order
STRATEGIES = ("mono", "cross", "hybrid", "random")
# Hybrid alphas per size: the α sweep at L6 only (so only L6 has an α frontier).
SWEEP = "L6"
ALPHAS = {"L2": (0.5,), "L6": (0.25, 0.5, 0.75), "L12": (0.5,)}
# Quality shift per strategy, and hybrid's extra gain over cross per (size, α).
SHIFT = {"untrained": -0.15, "mono": 0.0, "cross": 0.03, "random": 0.01}
HYBRID_GAIN = {
    ("L2", 0.5): 0.0,  # hybrid *is* cross here: every difference to cross is exactly 0
    ("L6", 0.25): 0.015,
    ("L6", 0.5): 0.03,
    ("L6", 0.75): 0.02,
    ("L12", 0.5): 0.10,
}
BASE = {"L2": 0.40, "L6": 0.48, "L12": 0.55}
LAREQA = "xquad-r"
MIRACL = "miracl:sw"
VALIDATION = "mlqa-r:validation"
KIND = {LAREQA: "lareqa", MIRACL: "miracl", VALIDATION: "lareqa"}
# Parallel questions (LAReQA) or queries (MIRACL) per evaluation set: the clusters.
N_QUESTIONS = {LAREQA: 40, MIRACL: 60, VALIDATION: 30}
# On the validation part, L6's untrained model beats every trained one.
UNLEARNED = "L6"
UNLEARNED_SHIFT = 0.15
TOTAL_STEPS = {"L2": 200, "L6": 300, "L12": 400}
LEARNING_RATE = {"L2": 1e-4, "L6": 5e-5, "L12": 2e-5}
TEMPERATURE = 0.05
# Mono batches of these sizes' mono and hybrid cells cannot use Spanish.
DROPPED = {"L2": {"mlqa-r": ["es"]}}
TRAIN_SECONDS = 60.0
EVAL_SECONDS = 5.0
NEWEST = "2025-06-30T23:59:59Z"
DESCRIPTION = "Synthetic three-size study; MIRACL cut to one language."
METRICS = {
    "lareqa": (
        "map_mono",
        "map_cross",
        "map_multi",
        "r1_mono",
        "r1_cross",
        "r10_multi",
        "rank_distance",
    ),
    "miracl": ("ndcg@10", "recall@100", "map@100"),
}
NAME_TO_METRIC = {name: metric for metric, name in METRIC_NAMES.items()}


@dataclass(frozen=True)
class Cell:
    """One run of the synthetic grid, named as the runner names it."""

    label: str
    strategy: str
    alpha: float | None = None
    seed: int | None = None

    @property
    def name(self) -> str:
        if self.strategy == "untrained":
            return f"{self.label}/untrained"
        alpha = f"-a{self.alpha:g}" if self.alpha is not None else ""
        return f"{self.label}/{self.strategy}{alpha}-s{self.seed}"

    @property
    def arm(self) -> tuple[str, float | None]:
        return self.strategy, self.alpha

    @property
    def arm_label(self) -> str:
        return self.strategy if self.alpha is None else f"{self.strategy} α={self.alpha:g}"


@dataclass
class Synthetic:
    """What :func:`make_study` wrote: the rows (before damage) and every cell's arrays."""

    directory: Path
    rows: list[dict[str, Any]]
    arrays: dict[tuple[str, Cell], dict[str, np.ndarray]]
    seeds: list[int]

    def seed_mean(self, eval_set: str, label: str, arm: tuple, metric: str) -> float:
        """Mean over seeds of the cell's headline, from its per-query arrays."""
        values = [
            headline(a, metric)
            for (ev, cell), a in self.arrays.items()
            if ev == eval_set and cell.label == label and cell.arm == arm
        ]
        assert values, (eval_set, label, arm)
        return float(np.mean(values))

    def contrast(self, eval_set: str, label: str, alpha: float, against: str, metric: str):
        """hybrid(α) − baseline, or the synergy margin, of seed-mean headlines."""
        hybrid = self.seed_mean(eval_set, label, ("hybrid", alpha), metric)
        if against == "interpolation":
            mono = self.seed_mean(eval_set, label, ("mono", None), metric)
            cross = self.seed_mean(eval_set, label, ("cross", None), metric)
            return hybrid - (alpha * mono + (1 - alpha) * cross)
        return hybrid - self.seed_mean(eval_set, label, (against, None), metric)

    def slope(self, eval_set: str, alpha: float, against: str, metric: str) -> float:
        """Least-squares slope of a contrast over log2 non-embedding parameters."""
        x = np.log2([NON_EMBEDDING[label] for label in BY_SIZE])
        y = [self.contrast(eval_set, label, alpha, against, metric) for label in BY_SIZE]
        return float(np.polyfit(x, y, 1)[0])


# --------------------------------------------------------------------------- construction


def _lareqa_arrays(quality: float, difficulty: np.ndarray, rng: np.random.Generator) -> dict:
    n_lang = len(LANGS)
    n_questions = difficulty.size
    nq = n_questions * n_lang
    question = np.repeat(np.arange(n_questions), n_lang)
    query_lang = np.tile(np.arange(n_lang), n_questions)

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


def _cells(seeds: list[int], skip: frozenset[tuple[str, str]]) -> list[Cell]:
    """The grid in the runner's order: per model untrained first, then per seed."""
    cells = []
    for label, *_ in SIZES:
        cells.append(Cell(label, "untrained"))
        for seed in seeds:
            for strategy in STRATEGIES:
                if (label, strategy) in skip:
                    continue
                alphas = ALPHAS[label] if strategy == "hybrid" else (None,)
                cells += [Cell(label, strategy, alpha, seed) for alpha in alphas]
    return cells


def _training(cell: Cell) -> dict[str, Any]:
    """The ``training`` dict of a trained cell, as the runner copies it from the trainer.

    Validation every 50 steps. At ``UNLEARNED`` the loss only rises from step 0, so the
    best step is 0 and training stops early; elsewhere seed ``s`` is best at
    ``total - 50 s`` and stops early one validation later when that is before the end.
    """
    assert cell.seed is not None
    total = TOTAL_STEPS[cell.label]
    offset = 0.01 * STRATEGIES.index(cell.strategy) + 0.001 * cell.seed
    if cell.label == UNLEARNED:
        steps = [0, 50, 100]
        losses = [2.0 + 0.1 * i + offset for i in range(len(steps))]
        last, stopped = 100, True
    else:
        best = total - 50 * cell.seed
        last = min(total, best + 50)
        stopped = last < total
        steps = list(range(0, last + 1, 50))
        losses = [1.5 + 1e-5 * (s - best) ** 2 + offset for s in steps]
    history = [
        {"step": s, "validation_loss": round(v, 6)} for s, v in zip(steps, losses, strict=True)
    ]
    dropped = DROPPED.get(cell.label, {}) if cell.strategy in ("mono", "hybrid") else {}
    return {
        "steps": last,
        "total_steps": total,
        "best_step": min(history, key=lambda h: h["validation_loss"])["step"],
        "stopped_early": stopped,
        "validation_history": history,
        "temperature": TEMPERATURE,
        "learning_rate": LEARNING_RATE[cell.label],
        "split": {
            "mlqa-r": {
                "train": "0123456789abcdef",
                "train_groups": 70,
                "validation": "fedcba9876543210",
                "validation_groups": 10,
                "test": "00112233aabbccdd",
                "test_groups": 20,
            }
        },
        "mono_languages_dropped": dropped,
    }


def _row(study: Path, cell: Cell, eval_set: str, arrays: dict, training: bool, minute: int) -> dict:
    params = {label: (total, ne) for label, total, ne in SIZES}[cell.label]
    rel = f"cells/{cell.name}/{safe_name(eval_set)}/per_query.npz"
    (study / rel).parent.mkdir(parents=True, exist_ok=True)
    np.savez(study / rel, **arrays)
    trained = cell.strategy != "untrained"
    row: dict[str, Any] = {
        "study": "synthetic",
        "cell": cell.name,
        "model": f"offline:multilingual-e5-small@{cell.label}",
        "model_label": cell.label,
        "parameters": {"total": params[0], "non_embedding": params[1]},
        "strategy": cell.strategy,
        "alpha": cell.alpha,
        "seed": cell.seed,
        "train_set": "mlqa-r" if trained else None,
        "eval_set": eval_set,
        "eval_kind": KIND[eval_set],
        "metrics": {m: headline(arrays, m) for m in METRICS[KIND[eval_set]]},
        "per_query": rel,
        "train_seconds": TRAIN_SECONDS if trained else None,
        "examples_per_s": 100.0 if trained else None,
        "eval_seconds": EVAL_SECONDS,
        "finished_at": f"2025-01-{1 + minute // 1440:02d}T{minute // 60 % 24:02d}:"
        f"{minute % 60:02d}:00Z",
    }
    if KIND[eval_set] == "lareqa":
        row["per_pair_map"] = _per_pair(arrays)
    if trained and training:
        row["training"] = _training(cell)
    return row


def make_study(
    study: Path,
    *,
    seeds: list[int] = SEEDS,
    eval_sets: tuple[str, ...] = (LAREQA, MIRACL, VALIDATION),
    skip: frozenset[tuple[str, str]] = frozenset(),
    training: bool = True,
) -> Synthetic:
    """Write a synthetic study directory (rows, per-query files, study.toml).

    ``results.jsonl`` starts with a stale copy of the first row (a later row replaces it)
    and ends with a cut copy of the second (an interrupted write); one row in the middle is
    the newest.
    """
    rng = np.random.default_rng(1)
    rows: list[dict] = []
    arrays_of: dict[tuple[str, Cell], dict] = {}
    for eval_set in eval_sets:
        lareqa = KIND[eval_set] == "lareqa"
        make = _lareqa_arrays if lareqa else _miracl_arrays
        difficulty = rng.normal(0, 0.1, N_QUESTIONS[eval_set])
        for cell in _cells(seeds, skip):
            if cell.strategy == "hybrid":
                gain = HYBRID_GAIN[(cell.label, cell.alpha)]
                shift = SHIFT["cross"] + gain
            else:
                gain, shift = None, SHIFT[cell.strategy]
            if eval_set == VALIDATION and cell == Cell(UNLEARNED, "untrained"):
                shift = UNLEARNED_SHIFT
            if gain == 0.0:  # identical to cross of the same seed: difference 0
                arrays = arrays_of[(eval_set, Cell(cell.label, "cross", None, cell.seed))]
            else:
                seed_rng = np.random.default_rng(rng.integers(2**32))
                arrays = make(BASE[cell.label] + shift, difficulty, seed_rng)
            arrays_of[(eval_set, cell)] = arrays
            rows.append(_row(study, cell, eval_set, arrays, training, len(rows)))
    rows[len(rows) // 2]["finished_at"] = NEWEST
    stale = json.loads(json.dumps(rows[0]))
    stale["metrics"]["map_mono"] = 0.987654
    lines = [json.dumps(stale)] + [json.dumps(r) for r in rows]
    text = "\n".join(lines) + "\n" + json.dumps(rows[1])[:57]
    (study / "results.jsonl").write_text(text, encoding="utf-8")
    (study / "study.toml").write_text(
        f'[study]\nname = "synthetic"\ndescription = "{DESCRIPTION}"\n', encoding="utf-8"
    )
    return Synthetic(study, rows, arrays_of, sorted(seeds))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Synthetic, str]:
    synthetic = make_study(tmp_path_factory.mktemp("study"))
    path = build_report(synthetic.directory)
    return synthetic, path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def partial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Synthetic, str]:
    """One seed, LAReQA only, no training dicts, and L2 random not (yet) run."""
    synthetic = make_study(
        tmp_path_factory.mktemp("partial"),
        seeds=[0],
        eval_sets=(LAREQA,),
        skip=frozenset({("L2", "random")}),
        training=False,
    )
    path = build_report(synthetic.directory, n_resamples=400)
    return synthetic, path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- reading the report


def _section(report: str, title: str) -> str:
    start = report.index(f"\n## {title}\n")
    end = report.find("\n## ", start + 1)
    return report[start : end if end >= 0 else None]


def _subsection(section: str, title: str) -> str:
    """The ``### {title}...`` subsection (``title`` may be a prefix of the heading)."""
    start = section.index(f"### {title}")
    end = section.find("\n### ", start + 1)
    return section[start : end if end >= 0 else None]


def _table(text: str) -> list[list[str]]:
    """Body rows of the markdown tables in ``text``, as lists of cells."""
    lines = text.splitlines()
    rows = []
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        if line.startswith("| ") and not after.startswith("|---"):  # not a header
            rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return rows


def _table_row(text: str, first_cell: str) -> list[str]:
    return next(r for r in _table(text) if r[0] == first_cell)


def _interval(text: str) -> tuple[float, float, float]:
    """``+0.0343 [+0.0196, +0.0491]`` -> (0.0343, 0.0196, 0.0491)."""
    m = re.fullmatch(r"([+-]\d+\.\d+) \[([+-]\d+\.\d+), ([+-]\d+\.\d+)\]", text)
    assert m, text
    return float(m[1]), float(m[2]), float(m[3])


def _places(text: str) -> int:
    return len(text.split(".")[1])


def _agrees(printed: str, expected: float) -> bool:
    """Whether ``printed`` is ``expected`` rounded to the printed number of places."""
    return abs(float(printed) - expected) <= 0.5 * 10 ** -_places(printed) + 1e-12


def _metric(name: str) -> str:
    return NAME_TO_METRIC[name.removesuffix(" ↓")]


def _comparison(text: str) -> tuple[float, str]:
    """``hybrid α=0.25 − interpolation`` -> (0.25, "interpolation")."""
    from langmix.study.comparisons import BASELINE_NAMES

    m = re.fullmatch(r"hybrid α=([\d.]+) − (.+)", text)
    assert m, text
    by_name = {name: key for key, name in BASELINE_NAMES.items()}
    return float(m[1]), by_name[m[2]]


# Columns of the effect tables (metric, comparison, difference, Holm-level CI, se, p,
# p Holm, MDE, p equivalence Holm, verdict); slope tables add the lack of fit before it.
HOLM_CI, P, P_HOLM, VERDICT, SLOPE_VERDICT = 3, 5, 6, -1, -1


def _effect_tables(report: str) -> dict[tuple[str, str], list[list[str]]]:
    """Rows of the effect/synergy tables per (evaluation set, size label), and of the slope
    tables per (evaluation set, "slope")."""
    effects = _section(report, "Effects, synergy and slopes")
    out = {}
    for block in effects.split("\n### ")[1:]:
        heading = block.splitlines()[0]
        m = re.fullmatch(r"(.+) — (?:(L\d+) \(.+\)|slope per doubling \((.+)\))", heading)
        assert m, heading
        key = (m[1], m[2] or "slope")
        if m[3]:
            assert m[3] == ", ".join(BY_SIZE)  # fitted on every size, ascending
        out[key] = _table(block)
    return out


# --------------------------------------------------------------------------- loading, run summary


def test_load_rows_tolerates_cut_last_line_and_keeps_last_duplicate(built) -> None:
    synthetic, _ = built
    rows = synthetic.rows
    loaded = load_rows(synthetic.directory / "results.jsonl")
    assert loaded.last_line_cut
    assert loaded.skipped == [len(rows) + 2]  # the cut line, after the stale copy and the rows
    assert len(loaded.rows) == len(rows)
    first = next(r for r in loaded.rows if r["cell"] == rows[0]["cell"] and r["eval_set"] == LAREQA)
    assert first["metrics"]["map_mono"] == rows[0]["metrics"]["map_mono"] != 0.987654


def test_report_opens_with_the_answer_and_has_its_sections_in_order(built) -> None:
    synthetic, report = built
    assert report.startswith("# Scaling study: synthetic\n")
    # The newest row's time (not the last row's, not the clock), after deduplication.
    assert f"\nBuilt from `results.jsonl` ({len(synthetic.rows)} rows; newest {NEWEST}).\n" in (
        report
    )
    titles = re.findall(r"^## (.+)$", report, flags=re.MULTILINE)
    assert titles == [
        "Answer",
        "What was run / what was cut",
        "Training",
        "Results",
        "Effects, synergy and slopes",
        "Power of the primary claims",
        "Plots",
    ]
    assert "Significance" not in report and "best baseline" not in report


def test_run_summary(built) -> None:
    synthetic, report = built
    run = _section(report, "What was run / what was cut")
    assert DESCRIPTION in run
    assert "depth-cut proxy" in run and "configs/paper-gpu.toml" in run
    assert "- Seeds: 0, 1, 2\n" in run and "- Hybrid alphas: 0.25, 0.5, 0.75\n" in run
    assert "- Train set: mlqa-r\n" in run
    assert f"- Evaluation sets: {LAREQA}, {MIRACL}, {VALIDATION}\n" in run
    cells = {r["cell"] for r in synthetic.rows}
    assert f"- Cells: {len(cells)} ({len(synthetic.rows)} rows of (cell, evaluation set))" in run
    # Each trained cell's time counted once although it was evaluated three times.
    trained = {r["cell"] for r in synthetic.rows if r["strategy"] != "untrained"}
    assert f"train {len(trained) * TRAIN_SECONDS / 60:.1f} min" in run
    assert f"eval {len(synthetic.rows) * EVAL_SECONDS / 60:.1f} min" in run
    assert "10,600,000" in run  # non-embedding parameters of L6
    assert "last line was cut" in run
    # The α sweep exists at L6 only, by design: L2 and L12 miss nothing.
    assert "Missing from the grid" not in run


def test_partial_run_names_exactly_the_missing_cell(partial) -> None:
    _, report = partial
    run = _section(report, "What was run / what was cut")
    assert f"Missing from the grid (1): L2 random seed 0 on {LAREQA}." in run
    assert "- Seeds: 0\n" in run
    assert "## Training" not in report  # no row carries a training dict


# --------------------------------------------------------------------------- results tables


def _mean_sd(synthetic: Synthetic, eval_set: str, label: str, arm: tuple, metric: str) -> str:
    values = [
        headline(a, metric)
        for (ev, cell), a in synthetic.arrays.items()
        if ev == eval_set and cell.label == label and cell.arm == arm
    ]
    places = 1 if metric == "rank_distance" else 3
    if len(values) == 1:
        return f"{values[0]:.{places}f}"
    return f"{np.mean(values):.{places}f} ± {np.std(values, ddof=1):.{places}f}"


def test_tables_hold_the_rows_numbers_in_size_order(built) -> None:
    synthetic, report = built
    results = _section(report, "Results")
    # Ordered by non-embedding parameters, not by the order of the rows.
    order = [results.index(f"### {LAREQA} — {label} ") for label in BY_SIZE]
    assert order == sorted(order)
    l6 = _subsection(results, f"{LAREQA} — L6 ")
    for metric, column in (("map_mono", 2), ("map_cross", 3), ("map_multi", 4)):
        for arm in (("mono", None), ("random", None), ("hybrid", 0.25), ("hybrid", 0.75)):
            row = _table_row(l6, Cell("L6", *arm).arm_label)
            assert row[1] == "3"  # seeds
            assert row[column] == _mean_sd(synthetic, LAREQA, "L6", arm, metric)
    rank = _table_row(l6.split("rank distance ↓")[1], "cross")
    assert rank[1] == _mean_sd(synthetic, LAREQA, "L6", ("cross", None), "rank_distance")
    untrained = _table_row(l6, "untrained")
    assert untrained[1] == "1" and "±" not in " ".join(untrained)  # one run: no sd
    assert untrained[4] == _mean_sd(synthetic, LAREQA, "L6", ("untrained", None), "map_multi")
    hybrid = _table_row(l6, "hybrid α=0.5")
    assert hybrid[6] == _mean_sd(synthetic, LAREQA, "L6", ("hybrid", 0.5), "r10_multi")
    miracl = _subsection(results, f"{MIRACL} — L12 ")
    assert "nDCG@10" in miracl and "MAP@100" in miracl
    cross = _table_row(miracl, "cross")
    assert cross[2] == _mean_sd(synthetic, MIRACL, "L12", ("cross", None), "ndcg@10")


# --------------------------------------------------------------------------- training


def test_training_section_reports_steps_temperature_and_dropped_languages(built) -> None:
    synthetic, report = built
    training = _section(report, "Training")
    assert f"InfoNCE temperature: {TEMPERATURE:g} " in training
    dropped = re.search(r"fewer items than a batch\): (.+)\. These cells", training)
    assert dropped, training
    expected = {
        f"{cell.name}: {', '.join(langs)}"
        for (ev, cell) in synthetic.arrays
        if ev == LAREQA and cell.strategy in ("mono", "hybrid")
        for langs in DROPPED.get(cell.label, {}).values()
    }
    assert expected and set(dropped[1].split("; ")) == expected

    steps = _table(training.split("Steps kept per cell")[1].split("Did training beat")[0])
    histories: dict[tuple[str, str], list[tuple[int, dict]]] = {}
    for r in synthetic.rows:
        if r["eval_set"] == LAREQA and r["strategy"] != "untrained":
            cell = Cell(r["model_label"], r["strategy"], r["alpha"], r["seed"])
            histories.setdefault((cell.label, cell.arm_label), []).append(
                (cell.seed, r["training"])
            )
    assert {(row[0], row[1]) for row in steps} == set(histories)
    for row in steps:
        runs = sorted(histories[(row[0], row[1])], key=lambda run: run[0])  # seeds in order
        best = [
            min(t["validation_history"], key=lambda h: h["validation_loss"])["step"]
            for _, t in runs
        ]
        assert row[2] == str(TOTAL_STEPS[row[0]])
        assert row[3] == ", ".join(map(str, best))
        assert row[4] == str(sum(t["stopped_early"] for _, t in runs))
        assert row[5] == f"{LEARNING_RATE[row[0]]:g}"
    # Rows by size, ascending.
    labels = list(dict.fromkeys(row[0] for row in steps))
    assert labels == BY_SIZE


def test_untrained_check_flags_exactly_the_size_that_did_not_learn(built) -> None:
    synthetic, report = built
    training = _section(report, "Training")
    check = training.split("Did training beat the untrained model?")[1]
    assert f"`{VALIDATION}`" in check.splitlines()[0]
    rows = _table(check)
    trained_arms = {
        (cell.label, cell.arm_label)
        for (ev, cell) in synthetic.arrays
        if ev == VALIDATION and cell.strategy != "untrained"
    }
    assert {(r[0], r[1]) for r in rows} == trained_arms
    for label, arm_label, d_mono, d_cross, beats in rows:
        cell = next(
            c for (_, c) in synthetic.arrays if (c.label, c.arm_label) == (label, arm_label)
        )
        deltas = [
            synthetic.seed_mean(VALIDATION, label, cell.arm, metric)
            - synthetic.seed_mean(VALIDATION, label, ("untrained", None), metric)
            for metric in ("map_mono", "map_cross")
        ]
        assert _agrees(d_mono, deltas[0]) and _agrees(d_cross, deltas[1])
        assert beats == ("yes" if max(deltas) > 0 else "**no**")
        assert (beats == "**no**") == (label == UNLEARNED)  # the construction
    assert f"**Flagged: {UNLEARNED}** — no strategy beat the untrained model" in check


# --------------------------------------------------------------------------- effects, synergy


def test_every_effect_and_margin_is_the_difference_of_seed_mean_headlines(built) -> None:
    synthetic, report = built
    tables = _effect_tables(report)
    test_sets = (LAREQA, MIRACL)
    assert set(tables) == {(ev, label) for ev in test_sets for label in [*BY_SIZE, "slope"]}
    for eval_set in test_sets:
        metrics = TESTED[KIND[eval_set]]
        for label in BY_SIZE:
            rows = tables[(eval_set, label)]
            seen = set()
            for metric_name, comparison, diff, *_ in rows:
                metric = _metric(metric_name)
                alpha, against = _comparison(comparison)
                seen.add((metric, alpha, against))
                value, low, high = _interval(diff)
                expected = synthetic.contrast(eval_set, label, alpha, against, metric)
                where = (eval_set, label, metric, alpha, against)
                assert _agrees(diff.split(" [")[0], expected), (where, diff, expected)
                assert low <= value <= high, where
            # Every tested metric, every hybrid arm at this size, each baseline and the
            # synergy margin, separately (no "best baseline").
            assert seen == {
                (metric, alpha, against)
                for metric in metrics
                for alpha in ALPHAS[label]
                for against in ("mono", "cross", "random", "untrained", "interpolation")
            }


def test_equal_hybrid_is_never_significant_and_clearly_better_hybrid_always_is(built) -> None:
    _, report = built
    tables = _effect_tables(report)
    for eval_set in (LAREQA, MIRACL):
        small = [r for r in tables[(eval_set, "L2")] if r[1] == "hybrid α=0.5 − cross"]
        large = [r for r in tables[(eval_set, "L12")] if r[1] == "hybrid α=0.5 − cross"]
        assert len(small) == len(large) == len(TESTED[KIND[eval_set]])
        for row in small:
            value, _, _ = _interval(row[2])
            assert value == 0.0
            assert row[P] == row[P_HOLM] == "1"
            assert row[VERDICT].startswith("not significant after Holm (m = "), row
        for row in large:
            value, low, high = _interval(row[2])
            lower_better = row[0].endswith("↓")
            assert (high < 0) if lower_better else (low > 0), row
            assert row[VERDICT] == "**better**", row
        margins = [r for r in tables[(eval_set, "L12")] if r[1] == "hybrid α=0.5 − interpolation"]
        assert margins and all(r[VERDICT] == "**better**" for r in margins)


def _holm(p: list[float]) -> list[float]:
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[k]))
        adjusted[k] = running
    return adjusted.tolist()


def _family_of(eval_set: str, label: str, row: list[str]) -> str:
    """The Holm family of a printed test: the primary claims on the first test set, else
    one secondary family per kind."""
    metric, (alpha, against) = _metric(row[0]), _comparison(row[1])
    kind = "slope" if label == "slope" else "synergy" if against == "interpolation" else "effect"
    primary = (
        eval_set == LAREQA
        and metric == "map_multi"
        and alpha == 0.5
        and against in ("mono", "cross")
        and kind in ("effect", "slope")
    )
    return "primary" if primary else kind


def test_verdicts_follow_holm_within_each_family(built) -> None:
    _, report = built
    families: dict[str, list[list[str]]] = {"primary": [], "effect": [], "synergy": [], "slope": []}
    for (eval_set, label), rows in _effect_tables(report).items():
        for row in rows:
            families[_family_of(eval_set, label, row)].append(row)
    for kind, rows in families.items():
        assert rows, kind
        p = [float(r[P]) for r in rows]
        # Printed p-values have 3 significant digits (up to 0.5% off each, in and out).
        for row, expected in zip(rows, _holm(p), strict=True):
            assert float(row[P_HOLM]) == pytest.approx(expected, rel=1.1e-2, abs=1e-300), (
                kind,
                row,
            )
        for row in rows:
            p_holm = float(row[P_HOLM])
            value = _interval(row[2])[0]
            better = (value > 0) != row[0].endswith("↓")
            low, high = (float(v) for v in row[HOLM_CI].strip("[]").split(", "))
            if p_holm < 0.045:
                assert row[VERDICT] == ("**better**" if better else "**worse**"), row
                assert low > 0 or high < 0, row  # the Holm-level interval agrees
            elif p_holm > 0.055:
                assert not row[VERDICT].startswith("**"), row
                assert low <= 0 <= high, row
                assert row[VERDICT].startswith(("not significant", "equivalent", "no line"))


def test_slopes_are_least_squares_per_doubling_and_grow_in_hybrids_favour(built) -> None:
    synthetic, report = built
    tables = _effect_tables(report)
    for eval_set in (LAREQA, MIRACL):
        rows = tables[(eval_set, "slope")]
        # Only α = 0.5 exists at every size; the α = 0.25 / 0.75 arms get no slope.
        assert {(_metric(r[0]), *_comparison(r[1])) for r in rows} == {
            (metric, 0.5, against)
            for metric in TESTED[KIND[eval_set]]
            for against in ("mono", "cross", "random", "untrained", "interpolation")
        }
        for row in rows:
            metric, (alpha, against) = _metric(row[0]), _comparison(row[1])
            expected = synthetic.slope(eval_set, alpha, against, metric)
            assert _agrees(row[2].split(" [")[0], expected), (eval_set, row, expected)
            if against == "cross":
                # Hybrid's gain over cross grows with size (0, then 0.03, then 0.10).
                assert (expected < 0) if row[0].endswith("↓") else (expected > 0)
                # The gain is 0, 0.03, 0.10 at L2, L6, L12: not a line, and said so.
                assert row[SLOPE_VERDICT].startswith("no line: lack of fit χ²(1) = "), row


def test_validation_sets_are_never_tested(built) -> None:
    _, report = built
    effects = _section(report, "Effects, synergy and slopes")
    answer = _section(report, "Answer")
    assert VALIDATION not in effects and VALIDATION not in answer
    hybrid_gain = f"hybrid_gain_{safe_name(VALIDATION)}.png"
    assert hybrid_gain not in report


# --------------------------------------------------------------------------- the answer


def test_answer_opens_with_slopes_then_sizes_for_the_first_metric_of_each_test_set(built) -> None:
    synthetic, report = built
    answer = _section(report, "Answer")
    paragraphs = [p for p in answer.split("\n\n") if p.startswith("**")]
    assert paragraphs[-1].startswith("**Power:**")  # after the answer, what it could see
    paragraphs = paragraphs[:-1]
    heads = [p.split(".**")[0] + ".**" for p in paragraphs]
    assert heads == [
        f"**{LAREQA}, mAP multi, hybrid α=0.5.**",
        f"**{MIRACL}, nDCG@10, hybrid α=0.5.**",
    ]
    for paragraph, eval_set in zip(paragraphs, (LAREQA, MIRACL), strict=True):
        metric = TESTED[KIND[eval_set]][0]
        text = paragraph.split("\n")[0]
        assert text.split(".** ")[1].startswith(
            "Per doubling of non-embedding parameters, hybrid − mono changes by "
        )
        cross = re.search(
            r"hybrid − cross changes by ([+-]\d\.\d+) \[[^]]+\] \(Holm p = ([^)]+)\): ([^;]+)",
            text,
        )
        assert cross, text
        assert _agrees(cross[1], synthetic.slope(eval_set, 0.5, "cross", metric))
        # The synthetic gain over cross is 0, 0.03, 0.10: a curve, which is never a trend.
        assert cross[3].startswith("no line: lack of fit χ²(1) = "), cross[3]
        # Then, per baseline, the verdicts per size: against cross, none at L2, help at L12.
        by_size = text.split(" By size, ")[1]
        against = dict(
            part.split(" hybrid ", 1) for part in by_size.rstrip(".").split("against ")[1:]
        )
        assert set(against) == {"mono", "cross"}  # the primary baselines only
        verdicts = {
            word: labels.split(", ")
            for word, labels in re.findall(
                r"(helps|hurts|is not significantly different \(not evidence of no difference\)"
                r"|is equivalent within the margin) at ([L\d, ]+?)(?:;|$)",
                against["cross"].strip("; "),
            )
        }
        assert (
            "L2" in verdicts["is not significantly different (not evidence of no difference)"]
            and "L12" in verdicts["helps"]
        )


def test_answer_table_matches_the_effects(built) -> None:
    synthetic, report = built
    answer = _section(report, "Answer")
    effects = _effect_tables(report)
    for eval_set in (LAREQA, MIRACL):
        metric = TESTED[KIND[eval_set]][0]
        block = answer.split(f"**{eval_set}, ")[1].split("\n\n**")[0]
        header = next(line for line in block.splitlines() if line.startswith("|  |"))
        assert header == "|  | " + " | ".join(BY_SIZE) + " |"
        rows = {r[0]: r[1:] for r in _table(block)}
        assert list(rows) == [
            "hybrid − mono",
            "hybrid − cross",
            "hybrid − pooled X-X (LAReQA; not in the paper)",
            "hybrid − untrained",
            "the synergy margin",
        ]
        by_name = {f"hybrid − {name}": key for key, name in BASELINE_NAMES.items()}
        for name, cells in rows.items():
            against = "interpolation" if name == "the synergy margin" else by_name[name]
            for label, cell in zip(BY_SIZE, cells, strict=True):
                diff, word = cell.split("] ", 1)
                diff += "]"
                expected = synthetic.contrast(eval_set, label, 0.5, against, metric)
                assert _agrees(diff.split(" [")[0], expected), (eval_set, name, label)
                # The same estimate and verdict as the effects table (a margin's verdict
                # in its own words).
                same = next(
                    r
                    for r in effects[(eval_set, label)]
                    if _metric(r[0]) == metric
                    and r[1] == f"hybrid α=0.5 − {BASELINE_NAMES[against]}"
                )
                assert diff == f"{same[2].split(' [')[0]} {same[HOLM_CI]}"
                if against == "interpolation":
                    word = {"synergy": "better", "interference": "worse"}.get(word, word)
                assert word == same[VERDICT].strip("*"), (eval_set, name, label)
        cross = rows["hybrid − cross"]
        assert cross[0].startswith("+0.0000 [") and "] not significant after Holm (m = " in cross[0]
        assert cross[2].endswith(" better")
        assert rows["the synergy margin"][2].endswith(" synergy")


def test_answer_says_what_the_intervals_cover(built, partial) -> None:
    _, report = built
    clusters = f"clusters: {LAREQA}: {N_QUESTIONS[LAREQA]}, {MIRACL}: {N_QUESTIONS[MIRACL]})"
    for section in ("Answer", "Effects, synergy and slopes"):
        text = _section(report, section)
        assert "interval from a two-level bootstrap (4000 replicates)" in text
        assert "resamples the training seeds of each cell" in text
        assert clusters in text  # test sets only: the validation part is not tested
        assert "Holm-adjusted p-values in one primary family" in text
        assert "equivalence test (TOST, Holm-adjusted) against a margin of ±0.005" in text
        assert "one training seed" not in text
    _, one_seed = partial
    answer = _section(one_seed, "Answer")
    assert "two-level bootstrap (400 replicates)" in answer
    assert "This study has one training seed" in answer
    assert "its intervals cover the question sample only" in answer


def test_partial_answer_puts_each_size_in_its_own_column(partial) -> None:
    synthetic, report = partial
    answer = _section(report, "Answer")
    rows = {r[0]: r[1:] for r in _table(answer)}
    # L2 has no random cell: its column is empty, L6 and L12 keep their own numbers.
    assert rows["hybrid − pooled X-X (LAReQA; not in the paper)"][0] == "—"
    for label, cell in zip(
        BY_SIZE[1:], rows["hybrid − pooled X-X (LAReQA; not in the paper)"][1:], strict=True
    ):
        expected = synthetic.contrast(LAREQA, label, 0.5, "random", "map_multi")
        assert _agrees(cell.split(" [")[0], expected), (label, cell)
    # A slope needs every size: none for hybrid − random, one for the others.
    assert "hybrid − pooled X-X (LAReQA; not in the paper) changes by" not in answer
    assert "hybrid − cross changes by" in answer
    slopes = _effect_tables(report)[(LAREQA, "slope")]
    assert not [r for r in slopes if r[1].endswith("− random")]


# --------------------------------------------------------------------------- plots, rebuild


def test_every_plot_exists_is_a_png_and_is_linked(built) -> None:
    synthetic, report = built
    study = synthetic.directory
    plots = _section(report, "Plots")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", plots)
    assert len(links) == len(set(links))
    for link in links:
        assert (study / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Nothing in plots/ that the report does not link (no temp files, no stale figures).
    assert sorted(p.relative_to(study).as_posix() for p in (study / "plots").iterdir()) == sorted(
        links
    )
    lareqa = re.findall(r"\]\(([^)]+)\)", _subsection(plots, f"{LAREQA}\n"))
    assert sorted(lareqa) == sorted(
        f"plots/{kind}_{safe_name(LAREQA)}.png"
        for kind in ("map_vs_size", "hybrid_gain", "frontier", "rank_distance_vs_size", "heatmap")
    )
    miracl = re.findall(r"\]\(([^)]+)\)", _subsection(plots, f"{MIRACL}\n"))
    assert sorted(miracl) == sorted(
        f"plots/{kind}_{safe_name(MIRACL)}.png" for kind in ("map_vs_size", "hybrid_gain")
    )
    # The α frontier: only the LAReQA test set (the one whose L6 has an α sweep).
    assert [link for link in links if "frontier" in link] == [
        f"plots/frontier_{safe_name(LAREQA)}.png"
    ]
    assert [link for link in links if "hybrid_gain" in link] == [
        f"plots/hybrid_gain_{safe_name(LAREQA)}.png",
        f"plots/hybrid_gain_{safe_name(MIRACL)}.png",
    ]
    training = _subsection(plots, "training\n")
    assert re.findall(r"\]\(([^)]+)\)", training) == ["plots/validation_loss.png"]


def test_rebuild_is_byte_identical_and_leaves_no_temp_files(built) -> None:
    synthetic, report = built
    study = synthetic.directory
    figures = {p.name: p.read_bytes() for p in (study / "plots").iterdir()}
    again = build_report(study).read_text(encoding="utf-8")
    assert again == report
    assert {p.name: p.read_bytes() for p in (study / "plots").iterdir()} == figures
    assert not [p for p in study.rglob("*") if p.name.startswith(".") or ".tmp" in p.name]


def test_the_report_says_whether_the_budget_was_fixed(built) -> None:
    synthetic, report = built
    training = _section(report, "Training")
    cells = {r["cell"]: r for r in synthetic.rows if r["strategy"] != "untrained"}.values()
    capped = [
        r["training"]["best_step"] == r["training"]["steps"] and not r["training"]["stopped_early"]
        for r in cells
    ]
    sentence = next(line for line in training.splitlines() if line.startswith("Budget:"))
    if 2 * sum(capped) > len(capped):
        assert f"**fixed**. {sum(capped)} of {len(capped)} trained cells" in sentence
    else:
        assert "trained to the validation criterion" in sentence
        assert f"{len(capped) - sum(capped)} of {len(capped)} trained cells" in sentence


@pytest.mark.parametrize("n_capped", [0, 1, 2, 3])
def test_budget_sentence_counts_cells_that_kept_their_last_step(n_capped: int) -> None:
    from types import SimpleNamespace

    from langmix.study.training_section import budget_sentence

    sizes = [Size("m2", "L2", 10, 5), Size("m4", "L4", 20, 9)]
    cells = [
        {
            "model": "m2" if i < 2 else "m4",
            "training": {"best_step": 80 if i < n_capped else 60, "steps": 80},
        }
        for i in range(3)
    ]
    cells.append({"model": "m4", "training": {"best_step": 80, "steps": 80, "stopped_early": True}})
    text = budget_sentence(SimpleNamespace(sizes=sizes), cells)
    per_size = f"L2 {min(n_capped, 2)}/2, L4 {max(n_capped - 2, 0)}/2"
    if 2 * n_capped > 4:
        assert (
            text.startswith(f"Budget: **fixed**. {n_capped} of 4 trained cells")
            and per_size in text
        )
    else:
        assert f"{4 - n_capped} of 4 trained cells stopped early" in text and per_size in text


def test_the_report_says_which_languages_were_trained_and_which_are_zero_shot() -> None:
    from langmix.data.lareqa import LAREQA_DATASETS
    from langmix.study.report import section_run
    from langmix.study.results import load_study

    study = load_study(Path(__file__).resolve().parents[2] / "docs" / "results" / "cpu-full")
    lines = section_run(study)
    trained = sorted(LAREQA_DATASETS["mlqa-r"])
    assert f"- Training languages: {', '.join(trained)}" in lines
    unseen = sorted(set(LAREQA_DATASETS["xquad-r"]) - set(trained))
    assert (
        f"- xquad-r[:12]: 11 languages; zero-shot in {', '.join(unseen)} (never trained)" in lines
    )
    assert "- mlqa-r:heldout: 7 languages, all of them trained" in lines


def test_the_question_names_only_the_baselines_that_ran(built, partial) -> None:
    for _, report in (built, partial):
        question = next(line for line in report.splitlines() if line.startswith("Question:"))
        assert "(mono, cross, random, untrained)" in question or "(mono, cross, random)" in question
    from types import SimpleNamespace

    from langmix.study.report import _baselines_run

    only = SimpleNamespace(arms=[Arm("hybrid", 0.5), Arm("mono"), Arm("untrained")])
    assert _baselines_run(only) == ["mono", "untrained"]


def test_every_arm_has_one_style_in_every_figure() -> None:
    """One colour and marker per arm, whatever the panel or figure; a contrast against a
    baseline takes the baseline's colour; hybrid's alphas are told apart."""
    from langmix.study.figures import arm_style

    arms = [
        "mono",
        "cross",
        "random",
        "untrained",
        "hybrid α=0.25",
        "hybrid α=0.5",
        "hybrid α=0.75",
    ]
    styles = [tuple(arm_style(a).values()) for a in arms]
    assert len(set(styles)) == len(arms)
    for baseline in ("mono", "cross", "random", "untrained"):
        assert arm_style(f"− {baseline}") == arm_style(baseline)
    assert arm_style("hybrid α=0.5") == arm_style("hybrid α=0.5")  # stable across calls


def test_figures_in_every_asked_format_and_resolution(tmp_path: Path) -> None:
    """`langmix report --plot-format png,pdf,svg --dpi 200`: each figure as PNG (which the
    report links), PDF and SVG; the same build twice gives the same bytes."""
    import shutil

    from langmix.cli import main

    synthetic = make_study(tmp_path / "s", seeds=[0])
    assert (
        main(["report", str(synthetic.directory), "--plot-format", "pdf,svg", "--dpi", "200"]) == 0
    )
    plots = synthetic.directory / "plots"
    pngs = sorted(plots.glob("*.png"))
    assert pngs
    for png in pngs:
        assert png.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
        assert b"<svg" in png.with_suffix(".svg").read_bytes()
    from matplotlib.image import imread

    first = imread(pngs[0])
    copy = tmp_path / "again"
    shutil.copytree(synthetic.directory, copy)
    shutil.rmtree(copy / "plots")
    assert main(["report", str(copy), "--plot-format", "pdf,svg", "--dpi", "200"]) == 0
    for path in sorted(plots.iterdir()):
        assert (copy / "plots" / path.name).read_bytes() == path.read_bytes(), path.name
    # The default build: PNG only, at 120 dpi (fewer pixels than at 200).
    build_report(copy)
    assert imread(copy / "plots" / pngs[0].name).shape[0] < first.shape[0]
    assert main(["report", str(copy), "--plot-format", "gif"]) == 2
    assert main(["report", str(copy), "--plot-format", "png", "--dpi", "10"]) == 2
