"""What a test can see, and what an equality claim needs: minimum detectable effects and TOST.

A "not significant" verdict says nothing unless the reader knows how large an effect the
test could have found: the **minimum detectable effect** (MDE) is the true difference a
two-sided t-test at level ``alpha`` rejects with probability ``power``, for the standard
error and degrees of freedom the study measured. Equality is never read from
non-significance: it needs an **equivalence test** (two one-sided tests, TOST) against a
stated margin, which rejects "the difference is at least the margin" on both sides.

scipy has the t distribution but neither formula for a bootstrap standard error with
Welch-Satterthwaite degrees of freedom (statsmodels' power classes assume a sample size and
a standardised effect, not a measured ``se``), hence these few lines.

Example:
    >>> round(minimum_detectable_effect(0.001, 40.0), 5)
    0.00287
    >>> tost(0.0005, 0.001, 40.0, margin=0.005) < 0.05
    True
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

# The formulas live with the verdicts that use them; re-exported as the planning API.
from langmix.study.verdicts import minimum_detectable_effect, tost

__all__ = [
    "minimum_detectable_effect",
    "predicted_mde",
    "section_power",
    "seeds_needed",
    "tost",
]

if TYPE_CHECKING:
    from langmix.study.comparisons import Comparisons
    from langmix.study.results import Study

#: Question multiples the report's power section plans for when seeds alone cannot reach
#: the target (more test questions: a larger or second test set).
QUESTION_SCALES = (1.0, 2.0, 4.0)
#: The most seeds per cell a plan may ask for.
MOST_SEEDS = 50


def predicted_mde(
    se_seed: float,
    se_question: float,
    *,
    seeds_now: int,
    seeds: int,
    clusters: int,
    question_scale: float = 1.0,
    tests: int = 1,
) -> float:
    """The MDE of a two-cell difference with another number of seeds and of questions.

    The seed part of the variance scales with ``seeds_now / seeds``, the question part
    with ``1 / question_scale`` (``question_scale`` = new clusters / measured clusters);
    the degrees of freedom are Welch-Satterthwaite's, with ``2 (seeds - 1)`` for the two
    cells' seeds and ``clusters * question_scale - 1`` for the questions.

    Args:
        se_seed: Measured seed part of the standard error.
        se_question: Measured question part.
        seeds_now: Seeds per cell behind the measurement.
        seeds: Seeds per cell to predict for (at least 2).
        clusters: Question clusters behind the measurement.
        question_scale: How many times more question clusters the new design has.
        tests: Size of the Holm family (see :func:`minimum_detectable_effect`).

    Example:
        >>> round(predicted_mde(0.002, 0.0, seeds_now=3, seeds=12, clusters=300), 4)
        0.0029
    """
    if seeds < 2 or seeds_now < 1 or clusters < 2 or not question_scale > 0:
        raise ValueError(
            f"need seeds >= 2, seeds_now >= 1, clusters >= 2, question_scale > 0; got "
            f"{seeds}, {seeds_now}, {clusters}, {question_scale}"
        )
    v_seed = se_seed**2 * seeds_now / seeds
    v_question = se_question**2 / question_scale
    se = math.sqrt(v_seed + v_question)
    if se == 0:
        return 0.0
    denominator = v_seed**2 / (2 * (seeds - 1)) + v_question**2 / max(
        clusters * question_scale - 1, 1
    )
    df = se**4 / denominator if denominator > 0 else math.inf
    return minimum_detectable_effect(se, df, tests=tests)


def seeds_needed(
    target: float,
    se_seed: float,
    se_question: float,
    *,
    seeds_now: int,
    clusters: int,
    question_scale: float = 1.0,
    tests: int = 1,
    most: int = 200,
) -> int | None:
    """The fewest seeds per cell whose predicted MDE is at most ``target``; ``None`` when
    even ``most`` seeds do not reach it (the question noise alone is too large).

    Example:
        >>> seeds_needed(0.005, 0.002, 0.0005, seeds_now=3, clusters=300)
        6
        >>> seeds_needed(0.005, 0.002, 0.002, seeds_now=3, clusters=300) is None
        True
    """
    for seeds in range(2, most + 1):
        mde = predicted_mde(
            se_seed,
            se_question,
            seeds_now=seeds_now,
            seeds=seeds,
            clusters=clusters,
            question_scale=question_scale,
            tests=tests,
        )
        if mde <= target:
            return seeds
    return None


def power_table(
    study_dir: str,
    *,
    seeds: int | None = None,
    question_scale: float = 1.0,
    target: float = 0.005,
    metric: str = "map_multi",
    eval_set: str | None = None,
    n_resamples: int = 2000,
) -> list[str]:
    """``langmix power``: per test set, size and contrast, the MDE now and as planned.

    From a finished study's per-query files (its seed and question variance), for hybrid
    α = 0.5 − mono and − cross on ``metric``: the measured standard error's parts, the MDE
    (80 % power, two-sided 0.05) now, the MDE with ``seeds`` per cell and
    ``question_scale`` times the question clusters, and the seeds per cell that reach
    ``target`` (``—`` when the question noise alone exceeds it). ``eval_set`` keeps one
    test set (``question_scale`` is then that set's).

    Returns:
        Markdown lines.
    """
    from langmix.study.comparisons import PRIMARY_BASELINES, compute_comparisons
    from langmix.study.results import load_study

    study = load_study(study_dir)
    comparisons = compute_comparisons(study, n_resamples=n_resamples)
    lines = [
        f"Power of {study.name} ({metric}; 80 % power, two-sided 0.05; planned: "
        f"{seeds or 'measured'} seeds per cell, {question_scale:g}× the question clusters; "
        f"target MDE {target:g})",
        "",
        "| test set | size | contrast | seeds now | se seed / question | MDE now | MDE planned "
        "| seeds for target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for test in comparisons.tests:
        if test.kind != "effect" or test.metric != metric:
            continue
        if test.against not in PRIMARY_BASELINES:
            continue
        if test.arm.alpha != 0.5 or test.size is None:
            continue
        if eval_set is not None and test.eval_set != eval_set:
            continue
        e = test.estimate
        rows = study.cell_rows(test.eval_set, test.size, test.arm)
        now = len(rows)
        clusters = _resampled_units(comparisons, test.eval_set)
        planned = predicted_mde(
            e.se_seed,
            e.se_question,
            seeds_now=now,
            seeds=seeds or now,
            clusters=clusters,
            question_scale=question_scale,
        )
        needed = seeds_needed(
            target,
            e.se_seed,
            e.se_question,
            seeds_now=now,
            clusters=clusters,
            question_scale=question_scale,
        )
        lines.append(
            f"| {test.eval_set} | {test.size.label} | hybrid α=0.5 − {test.against} | {now} | "
            f"{e.se_seed:.4f} / {e.se_question:.4f} | "
            f"{minimum_detectable_effect(e.se, e.df):.4f} | {planned:.4f} | "
            f"{needed if needed is not None else '—'} |"
        )
    return lines


def _resampled_units(comparisons: Comparisons, eval_set: str) -> int:
    """The independent units behind the question part's df: article groups where they are
    resampled, else question clusters."""
    return comparisons.articles.get(eval_set) or comparisons.clusters[eval_set]


def section_power(
    study: Study, comparisons: Comparisons, *, target: float | None = None
) -> list[str]:
    """The report's power paragraph: per size, the primary contrasts' MDE and what a test
    of ``target`` (default: the study's equivalence margin) would need.

    For each primary effect (hybrid α = 0.5 − mono and − cross on the primary test set):
    the MDE it reached at its family's first Holm level, and the fewest seeds per cell whose
    predicted MDE is at most ``target`` with this study's questions and with 2× and 4× as
    many (:func:`seeds_needed`, at most :data:`MOST_SEEDS`; ``—`` beyond).

    Returns:
        Markdown lines (none when the study has no primary effects).
    """
    target = study.equivalence_margin if target is None else target
    primary = [t for t in comparisons.tests if t.family == "primary" and t.kind == "effect"]
    if not primary:
        return []
    scales = " | ".join(f"seeds for ≤ {target:g}, {q:g}× questions" for q in QUESTION_SCALES)
    lines = [
        "## Power of the primary claims",
        "",
        f"What the primary tests could see, and what a test of a {target:g} difference "
        f"needs (80% power, two-sided, at the first Holm level of the primary family, m = "
        f"{primary[0].family_size}): per size, the MDE reached and the fewest seeds per cell "
        "whose predicted MDE is at most the target, with this study's test questions and with "
        f"more (the seed part of the variance scales with 1/seeds, the question part with "
        f"1/questions; '—': more than {MOST_SEEDS} seeds).",
        "",
        f"| size | contrast | seeds | se seed / question | MDE reached | {scales} |",
        "|" + "---|" * (5 + len(QUESTION_SCALES)),
    ]
    reached = []
    for test in primary:
        e = test.estimate
        now = len(study.cell_rows(test.eval_set, test.size, test.arm))
        units = _resampled_units(comparisons, test.eval_set)
        needed = [
            seeds_needed(
                target,
                e.se_seed,
                e.se_question,
                seeds_now=now,
                clusters=units,
                question_scale=q,
                tests=test.family_size,
                most=MOST_SEEDS,
            )
            for q in QUESTION_SCALES
        ]
        reached.append(test.mde <= target)
        lines.append(
            f"| {test.size.label} | {test.arm.label} − {test.against} | {now} | "
            f"{e.se_seed:.4f} / {e.se_question:.4f} | {test.mde:.4f} | "
            + " | ".join("—" if n is None else str(n) for n in needed)
            + " |"
        )
    lines += [
        "",
        f"{sum(reached)} of {len(reached)} primary effects reached an MDE of at most {target:g}.",
        "",
    ]
    return lines
