"""The scaling study's report: tables, significance tests, plots and a generated answer.

Research question: how does the benefit of hybrid batch training change as the model
grows, against the baselines (mono, cross, random), measured by mAP, with confidence
intervals? :func:`build_report` answers it from ``results.jsonl`` and the per-query files
alone, so ``langmix report DIR`` can rebuild ``DIR/report.md`` and ``DIR/plots/*.png`` at
any time (after a partial run, after more seeds were added) without rerunning anything.

Every number in the report, including the closing "Answer" paragraph, is read from the
rows or computed by :mod:`langmix.study.statistics`; nothing is hand-written, so the text
cannot drift from the data it describes.

Example:
    >>> from langmix.study.report import build_report
    >>> build_report("runs/scaling")  # doctest: +SKIP
    PosixPath('runs/scaling/report.md')
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from langmix.data.errors import DataError
from langmix.study import plots
from langmix.study.statistics import METRICS, Comparison, compare, seed_summary

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Arm",
    "LoadedRows",
    "Size",
    "Study",
    "build_report",
    "load_rows",
    "load_study",
]

RESULTS = "results.jsonl"
REPORT = "report.md"
PLOTS = "plots"
CONFIDENCE = 0.95

# Table order of the paper (untrained reference first, random last).
_STRATEGY_ORDER = ("untrained", "mono", "cross", "hybrid", "random")
# What hybrid is tested against; untrained is included as the "did training help" check.
_COMPARED = ("mono", "cross", "random", "untrained")
# The "best baseline" of the question is a trained one: untrained is a reference, not a rival.
_BASELINES = ("mono", "cross", "random")
_OFFLINE_MODEL = re.compile(r"^offline:.+@L\d+$")
# The paper's largest reported hybrid gain, for scale in the answer.
_PAPER_GAIN = 0.01

_NAMES = {
    "map_mono": "mAP mono",
    "map_cross": "mAP cross",
    "map_multi": "mAP multi",
    "r1_mono": "R@1 mono",
    "r1_cross": "R@1 cross",
    "r10_multi": "R@10 multi",
    "rank_distance": "rank distance",
    "ndcg@10": "nDCG@10",
    "recall@100": "Recall@100",
    "map@100": "MAP@100",
}
# Per evaluation kind: main table columns, tested metrics (answer order: the paper's
# headline, multilingual mAP, first), gain panels and metric-versus-size panels.
_TABLE = {
    "lareqa": ("map_mono", "map_cross", "map_multi", "r1_cross", "r10_multi"),
    "miracl": ("ndcg@10", "recall@100", "map@100"),
}
_TESTED = {
    "lareqa": ("map_multi", "map_mono", "map_cross", "rank_distance"),
    "miracl": ("ndcg@10", "map@100"),
}
_GAIN_PANELS = {
    "lareqa": ("map_mono", "map_cross", "map_multi"),
    "miracl": ("ndcg@10", "map@100"),
}
_SIZE_PANELS = {
    "lareqa": ("map_mono", "map_cross", "map_multi"),
    "miracl": ("ndcg@10", "recall@100", "map@100"),
}


class LoadedRows(NamedTuple):
    """Rows of ``results.jsonl`` after deduplication, and the lines that could not be read.

    Attributes:
        rows: One row per (cell, evaluation set), the last one written winning.
        skipped: 1-based numbers of lines that were not valid JSON.
        last_line_cut: Whether the final line was one of them (an interrupted write).
    """

    rows: list[dict[str, Any]]
    skipped: list[int]
    last_line_cut: bool


@dataclass(frozen=True)
class Arm:
    """A training strategy of the grid; hybrid has one arm per alpha.

    Example:
        >>> Arm("hybrid", 0.5).label
        'hybrid α=0.5'
    """

    strategy: str
    alpha: float | None = None

    @property
    def label(self) -> str:
        return f"{self.strategy} α={self.alpha:g}" if self.alpha is not None else self.strategy

    @property
    def sort_key(self) -> tuple[int, str, float]:
        known = self.strategy in _STRATEGY_ORDER
        rank = _STRATEGY_ORDER.index(self.strategy) if known else len(_STRATEGY_ORDER)
        return rank, self.strategy, -1.0 if self.alpha is None else self.alpha


@dataclass(frozen=True)
class Size:
    """One model of the size axis.

    Example:
        >>> Size("offline:e5@L2", "L2", 30_000_000, 7_000_000).name
        'L2 (7.0M)'
    """

    model: str
    label: str
    total: int
    non_embedding: int

    @property
    def name(self) -> str:
        return f"{self.label} ({format_count(self.non_embedding)})"


@dataclass
class Study:
    """The results of one study directory, indexed for the tables and tests.

    Attributes:
        directory: The study directory.
        name: The study's name (from the rows, else the directory name).
        loaded: The rows and what was skipped reading them.
        sizes: Models, ascending by non-embedding parameters.
        eval_sets: Evaluation sets in the order they first appear.
        eval_kind: ``"lareqa"`` or ``"miracl"`` per evaluation set.
        arms: Every arm present, in table order.
        description: ``[study] description`` of ``study.toml``, if any.

    Example:
        >>> study = load_study("runs/scaling")  # doctest: +SKIP
        >>> [r["seed"] for r in study.cell_rows("xquad-r", study.sizes[0], Arm("mono"))]  # doctest: +SKIP
        [0, 1]
    """

    directory: Path
    name: str
    loaded: LoadedRows
    sizes: list[Size]
    eval_sets: list[str]
    eval_kind: dict[str, str]
    arms: list[Arm]
    description: str = ""
    _index: dict[tuple[str, str, Arm], list[dict[str, Any]]] = field(default_factory=dict)
    _per_query: dict[Path, Mapping[str, np.ndarray] | None] = field(default_factory=dict)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.loaded.rows

    def cell_rows(self, eval_set: str, size: Size, arm: Arm) -> list[dict[str, Any]]:
        """Rows of one (evaluation set, model, arm), one per seed, by seed."""
        return self._index.get((eval_set, size.model, arm), [])

    def arms_for(self, eval_set: str) -> list[Arm]:
        """Arms with at least one row on ``eval_set``."""
        present = {arm for (ev, _, arm) in self._index if ev == eval_set}
        return [arm for arm in self.arms if arm in present]

    def hybrid_arms(self, eval_set: str) -> list[Arm]:
        return [arm for arm in self.arms_for(eval_set) if arm.strategy == "hybrid"]

    def per_query(self, row: dict[str, Any]) -> Mapping[str, np.ndarray] | None:
        """The row's per-query arrays (cached), or ``None`` if the file is missing."""
        path = self.directory / row["per_query"]
        if path not in self._per_query:
            if path.is_file():
                # Read every array now so no file handle stays open across the build.
                with np.load(path) as npz:
                    self._per_query[path] = {key: npz[key] for key in npz.files}
            else:
                self._per_query[path] = None
        return self._per_query[path]


