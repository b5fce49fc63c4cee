"""Hybrid against each baseline: paired comparisons, the best baseline, and their verdicts.

:func:`compute_comparisons` runs :func:`langmix.study.statistics.compare` once for every
(evaluation set, size, metric, hybrid arm, baseline) the study has rows for; the report's
significance tables, its hybrid-gain figures and its generated answer all read the same
:class:`Comparisons`, so they cannot disagree.

Example:
    >>> from langmix.study.results import load_study
    >>> study = load_study("runs/scaling")  # doctest: +SKIP
    >>> comparisons = compute_comparisons(study)  # doctest: +SKIP
    >>> [verdict(c) for _, _, c in gains(study, comparisons, "xquad-r", "map_multi", study.hybrid_arms("xquad-r")[0])]  # doctest: +SKIP
    ['n.s.', 'n.s.', 'better']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langmix.study.results import METRIC_NAMES, Arm, Size, Study, cell_summary, digits
from langmix.study.statistics import METRICS, Comparison, compare

__all__ = [
    "BASELINES",
    "COMPARED",
    "CONFIDENCE",
    "TESTED",
    "ComparisonKey",
    "Comparisons",
    "best_baseline",
    "compute_comparisons",
    "diff_text",
    "gains",
    "higher_is_better",
    "significant",
    "verdict",
]

CONFIDENCE = 0.95

# What hybrid is tested against; untrained is included as the "did training help" check.
COMPARED = ("mono", "cross", "random", "untrained")
# The "best baseline" of the question is a trained one: untrained is a reference, not a rival.
BASELINES = ("mono", "cross", "random")
# Tested metrics per evaluation kind, in answer order: the paper's headline, multilingual
# mAP, first.
TESTED = {
    "lareqa": ("map_multi", "map_mono", "map_cross", "rank_distance"),
    "miracl": ("ndcg@10", "map@100"),
}

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
        metrics = TESTED[study.eval_kind[eval_set]]
        for size in study.sizes:
            for arm in study.hybrid_arms(eval_set):
                hybrid_rows = study.cell_rows(eval_set, size, arm)
                if not hybrid_rows:
                    continue
                hybrid = _per_query_list(study, hybrid_rows)
                for baseline in COMPARED:
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
                                f"{eval_set}, {size.label}, {METRIC_NAMES[metric]}: "
                                f"{arm.label} vs {baseline} skipped ({error})"
                            )
                            continue
                        out.results[(eval_set, size.model, metric, arm, baseline)] = c
    return out


def higher_is_better(metric: str) -> bool:
    """Whether a larger ``metric`` is better (rank distance: smaller is).

    Example:
        >>> higher_is_better("map_multi"), higher_is_better("rank_distance")
        (True, False)
    """
    return METRICS[metric][1]


def best_baseline(study: Study, eval_set: str, size: Size, metric: str) -> str | None:
    """The trained baseline with the best seed-mean ``metric`` at this size, if any.

    Example:
        >>> best_baseline(study, "xquad-r", study.sizes[0], "map_multi")  # doctest: +SKIP
        'cross'
    """
    means = {}
    for baseline in BASELINES:
        mean, _ = cell_summary(study.cell_rows(eval_set, size, Arm(baseline)), metric)
        if not math.isnan(mean):
            means[baseline] = mean
    if not means:
        return None
    sign = 1.0 if higher_is_better(metric) else -1.0
    return max(means, key=lambda b: sign * means[b])


def gains(
    study: Study, comparisons: Comparisons, eval_set: str, metric: str, arm: Arm
) -> list[tuple[Size, str, Comparison]]:
    """Hybrid minus the best baseline at every size where both exist, small to large.

    Returns:
        ``(size, best baseline, comparison)`` per size.

    Example:
        >>> [(s.label, b) for s, b, _ in gains(study, comparisons, "xquad-r", "map_multi", arm)]  # doctest: +SKIP
        [('L2', 'cross'), ('L6', 'cross')]
    """
    out = []
    for size in study.sizes:
        baseline = best_baseline(study, eval_set, size, metric)
        c = comparisons.get(eval_set, size, metric, arm, baseline) if baseline else None
        if c is not None:
            out.append((size, baseline, c))
    return out


def significant(c: Comparison) -> bool:
    """Whether the confidence interval of the difference excludes 0.

    Example:
        >>> c = Comparison("map_multi", 0.52, 0.50, 0.02, 0.005, 0.035, 0.01, 40, 2000, True)
        >>> significant(c), verdict(c), diff_text(c, "map_multi")
        (True, 'better', '+0.0200 [+0.0050, +0.0350]')
    """
    return c.ci_low > 0 or c.ci_high < 0


def verdict(c: Comparison) -> str:
    """``better``/``worse`` for hybrid when the CI excludes 0, else ``n.s.``.

    Example:
        >>> verdict(Comparison("rank_distance", 90.0, 80.0, 10.0, 4.0, 16.0, 0.01, 40, 2000, False))
        'worse'
    """
    if not significant(c):
        return "n.s."
    return "better" if (c.difference > 0) == c.higher_is_better else "worse"


def diff_text(c: Comparison, metric: str) -> str:
    """The difference and its CI, one digit finer than the tables.

    Example:
        >>> c = Comparison("rank_distance", 80.0, 90.0, -10.0, -16.0, -4.0, 0.01, 40, 2000, False)
        >>> diff_text(c, "rank_distance")
        '-10.00 [-16.00, -4.00]'
    """
    d = digits(metric) + 1  # differences are small; one more digit than the tables
    return f"{c.difference:+.{d}f} [{c.ci_low:+.{d}f}, {c.ci_high:+.{d}f}]"
