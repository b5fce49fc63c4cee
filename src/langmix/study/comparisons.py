"""Every claim the report makes, as a seed-aware estimate: effects, synergy margins, slopes.

:func:`compute_comparisons` runs the two-level bootstrap of :mod:`langmix.study.inference`
once per (evaluation set, metric) over every cell of the study (sizes × arms, each with its
seeds), so that all claims about one metric share one set of replicates and can be
combined, across sizes too:

* **effect**: hybrid(α) − baseline, for each baseline (mono, cross, random) separately, per
  size. No "best baseline" is picked: choosing the best of three on the data that then
  tests it would bias every comparison against hybrid.
* **synergy**: hybrid(α) − [α · mono + (1 − α) · cross], the margin over the straight line
  between the two pure strategies (mono is α = 1, cross is α = 0). Positive: synergy; zero:
  interpolation; negative: interference. This is the test of the paper's claim.
* **slope**: the least-squares slope, per doubling of non-embedding parameters (log2), of an
  effect or a synergy margin across the sizes that have it, resampled jointly over sizes.

Each kind is one family of tests, Holm-corrected over all its evaluation sets, sizes,
metrics, arms and baselines. Only test sets are tested: an evaluation set named
``…:validation`` chose checkpoints, so the report uses it only for the "did training help"
check.

Example:
    >>> from langmix.study.results import load_study
    >>> study = load_study("runs/scaling")  # doctest: +SKIP
    >>> found = compute_comparisons(study)  # doctest: +SKIP
    >>> [t.baseline for t in found.tests if t.kind == "effect"][:3]  # doctest: +SKIP
    ['mono', 'cross', 'random']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from langmix.study.inference import Estimate, draw_headlines, estimate, holm, slope_weights
from langmix.study.results import METRIC_NAMES, Arm, Size, Study, digits
from langmix.study.statistics import METRICS, units

__all__ = [
    "BASELINES",
    "CONFIDENCE",
    "KINDS",
    "TESTED",
    "Comparisons",
    "Test",
    "compute_comparisons",
    "diff_text",
    "higher_is_better",
    "is_test_set",
    "verdict",
]

CONFIDENCE = 0.95
#: What hybrid is compared with, each separately.
BASELINES = ("mono", "cross", "random")
#: Tested metrics per evaluation kind, in answer order: multilingual mAP (the paper's
#: headline) first.
TESTED = {
    "lareqa": ("map_multi", "map_mono", "map_cross", "rank_distance"),
    "miracl": ("ndcg@10", "map@100"),
}
#: The families of tests, each Holm-corrected on its own.
KINDS = ("effect", "synergy", "slope")

_CellKey = tuple[str, Arm]  # (model, arm)


@dataclass(frozen=True)
class Test:
    """One tested claim.

    Attributes:
        kind: ``effect``, ``synergy`` or ``slope``.
        eval_set: The evaluation set.
        metric: The metric.
        arm: The hybrid arm.
        against: ``mono``/``cross``/``random`` (an effect, or the slope of one) or
            ``interpolation`` (a synergy margin, or its slope).
        size: The size, or ``None`` for a slope.
        estimate: Value, interval and unadjusted p-value.
        p_holm: Holm-adjusted p-value within the kind's family.
        sizes: For a slope, the sizes it was fitted on.
    """

    kind: str
    eval_set: str
    metric: str
    arm: Arm
    against: str
    size: Size | None
    estimate: Estimate
    p_holm: float = math.nan
    sizes: tuple[Size, ...] = ()

    @property
    def significant(self) -> bool:
        """Whether the Holm-adjusted p-value is below ``1 - CONFIDENCE``."""
        return self.p_holm < 1.0 - CONFIDENCE


@dataclass
class Comparisons:
    """All tests and per-cell interval estimates of a study, computed once.

    Attributes:
        tests: Every tested claim, Holm-adjusted within its kind.
        cells: ``(eval set, metric, model, arm) -> Estimate`` of the cell's headline.
        clusters: Resampling clusters per evaluation set.
        notes: Comparisons that could not be made, and why.
        n_resamples: Bootstrap replicates behind every estimate.
    """

    tests: list[Test] = field(default_factory=list)
    cells: dict[tuple[str, str, str, Arm], Estimate] = field(default_factory=dict)
    clusters: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    n_resamples: int = 0

    def find(
        self,
        kind: str,
        eval_set: str,
        metric: str,
        *,
        arm: Arm | None = None,
        against: str | None = None,
        size: Size | None = None,
    ) -> list[Test]:
        """The tests matching every given field, in computation order."""
        return [
            t
            for t in self.tests
            if t.kind == kind
            and t.eval_set == eval_set
            and t.metric == metric
            and (arm is None or t.arm == arm)
            and (against is None or t.against == against)
            and (size is None or (t.size is not None and t.size.model == size.model))
        ]


def is_test_set(eval_set: str) -> bool:
    """Whether claims may be tested on ``eval_set`` (not the checkpoint-choosing part).

    Example:
        >>> is_test_set("mlqa-r:heldout"), is_test_set("mlqa-r:validation")
        (True, False)
    """
    return ":validation" not in eval_set


def higher_is_better(metric: str) -> bool:
    """Whether a larger ``metric`` is better (rank distance: smaller is).

    Example:
        >>> higher_is_better("map_multi"), higher_is_better("rank_distance")
        (True, False)
    """
    return METRICS[metric][1]


def _seed_values(
    study: Study, rows: Sequence[dict[str, Any]], metric: str, keys: np.ndarray | None
) -> np.ndarray | None:
    """``[n_seeds, n_units]`` unit values of one cell, aligned with ``keys``; ``None`` if a
    per-query file is missing or describes other units."""
    out = []
    for row in rows:
        per_query = study.per_query(row)
        if per_query is None:
            return None
        u = units(per_query, metric)
        if keys is not None and not np.array_equal(u.keys, keys):
            return None
        out.append(u.values)
    return np.stack(out)


def _metric_tests(
    study: Study, out: Comparisons, eval_set: str, metric: str, n_resamples: int, seed: int
) -> list[Test]:
    """Every cell estimate and unadjusted test of one (evaluation set, metric)."""
    layout = None
    cells: dict[_CellKey, np.ndarray] = {}
    for size in study.sizes:
        for arm in study.arms_for(eval_set):
            rows = study.cell_rows(eval_set, size, arm)
            if not rows:
                continue
            if layout is None:
                first = study.per_query(rows[0])
                if first is None:
                    out.notes.append(f"{eval_set}, {size.label}, {arm.label}: no per-query file")
                    continue
                layout = units(first, metric)
            values = _seed_values(study, rows, metric, layout.keys)
            if values is None:
                out.notes.append(
                    f"{eval_set}, {size.label}, {arm.label}, {METRIC_NAMES[metric]}: left out "
                    "(a per-query file is missing or holds other queries)"
                )
                continue
            cells[(size.model, arm)] = values
    if layout is None or not cells:
        return []
    draws = draw_headlines(layout, cells, n_resamples=n_resamples, seed=seed)
    out.n_resamples = draws.n_resamples
    out.clusters[eval_set] = draws.n_clusters
    for key in cells:
        out.cells[(eval_set, metric, *key)] = estimate(draws, {key: 1.0}, confidence=CONFIDENCE)

    def contrast(size: Size, arm: Arm, against: str) -> dict[_CellKey, float] | None:
        hybrid = (size.model, arm)
        if hybrid not in cells:
            return None
        if against == "interpolation":
            mono, cross = (size.model, Arm("mono")), (size.model, Arm("cross"))
            if mono not in cells or cross not in cells:
                return None
            assert arm.alpha is not None
            return {hybrid: 1.0, mono: -arm.alpha, cross: -(1.0 - arm.alpha)}
        base = (size.model, Arm(against))
        return {hybrid: 1.0, base: -1.0} if base in cells else None

    tests: list[Test] = []
    hybrid_arms = [a for a in study.arms_for(eval_set) if a.strategy == "hybrid"]
    for arm in hybrid_arms:
        for against in (*BASELINES, "interpolation"):
            kind = "synergy" if against == "interpolation" else "effect"
            present: list[tuple[Size, dict[_CellKey, float]]] = []
            for size in study.sizes:
                weights = contrast(size, arm, against)
                if weights is None:
                    continue
                present.append((size, weights))
                e = estimate(draws, weights, confidence=CONFIDENCE)
                tests.append(Test(kind, eval_set, metric, arm, against, size, e))
            # A slope only over sizes that all have this arm, and at least three of them
            # (two points fit any line exactly and say nothing about a trend).
            if len(present) >= 3 and len(present) == len(study.sizes):
                x = [math.log2(max(size.non_embedding, 1)) for size, _ in present]
                a = slope_weights(x)
                combined: dict[_CellKey, float] = {}
                for coefficient, (_, weights) in zip(a, present, strict=True):
                    for key, w in weights.items():
                        combined[key] = combined.get(key, 0.0) + coefficient * w
                e = estimate(draws, combined, confidence=CONFIDENCE)
                sizes = tuple(size for size, _ in present)
                tests.append(Test("slope", eval_set, metric, arm, against, None, e, sizes=sizes))
    return tests


def compute_comparisons(study: Study, *, n_resamples: int = 4000, seed: int = 0) -> Comparisons:
    """Estimate every cell and test every effect, synergy margin and slope of a study.

    Args:
        study: The loaded study.
        n_resamples: Two-level bootstrap replicates (shared by all claims of a metric).
        seed: Seed of the resampling (fixed, so rebuilding the report gives the same numbers).

    Returns:
        The :class:`Comparisons`, Holm-adjusted per kind.

    Example:
        >>> comparisons = compute_comparisons(load_study("runs/scaling"))  # doctest: +SKIP
    """
    out = Comparisons()
    tests: list[Test] = []
    for eval_set in study.eval_sets:
        if not is_test_set(eval_set):
            continue  # nothing is estimated or tested on the checkpoint-choosing data
        for metric in TESTED[study.eval_kind[eval_set]]:
            tests += _metric_tests(study, out, eval_set, metric, n_resamples, seed)
    for kind in KINDS:
        family = [i for i, t in enumerate(tests) if t.kind == kind]
        adjusted = holm([tests[i].estimate.p_value for i in family])
        for i, p in zip(family, adjusted, strict=True):
            tests[i] = replace(tests[i], p_holm=float(p))
    out.tests = tests
    return out


def verdict(test: Test) -> str:
    """``better``/``worse`` for hybrid when the Holm-adjusted test rejects, else ``n.s.``.

    For a synergy margin *better* means synergy and *worse* interference; for a slope,
    *better* means the difference moves in hybrid's favour as the model grows.

    Example:
        >>> from langmix.study.inference import Estimate
        >>> e = Estimate(-0.02, 0.005, -0.03, -0.01, 1e-4, 8.0, 0.004, 0.003, 0.95, 4000)
        >>> verdict(Test("effect", "x", "map_multi", Arm("hybrid", 0.5), "mono", None, e, 4e-4))
        'worse'
    """
    if not test.significant:
        return "n.s."
    return "better" if (test.estimate.value > 0) == higher_is_better(test.metric) else "worse"


def diff_text(e: Estimate, metric: str, *, per: str = "") -> str:
    """A value and its interval, one digit finer than the tables.

    Example:
        >>> from langmix.study.inference import Estimate
        >>> diff_text(Estimate(0.02, 0.005, 0.005, 0.035, 0.01, 9.0, 0.0, 0.005, 0.95, 10),
        ...           "map_multi")
        '+0.0200 [+0.0050, +0.0350]'
    """
    d = digits(metric) + 1
    return f"{e.value:+.{d}f}{per} [{e.ci_low:+.{d}f}, {e.ci_high:+.{d}f}]"