# --------------------------------------------------------------------------- loading


def load_rows(path: str | os.PathLike[str]) -> LoadedRows:
    """Read ``results.jsonl``: skip unreadable lines, keep the last row per (cell, eval set).

    A cut final line is the expected trace of a run killed mid-write; an unreadable line
    elsewhere is unexpected but is skipped too (and listed in the report) so that one
    damaged line cannot stop the report of a long study.

    Args:
        path: The ``results.jsonl`` file.

    Returns:
        The deduplicated rows in first-seen order, and the skipped line numbers.

    Example:
        >>> loaded = load_rows("runs/scaling/results.jsonl")  # doctest: +SKIP
        >>> len(loaded.rows), loaded.last_line_cut  # doctest: +SKIP
        (48, False)
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            path, "no study results here", fix="run `langmix study --output-dir DIR` first"
        )
    lines = path.read_text(encoding="utf-8").splitlines()
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    skipped: list[int] = []
    for number, line in numbered:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            skipped.append(number)
            continue
        if not isinstance(row, dict) or "cell" not in row or "eval_set" not in row:
            skipped.append(number)
            continue
        rows[(row["cell"], row["eval_set"])] = row
    last_cut = bool(numbered) and bool(skipped) and skipped[-1] == numbered[-1][0]
    return LoadedRows(list(rows.values()), skipped, last_cut)


def _arm(row: dict[str, Any]) -> Arm:
    strategy = row["strategy"]
    alpha = row.get("alpha")
    return Arm(strategy, float(alpha) if strategy == "hybrid" and alpha is not None else None)


def _description(directory: Path) -> str:
    path = directory / "study.toml"
    if not path.is_file():
        return ""
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError:
        return ""  # the report must still build; the runner validates the config
    study = config.get("study", {})
    return str(study.get("description", "")).strip() if isinstance(study, dict) else ""


def load_study(study_dir: str | os.PathLike[str]) -> Study:
    """Load and index a study directory's rows.

    Args:
        study_dir: Directory holding ``results.jsonl`` (and optionally ``study.toml``).

    Returns:
        The indexed :class:`Study`.

    Raises:
        FileNotFoundError: If ``results.jsonl`` is missing.

    Example:
        >>> [s.label for s in load_study("runs/scaling").sizes]  # doctest: +SKIP
        ['L2', 'L6', 'L12']
    """
    directory = Path(study_dir)
    loaded = load_rows(directory / RESULTS)
    sizes: dict[str, Size] = {}
    eval_kind: dict[str, str] = {}
    index: dict[tuple[str, str, Arm], list[dict[str, Any]]] = defaultdict(list)
    for row in loaded.rows:
        params = row.get("parameters") or {}
        sizes.setdefault(
            row["model"],
            Size(
                row["model"],
                row.get("model_label") or row["model"],
                int(params.get("total", 0)),
                int(params.get("non_embedding", 0)),
            ),
        )
        eval_kind.setdefault(row["eval_set"], row["eval_kind"])
        index[(row["eval_set"], row["model"], _arm(row))].append(row)
    for cell in index.values():
        cell.sort(key=lambda r: -1 if r.get("seed") is None else r["seed"])
    names = {row.get("study") for row in loaded.rows} - {None}
    return Study(
        directory=directory,
        name=", ".join(sorted(names)) or directory.name,
        loaded=loaded,
        sizes=sorted(sizes.values(), key=lambda s: (s.non_embedding, s.total, s.model)),
        eval_sets=list(eval_kind),
        eval_kind=eval_kind,
        arms=sorted({arm for (_, _, arm) in index}, key=lambda a: a.sort_key),
        description=_description(directory),
        _index=dict(index),
    )


# --------------------------------------------------------------------------- numbers


def format_count(n: int) -> str:
    """Format a parameter count compactly.

    Example:
        >>> format_count(117_653_760), format_count(950)
        ('117.7M', '950')
    """
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1:
        return f"{seconds:.0f} s"
    if minutes < 60:
        return f"{minutes:.1f} min"
    return f"{int(minutes // 60)} h {minutes % 60:02.0f} min"


def _times(rows: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """Total train and eval seconds of ``rows``."""
    # train_seconds is repeated on every eval row of a cell; count each cell once.
    train = {r["cell"]: r.get("train_seconds") or 0.0 for r in rows}
    return sum(train.values()), sum(r.get("eval_seconds") or 0.0 for r in rows)


def _digits(metric: str) -> int:
    # Rank distances are ranks (tens to thousands); the rest are scores in [0, 1].
    return 1 if metric == "rank_distance" else 3


def _values(rows: Sequence[dict[str, Any]], metric: str) -> list[float]:
    values = [row["metrics"].get(metric) for row in rows]
    return [float(v) for v in values if v is not None]


def _summary(rows: Sequence[dict[str, Any]], metric: str) -> tuple[float, float | None]:
    """Mean over seeds and, with more than one seed, their standard deviation."""
    values = _values(rows, metric)
    if not values:
        return math.nan, None
    mean, sd = seed_summary(values)
    return float(mean), float(sd) if len(values) > 1 else None


def _cell_text(rows: Sequence[dict[str, Any]], metric: str) -> str:
    mean, sd = _summary(rows, metric)
    if math.isnan(mean):
        return "—"
    digits = _digits(metric)
    return f"{mean:.{digits}f}" if sd is None else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _higher_is_better(metric: str) -> bool:
    return METRICS[metric][1]


def _significant(c: Comparison) -> bool:
    return c.ci_low > 0 or c.ci_high < 0


def _verdict(c: Comparison) -> str:
    """``better``/``worse`` for hybrid when the CI excludes 0, else ``n.s.``."""
    if not _significant(c):
        return "n.s."
    return "better" if (c.difference > 0) == c.higher_is_better else "worse"


def _diff_text(c: Comparison, metric: str) -> str:
    d = _digits(metric) + 1  # differences are small; one more digit than the tables
    return f"{c.difference:+.{d}f} [{c.ci_low:+.{d}f}, {c.ci_high:+.{d}f}]"


def safe_name(eval_set: str) -> str:
    """A file-name-safe form of an evaluation set name.

    Example:
        >>> safe_name("mlqa-r:heldout"), safe_name("xquad-r[:12]")
        ('mlqa-r-heldout', 'xquad-r-12')
    """
    name = re.sub(r"[^A-Za-z0-9._,@=+-]", "-", eval_set)
    return re.sub(r"-{2,}", "-", name).strip("-")


# --------------------------------------------------------------------------- statistics

ComparisonKey = tuple[str, str, str, Arm, str]  # eval set, model, metric, hybrid arm, baseline


@dataclass
class Comparisons:
    """Hybrid-versus-baseline comparisons, computed once and shared by tables, plots, answer.

    Attributes:
        results: Comparison per (eval set, model, metric, hybrid arm, baseline).
        notes: Comparisons that could not be made, and why.
    """

    results: dict[ComparisonKey, Comparison] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def get(
        self, eval_set: str, size: Size, metric: str, arm: Arm, baseline: str
    ) -> Comparison | None:
        return self.results.get((eval_set, size.model, metric, arm, baseline))


def _per_query_list(study: Study, rows: Sequence[dict[str, Any]]) -> list[Mapping] | None:
    files = [study.per_query(row) for row in rows]
    return None if any(f is None for f in files) else files  # type: ignore[return-value]


def compute_comparisons(
    study: Study, *, n_resamples: int = 2000, n_permutations: int = 2000, seed: int = 0
) -> Comparisons:
    """Compare every hybrid arm with every baseline, per evaluation set, size and metric.

    Seeds are paired by passing each side's per-query files as a list; the statistics
    module averages each side over its seeds before resampling queries.

    Args:
        study: The loaded study.
        n_resamples: Bootstrap resamples per comparison.
        n_permutations: Permutations per comparison (p-value).
        seed: Random seed of the resampling.

    Returns:
        The comparisons and notes on the ones that were skipped.

    Example:
        >>> comparisons = compute_comparisons(load_study("runs/scaling"))  # doctest: +SKIP
    """
    out = Comparisons()
    for eval_set in study.eval_sets:
        metrics = _TESTED[study.eval_kind[eval_set]]
        for size in study.sizes:
            for arm in study.hybrid_arms(eval_set):
                hybrid_rows = study.cell_rows(eval_set, size, arm)
                if not hybrid_rows:
                    continue
                hybrid = _per_query_list(study, hybrid_rows)
                for baseline in _COMPARED:
                    base_rows = study.cell_rows(eval_set, size, Arm(baseline))
                    if not base_rows:
                        continue
                    other = _per_query_list(study, base_rows)
                    if hybrid is None or other is None:
                        out.notes.append(
                            f"{eval_set}, {size.label}: {arm.label} vs {baseline} skipped "
                            "(a per-query file is missing)"
                        )
                        continue
                    for metric in metrics:
                        try:
                            c = compare(
                                hybrid,
                                other,
                                metric,
                                n_resamples=n_resamples,
                                n_permutations=n_permutations,
                                seed=seed,
                                confidence=CONFIDENCE,
                            )
                        except ValueError as error:
                            # E.g. runs on different query subsets: one unpairable
                            # comparison must not cost the whole report; it is listed.
                            out.notes.append(
                                f"{eval_set}, {size.label}, {_NAMES[metric]}: "
                                f"{arm.label} vs {baseline} skipped ({error})"
                            )
                            continue
                        out.results[(eval_set, size.model, metric, arm, baseline)] = c
    return out


def best_baseline(study: Study, eval_set: str, size: Size, metric: str) -> str | None:
    """The trained baseline with the best seed-mean ``metric`` at this size, if any.

    Example:
        >>> best_baseline(study, "xquad-r", study.sizes[0], "map_multi")  # doctest: +SKIP
        'cross'
    """
    means = {}
    for baseline in _BASELINES:
        mean, _ = _summary(study.cell_rows(eval_set, size, Arm(baseline)), metric)
        if not math.isnan(mean):
            means[baseline] = mean
    if not means:
        return None
    sign = 1.0 if _higher_is_better(metric) else -1.0
    return max(means, key=lambda b: sign * means[b])


def _gains(
    study: Study, comparisons: Comparisons, eval_set: str, metric: str, arm: Arm
) -> list[tuple[Size, str, Comparison]]:
    """Hybrid minus the best baseline at every size where both exist, small to large."""
    gains = []
    for size in study.sizes:
        baseline = best_baseline(study, eval_set, size, metric)
        c = comparisons.get(eval_set, size, metric, arm, baseline) if baseline else None
        if c is not None:
            gains.append((size, baseline, c))
    return gains


# --------------------------------------------------------------------------- sections


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return [*lines, ""]


def _missing_cells(study: Study) -> list[str]:
    """Cells of the implied grid (sizes x arms x seeds) without a row, per eval set."""
    seeds = sorted({r["seed"] for r in study.rows if r.get("seed") is not None})
    missing = []
    for eval_set in study.eval_sets:
        for size in study.sizes:
            for arm in study.arms:
                have = {r.get("seed") for r in study.cell_rows(eval_set, size, arm)}
                want = [None] if arm.strategy == "untrained" else seeds
                for s in want:
                    if s not in have:
                        where = f"{size.label} {arm.label}" + (
                            f" seed {s}" if s is not None else ""
                        )
                        missing.append(f"{where} on {eval_set}")
    return missing


def section_run(study: Study) -> list[str]:
    """ "What was run / what was cut": grid, models, times, description, caveats."""
    rows = study.rows
    lines = ["## What was run / what was cut", ""]
    if study.description:
        lines += [study.description, ""]
    if any(_OFFLINE_MODEL.match(size.model) for size in study.sizes):
        lines += [
            "**The offline family is a depth-cut proxy.** Its sizes are layer cuts of one "
            "pretrained model, and cutting layers loses quality before any training, so "
            "each size's untrained row must be read next to its trained rows: a trend over "
            "these sizes mixes the effect of size with the damage of the cut. The hub family "
            "(`configs/paper-gpu.toml`: separately pretrained models of increasing size) is "
            "the real answer to the size question.",
            "",
        ]
    trained = {r["strategy"] for r in rows if r["strategy"] != "untrained"}
    strategies = [s for s in _STRATEGY_ORDER if s in trained] + sorted(
        trained - set(_STRATEGY_ORDER)
    )
    alphas = sorted({a.alpha for a in study.arms if a.alpha is not None})
    seeds = sorted({r["seed"] for r in rows if r.get("seed") is not None})
    train_sets = sorted({r["train_set"] for r in rows if r.get("train_set")})
    untrained = any(r["strategy"] == "untrained" for r in rows)
    train_s, eval_s = _times(rows)
    n_cells = len({r["cell"] for r in rows})
    lines += [
        f"- Cells: {n_cells} ({len(rows)} rows of (cell, evaluation set))",
        f"- Strategies: {', '.join(strategies) or 'none'}"
        + (" (+ untrained reference)" if untrained else ""),
        f"- Hybrid alphas: {', '.join(f'{a:g}' for a in alphas) or 'none'}",
        f"- Seeds: {', '.join(map(str, seeds)) or 'none'}",
        f"- Train set: {', '.join(train_sets) or 'none'}",
        f"- Evaluation sets: {', '.join(study.eval_sets) or 'none'}",
        f"- Wall time: train {_duration(train_s)} + eval {_duration(eval_s)} "
        f"= {_duration(train_s + eval_s)}",
        "",
    ]
    lines += _table(
        ["size", "model", "parameters (total)", "non-embedding", "train time", "eval time"],
        [
            [
                size.label,
                f"`{size.model}`",
                f"{format_count(size.total)} ({size.total:,})",
                f"{format_count(size.non_embedding)} ({size.non_embedding:,})",
                *map(_duration, _times([r for r in rows if r["model"] == size.model])),
            ]
            for size in study.sizes
        ],
    )
    missing = _missing_cells(study)
    if missing:
        shown = "; ".join(missing[:20]) + (
            f"; … and {len(missing) - 20} more" if len(missing) > 20 else ""
        )
        lines += [f"Missing from the grid ({len(missing)}): {shown}.", ""]
    if study.loaded.skipped:
        what = "the last line was cut (an interrupted write)" if study.loaded.last_line_cut else ""
        lines += [
            f"Skipped unreadable lines of `{RESULTS}`: {', '.join(map(str, study.loaded.skipped))}"
            + (f"; {what}" if what else "")
            + ".",
            "",
        ]
    return lines


def table_main(study: Study, eval_set: str, size: Size) -> list[str]:
    """Table 1 layout: a row per arm, mAP (and recall) columns; MIRACL: its own metrics."""
    metrics = _TABLE[study.eval_kind[eval_set]]
    body = []
    for arm in study.arms_for(eval_set):
        rows = study.cell_rows(eval_set, size, arm)
        n = len(rows)
        body.append([arm.label, str(n), *(_cell_text(rows, m) for m in metrics)])
    return _table(["strategy", "seeds", *(_NAMES[m] for m in metrics)], body)


def table_rank_distance(study: Study, eval_set: str, size: Size) -> list[str]:
    """Table 2 layout: rank distance per arm (lower: answers in all languages rank together)."""
    body = [
        [arm.label, _cell_text(study.cell_rows(eval_set, size, arm), "rank_distance")]
        for arm in study.arms_for(eval_set)
    ]
    return _table(["strategy", "rank distance ↓"], body)


def section_results(study: Study) -> list[str]:
    """Per evaluation set and size (small to large), the paper's tables."""
    lines = [
        "## Results",
        "",
        "Mean ± standard deviation over seeds where there is more than one seed.",
        "",
    ]
    for eval_set in study.eval_sets:
        lareqa = study.eval_kind[eval_set] == "lareqa"
        for size in study.sizes:
            if not any(study.cell_rows(eval_set, size, arm) for arm in study.arms):
                continue
            lines += [f"### {eval_set} — {size.name}", ""]
            lines += table_main(study, eval_set, size)
            if lareqa:
                lines += table_rank_distance(study, eval_set, size)
    return lines


