"""A study's results as the report sees them: rows of ``results.jsonl`` indexed by arm and size.

``results.jsonl`` holds one row per (cell, evaluation set); a cell is one model trained with
one strategy (hybrid: one alpha) and one seed. :func:`load_study` reads the rows, keeps the
last one written per (cell, evaluation set) and indexes them by (evaluation set, model,
arm), the unit every table, comparison and figure of the report is built from. It also
holds the names and display precision of the metrics the rows carry.

Example:
    >>> study = load_study("runs/scaling")  # doctest: +SKIP
    >>> [size.label for size in study.sizes], [arm.label for arm in study.arms]  # doctest: +SKIP
    (['L2', 'L6', 'L12'], ['untrained', 'mono', 'cross', 'hybrid α=0.5', 'random'])
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tomllib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from langmix.data.errors import DataError
from langmix.study.statistics import question_level, seed_summary

__all__ = [
    "DISTILLED_MODEL",
    "METRIC_NAMES",
    "OFFLINE_MODEL",
    "RESULTS",
    "STRATEGY_ORDER",
    "Arm",
    "LoadedRows",
    "Size",
    "Study",
    "cell_summary",
    "digits",
    "format_count",
    "load_rows",
    "load_study",
    "missing_cells",
]

RESULTS = "results.jsonl"
#: The report a study's directory holds (langmix.study.report writes it).
REPORT = "report.md"

# Table order of the paper (untrained reference first, random last).
STRATEGY_ORDER = ("untrained", "mono", "cross", "hybrid", "random")
# Models of the offline families, proxies for size: layer cuts of one pretrained model, and
# students distilled from it (langmix.distillation).
OFFLINE_MODEL = re.compile(r"^offline:[^@]+(?<!-distilled)@L\d+$")
DISTILLED_MODEL = re.compile(r"^offline:[^@]+-distilled@L\d+$")

METRIC_NAMES = {
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
        known = self.strategy in STRATEGY_ORDER
        rank = STRATEGY_ORDER.index(self.strategy) if known else len(STRATEGY_ORDER)
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
        compare_with: ``[study] compare_with``: the name of a sibling study directory whose
            claims the report pairs with this study's (another size family), if any.
        primary: ``[study] primary``: the test set of the primary family ("" when not
            declared: the report then takes the first test set).
        equivalence_margin: ``[study] equivalence_margin`` (default 0.005): the margin of
            the equivalence tests, in the metric's units.
        recipes: Per model, the training settings its ``[[models]]`` entry overrides
            (empty when every size is trained alike).

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
    compare_with: str = ""
    primary: str = ""
    equivalence_margin: float = 0.005
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
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
                    arrays = {key: npz[key] for key in npz.files}
                # One form for every file of a set, stored per query (a run) or per
                # question (a publication, or a run resumed from one): the statistics are
                # the same on both (langmix.study.statistics.question_level).
                self._per_query[path] = question_level(arrays) or arrays
            else:
                self._per_query[path] = None
        return self._per_query[path]


# --------------------------------------------------------------------------- loading


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a ``results.jsonl``; a cut last line (an interrupted write) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise
    return rows


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


def _study_setting(directory: Path, key: str) -> str:
    """``[study] key`` of ``study.toml`` as text ("" when absent or unreadable)."""
    path = directory / "study.toml"
    if not path.is_file():
        return ""
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError:
        return ""  # the report must still build; the runner validates the config
    study = config.get("study", {})
    return str(study.get(key, "")).strip() if isinstance(study, dict) else ""


def train_languages(study: Study) -> tuple[str, ...]:
    """The languages the study trained on: ``[train] languages`` of its ``study.toml``, else
    every language of its training sets (``()`` when a set is not a known one).

    Example:
        >>> train_languages(load_study("docs/results/cpu-full"))  # doctest: +SKIP
        ('ar', 'de', 'en', 'es', 'hi', 'vi', 'zh')
    """
    from langmix.data.lareqa import LAREQA_DATASETS
    from langmix.data.mmarco import MMARCO_LANGUAGES

    path = study.directory / "study.toml"
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
        train = tomllib.loads(path.read_text(encoding="utf-8")).get("train", {})
        chosen = train.get("languages") if isinstance(train, dict) else None
        if isinstance(chosen, str):
            chosen = [x.strip() for x in chosen.split(",")]
        if isinstance(chosen, list) and chosen:
            return tuple(sorted(str(x) for x in chosen))
    registry = {
        **{k: tuple(v) for k, v in LAREQA_DATASETS.items()},
        "mmarco": tuple(MMARCO_LANGUAGES),
    }
    sets = {r["train_set"] for r in study.rows if r.get("train_set")}
    if not sets or any(s not in registry for s in sets):
        return ()
    return tuple(sorted({lang for s in sets for lang in registry[s]}))


def eval_languages(study: Study, eval_set: str) -> tuple[str, ...]:
    """The query languages an evaluation set's rows were scored in (from their per-pair or
    per-language metrics).

    Example:
        >>> eval_languages(load_study("docs/results/cpu-full"), "xquad-r[:12]")[:3]  # doctest: +SKIP
        ('ar', 'de', 'el')
    """
    langs: set[str] = set()
    for row in study.rows:
        if row["eval_set"] != eval_set:
            continue
        langs |= {pair.split("-", 1)[0] for pair in row.get("per_pair_map") or {}}
        langs |= set(row.get("per_language") or {})
    return tuple(sorted(langs))


def _model_recipes(directory: Path) -> dict[str, dict[str, Any]]:
    """Per model name, the ``train`` settings of its ``[[models]]`` entry in ``study.toml``."""
    path = directory / "study.toml"
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except tomllib.TOMLDecodeError:
        return {}
    models = config.get("models", [])
    if not isinstance(models, list):
        return {}
    return {
        str(m["name"]): dict(m.get("train", {}))
        for m in models
        if isinstance(m, dict) and "name" in m and m.get("train")
    }


def load_study(study_dir: str | os.PathLike[str]) -> Study:
    """Load and index a study directory's rows.

    Args:
        study_dir: Directory holding ``results.jsonl`` (and optionally ``study.toml``).

    Returns:
        The indexed :class:`Study`.

    Raises:
        DataError: If ``results.jsonl`` is missing (naming it and the command that writes it).

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
        description=_study_setting(directory, "description"),
        compare_with=_study_setting(directory, "compare_with"),
        primary=_study_setting(directory, "primary"),
        equivalence_margin=float(_study_setting(directory, "equivalence_margin") or 0.005),
        recipes=_model_recipes(directory),
        _index=dict(index),
    )