def table_significance(
    study: Study, comparisons: Comparisons, eval_set: str, size: Size
) -> list[str]:
    """Hybrid (each alpha) minus each baseline, per metric: difference, CI, p, verdict."""
    body = []
    for metric in _TESTED[study.eval_kind[eval_set]]:
        for arm in study.hybrid_arms(eval_set):
            for baseline in _COMPARED:
                c = comparisons.get(eval_set, size, metric, arm, baseline)
                if c is None:
                    continue
                digits = _digits(metric)
                verdict = _verdict(c)
                body.append(
                    [
                        _NAMES[metric] + ("" if c.higher_is_better else " ↓"),
                        f"{arm.label} − {baseline}",
                        f"{c.mean_a:.{digits}f}",
                        f"{c.mean_b:.{digits}f}",
                        _diff_text(c, metric),
                        f"{c.p_value:.4f}",
                        verdict if verdict == "n.s." else f"**{verdict}**",
                    ]
                )
    if not body:
        return []
    header = [
        "metric",
        "comparison",
        "hybrid",
        "baseline",
        "difference [95% CI]",
        "p",
        "CI excludes 0",
    ]
    return [f"### {eval_set} — {size.name}", "", *_table(header, body)]


def section_significance(study: Study, comparisons: Comparisons) -> list[str]:
    """The significance tables, with how they were computed."""
    lines = [
        "## Significance",
        "",
        f"Difference = hybrid − baseline of the headline metric. {CONFIDENCE:.0%} CI: "
        "paired cluster bootstrap (percentile), resampling parallel questions so that "
        "translations stay together (MIRACL: queries); p: two-sided paired sign-flip "
        "randomisation test over the same clusters (`langmix.study.statistics.compare`). "
        "Several seeds are paired by averaging each side's per-query scores over its seeds, "
        "so the CI reflects the query sample, not seed variance (see the sd in Results). "
        "*better*/*worse* marks a CI that excludes 0, in the metric's direction "
        "(↓: lower is better).",
        "",
    ]
    sample = next(iter(comparisons.results.values()), None)
    if sample is not None:
        clusters = {ev: c.n_clusters for (ev, *_), c in comparisons.results.items()}
        lines += [
            f"Bootstrap resamples: {sample.n_resamples}; sign flips: {sample.n_permutations}; "
            "clusters: " + ", ".join(f"{ev} {n}" for ev, n in clusters.items()) + ".",
            "",
        ]
    for eval_set in study.eval_sets:
        for size in study.sizes:
            lines += table_significance(study, comparisons, eval_set, size)
    if not comparisons.results:
        lines += [
            "No comparisons: the study has no hybrid rows with a baseline at the same size.",
            "",
        ]
    lines += [f"- {note}" for note in comparisons.notes]
    return [*lines, ""] if comparisons.notes else lines


# --------------------------------------------------------------------------- plots


def _xticks(sizes: Sequence[Size]) -> list[tuple[float, str]]:
    return [(float(s.non_embedding), f"{s.label}\n{format_count(s.non_embedding)}") for s in sizes]


def _size_series(study: Study, eval_set: str, metric: str) -> list[plots.Series]:
    sizes = study.sizes
    series = []
    for arm in study.arms_for(eval_set):
        summaries = [_summary(study.cell_rows(eval_set, s, arm), metric) for s in sizes]
        has_sd = any(sd is not None for _, sd in summaries)
        series.append(
            plots.Series(
                arm.label,
                [float(s.non_embedding) for s in sizes],
                [mean for mean, _ in summaries],
                [sd or 0.0 for _, sd in summaries] if has_sd else None,
                dashed=arm.strategy == "untrained",
            )
        )
    return series


def plot_metrics_vs_size(study: Study, eval_set: str, path: Path) -> Path:
    """``map_vs_size``: one panel per headline metric, a line per strategy."""
    panels = [
        (_NAMES[m], _size_series(study, eval_set, m))
        for m in _SIZE_PANELS[study.eval_kind[eval_set]]
    ]
    return plots.metric_vs_size(
        path, panels, xticks=_xticks(study.sizes), title=f"{eval_set}: score vs model size"
    )