def missing_cells(study: Study) -> list[str]:
    """Cells of the grid without a row, per evaluation set.

    The grid is the study's ``study.toml`` when it is there and valid (so sizes and arms that
    have not run at all are counted too), else the grid the rows imply (sizes × arms × seeds).

    Example:
        >>> missing_cells(load_study("runs/cpu-full"))[:1]  # doctest: +SKIP
        ['L12 mono seed 2 on xquad-r[:12]']
    """
    planned = _planned(study)
    if planned is not None:
        have = {(r["cell"], r["eval_set"]) for r in study.rows}
        return [f"{cell} on {ev}" for cell, ev in planned if (cell, ev) not in have]
    seeds = sorted({r["seed"] for r in study.rows if r.get("seed") is not None})
    missing = []
    for eval_set in study.eval_sets:
        for size in study.sizes:
            # Hybrid alphas may be set per model (an α sweep at one size): a size's grid holds
            # the alphas it has rows of, or every alpha when it has no hybrid row at all.
            alphas = {
                arm
                for arm in study.arms
                if arm.strategy == "hybrid"
                and any(study.cell_rows(ev, size, arm) for ev in study.eval_sets)
            }
            for arm in study.arms:
                if arm.strategy == "hybrid" and alphas and arm not in alphas:
                    continue
                have = {r.get("seed") for r in study.cell_rows(eval_set, size, arm)}
                want = [None] if arm.strategy == "untrained" else seeds
                for s in want:
                    if s not in have:
                        where = f"{size.label} {arm.label}" + (
                            f" seed {s}" if s is not None else ""
                        )
                        missing.append(f"{where} on {eval_set}")
    return missing


def _planned(study: Study) -> list[tuple[str, str]] | None:
    """(cell key, evaluation set) of every cell ``study.toml`` plans, or ``None``."""
    from langmix.study.config import load_study_config

    path = study.directory / "study.toml"
    if not path.is_file():
        return None
    try:
        config = load_study_config(path)
    except (DataError, TypeError, ValueError):
        return None  # a report must still build; the runner validates the config
    return [(cell.key, spec.name) for cell in config.cells() for spec in config.evals]


# --------------------------------------------------------------------------- numbers


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table and the blank line after it.

    Example:
        >>> markdown_table(["a", "b"], [["1", "2"]])
        ['| a | b |', '|---|---|', '| 1 | 2 |', '']
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return [*lines, ""]


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word`` in the number ``n`` takes: "1 cell", "2 cells".

    Example:
        >>> plural(1, "cell"), plural(3, "cell"), plural(2, "family", "families")
        ('1 cell', '3 cells', '2 families')
    """
    return f"{n} {word if n == 1 else (many or word + 's')}"


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


def digits(metric: str) -> int:
    """Decimal places ``metric`` is shown with.

    Example:
        >>> digits("map_multi"), digits("rank_distance")
        (3, 1)
    """
    # Rank distances are ranks (tens to thousands); the rest are scores in [0, 1].
    return 1 if metric == "rank_distance" else 3


def _values(rows: Sequence[dict[str, Any]], metric: str) -> list[float]:
    values = [row["metrics"].get(metric) for row in rows]
    return [float(v) for v in values if v is not None]


def cell_summary(rows: Sequence[dict[str, Any]], metric: str) -> tuple[float, float | None]:
    """Mean over seeds and, with more than one seed, their standard deviation.

    Args:
        rows: The rows of one cell (one per seed), e.g. :meth:`Study.cell_rows`.
        metric: Key of the rows' ``metrics``.

    Returns:
        ``(mean, sd)``; the mean is NaN without values, the sd ``None`` with fewer than two.

    Example:
        >>> cell_summary([{"metrics": {"map_multi": 0.5}}], "map_multi")
        (0.5, None)
    """
    values = _values(rows, metric)
    if not values:
        return math.nan, None
    mean, sd = seed_summary(values)
    return float(mean), float(sd) if len(values) > 1 else None