def plot_rank_distance_vs_size(study: Study, eval_set: str, path: Path) -> Path:
    """``rank_distance_vs_size``: rank distance per strategy over size (lower is better)."""
    panels = [("rank distance (lower is better)", _size_series(study, eval_set, "rank_distance"))]
    return plots.metric_vs_size(
        path, panels, xticks=_xticks(study.sizes), title=f"{eval_set}: rank distance vs size"
    )


def plot_hybrid_gain(
    study: Study, comparisons: Comparisons, eval_set: str, path: Path
) -> Path | None:
    """``hybrid_gain``: hybrid minus the best baseline with its CI band, per metric."""
    panels = []
    for metric in _GAIN_PANELS[study.eval_kind[eval_set]]:
        series = []
        for arm in study.hybrid_arms(eval_set):
            gains = _gains(study, comparisons, eval_set, metric, arm)
            if gains:
                series.append(
                    plots.GainSeries(
                        arm.label,
                        [float(s.non_embedding) for s, _, _ in gains],
                        [c.difference for _, _, c in gains],
                        [c.ci_low for _, _, c in gains],
                        [c.ci_high for _, _, c in gains],
                        [b for _, b, _ in gains],
                    )
                )
        panels.append((_NAMES[metric], series))
    if not any(series for _, series in panels):
        return None
    return plots.hybrid_gain(
        path,
        panels,
        xticks=_xticks(study.sizes),
        title=f"{eval_set}: hybrid − best baseline ({CONFIDENCE:.0%} CI)",
    )


def _pair_matrix(rows: Sequence[dict[str, Any]]) -> tuple[list[str], np.ndarray]:
    """Seed-mean ``per_pair_map`` as a query x passage language matrix."""
    pairs: dict[tuple[str, str], list[float]] = defaultdict(list)
    languages: dict[str, None] = {}  # ordered set, in the rows' own language order
    for row in rows:
        for key, value in (row.get("per_pair_map") or {}).items():
            query, passage = key.split("-", 1)
            languages.setdefault(query)
            languages.setdefault(passage)
            pairs[(query, passage)].append(float(value))
    langs = list(languages)
    matrix = np.full((len(langs), len(langs)), np.nan)
    for (query, passage), values in pairs.items():
        matrix[langs.index(query), langs.index(passage)] = float(np.mean(values))
    return langs, matrix


def plot_heatmap(study: Study, eval_set: str, path: Path) -> Path | None:
    """``heatmap``: per-language-pair mAP of hybrid for the largest model that has it."""
    for size in reversed(study.sizes):
        panels = []
        for arm in study.hybrid_arms(eval_set):
            langs, matrix = _pair_matrix(study.cell_rows(eval_set, size, arm))
            if langs:
                panels.append(plots.Heatmap(f"{arm.label}, {size.label}", langs, langs, matrix))
        if panels:
            return plots.pair_heatmap(
                path, panels, title=f"{eval_set}: mAP by query × passage language"
            )
    return None


def draw_plots(study: Study, comparisons: Comparisons) -> dict[str, list[tuple[str, Path]]]:
    """Draw every figure; returns per evaluation set the (caption, path) of each."""
    out: dict[str, list[tuple[str, Path]]] = {}
    folder = study.directory / PLOTS
    for eval_set in study.eval_sets:
        name = safe_name(eval_set)
        lareqa = study.eval_kind[eval_set] == "lareqa"
        figures: list[tuple[str, Path | None]] = [
            (
                "Score vs size",
                plot_metrics_vs_size(study, eval_set, folder / f"map_vs_size_{name}.png"),
            ),
            (
                "Hybrid − best baseline vs size",
                plot_hybrid_gain(study, comparisons, eval_set, folder / f"hybrid_gain_{name}.png"),
            ),
        ]
        if lareqa:
            figures += [
                (
                    "Rank distance vs size",
                    plot_rank_distance_vs_size(
                        study, eval_set, folder / f"rank_distance_vs_size_{name}.png"
                    ),
                ),
                (
                    "Hybrid mAP per language pair, largest model",
                    plot_heatmap(study, eval_set, folder / f"heatmap_{name}.png"),
                ),
            ]
        out[eval_set] = [(caption, p) for caption, p in figures if p is not None]
    return out


def section_plots(study: Study, figures: dict[str, list[tuple[str, Path]]]) -> list[str]:
    """Links to the figures, relative to the report so the folder can be moved."""
    lines = ["## Plots", ""]
    for eval_set, items in figures.items():
        lines += [f"### {eval_set}", ""]
        for caption, path in items:
            rel = path.relative_to(study.directory).as_posix()
            lines += [f"![{caption}]({rel})", ""]
    return lines


# --------------------------------------------------------------------------- answer


def _answer_metric(
    study: Study, comparisons: Comparisons, eval_set: str, metric: str, arm: Arm
) -> str | None:
    gains = _gains(study, comparisons, eval_set, metric, arm)
    if not gains:
        return None
    direction = "" if _higher_is_better(metric) else " (lower is better)"
    parts = [
        f"{size.name}: {_diff_text(c, metric)} vs {baseline}, "
        + ("not significant" if not _significant(c) else f"significant, {_verdict(c)}")
        for size, baseline, c in gains
    ]
    text = (
        f"**{eval_set}, {_NAMES[metric]}{direction}, {arm.label} − best baseline** "
        f"(difference [{CONFIDENCE:.0%} CI]): " + "; ".join(parts) + "."
    )
    if len(gains) > 1:
        (first, _, c0), (last, _, c1) = gains[0], gains[-1]
        d = _digits(metric) + 1
        text += (
            f" From {first.label} to {last.label} the difference changes by "
            f"{c1.difference - c0.difference:+.{d}f} ({c0.difference:+.{d}f} → {c1.difference:+.{d}f})."
        )
    significant = [s.label for s, _, c in gains if _significant(c)]
    not_significant = [s.label for s, _, c in gains if not _significant(c)]
    text += (
        f" CI excludes 0 at: {', '.join(significant) or 'no size'};"
        f" includes 0 at: {', '.join(not_significant) or 'no size'}."
    )
    return text


def section_answer(study: Study, comparisons: Comparisons) -> list[str]:
    """The generated answer: hybrid's gain over the best baseline from small to large."""
    lines = ["## Answer", ""]
    paragraphs = [
        text
        for eval_set in study.eval_sets
        for metric in _TESTED[study.eval_kind[eval_set]]
        for arm in study.hybrid_arms(eval_set)
        if (text := _answer_metric(study, comparisons, eval_set, metric, arm)) is not None
    ]
    if not paragraphs:
        return [*lines, "No answer yet: no size has both hybrid and a trained baseline.", ""]
    lines += [
        "How much better (or worse) hybrid batches are than the best baseline (the best of "
        "mono, cross and random at that size), from the smallest to the largest model "
        f"({', '.join(s.name for s in study.sizes)}; non-embedding parameters):",
        "",
    ]
    for paragraph in paragraphs:
        lines += [paragraph, ""]
    significant = sum(_significant(c) for c in comparisons.results.values())
    lines += [
        f"For scale: the paper (Elmahdy et al., 2024) reported hybrid gains of at most "
        f"~{_PAPER_GAIN} mAP and ran no significance tests; here {significant} of "
        f"{len(comparisons.results)} hybrid-versus-baseline comparisons (all metrics, "
        "including untrained) have a CI that excludes 0.",
        "",
    ]
    seeds = {r["seed"] for r in study.rows if r.get("seed") is not None}
    if len(seeds) < 2:
        lines += [
            "With one training seed, these intervals measure only the sampling of queries, "
            "not the run-to-run variance of training, which at this scale can be as large as "
            "the differences; read 'significant' as 'for this trained model', and add seeds "
            "before drawing conclusions about the strategies.",
            "",
        ]
    if any(_OFFLINE_MODEL.match(size.model) for size in study.sizes):
        lines += [
            "The sizes here are depth cuts of one model (see above), so this trend is a proxy; "
            "the hub family answers the size question.",
            "",
        ]
    return lines


# --------------------------------------------------------------------------- build


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build_report(
    study_dir: str | os.PathLike[str],
    *,
    n_resamples: int = 2000,
    n_permutations: int = 2000,
    seed: int = 0,
) -> Path:
    """(Re)build ``report.md`` and ``plots/*.png`` of a study directory.

    Reads only ``results.jsonl``, the per-query files it names and (for the description)
    ``study.toml``, so it can run any time, e.g. after a partial run. Figures and the
    report are written atomically; with the same inputs and ``seed`` the report is the
    same except for its build date.

    Args:
        study_dir: The study directory.
        n_resamples: Bootstrap resamples per comparison.
        n_permutations: Permutations per comparison.
        seed: Seed of the resampling (fixed so rebuilds agree).

    Returns:
        The path of ``report.md``.

    Raises:
        FileNotFoundError: If ``results.jsonl`` is missing.

    Example:
        >>> build_report("runs/scaling")  # doctest: +SKIP
        PosixPath('runs/scaling/report.md')
    """
    study = load_study(study_dir)
    comparisons = compute_comparisons(
        study, n_resamples=n_resamples, n_permutations=n_permutations, seed=seed
    )
    figures = draw_plots(study, comparisons)
    built = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Scaling study: {study.name}",
        "",
        f"Built: {built} from `{RESULTS}` ({len(study.rows)} rows).",
        "",
        "Question: how does the benefit of hybrid batch training change as the model grows, "
        "against the baselines (mono, cross, random), measured by mAP, with confidence "
        "intervals?",
        "",
        *section_run(study),
        *section_answer(study, comparisons),
        *section_results(study),
        *section_significance(study, comparisons),
        *section_plots(study, figures),
    ]
    path = study.directory / REPORT
    _write_atomic(path, "\n".join(lines).rstrip("\n") + "\n")
    return path
