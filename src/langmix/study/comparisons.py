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

from langmix.study.inference import (
    Estimate,
    HeadlineDraws,
    draw_headlines,
    estimate,
    holm,
    slope_weights,
)
from langmix.study.results import METRIC_NAMES, Arm, Size, Study, digits
from langmix.study.statistics import METRICS, Units, units
from langmix.study.verdicts import (
    POWER,
    LackOfFit,
    holm_levels,
    interval_at,
    line_fit,
    minimum_detectable_effect,
    tost,
)

__all__ = [
    "BASELINES",
    "BASELINE_NAMES",
    "CONFIDENCE",
    "KINDS",
    "PRIMARY_METRIC",
    "TESTED",
    "Comparisons",
    "Test",
    "compute_comparisons",
    "diff_text",
    "higher_is_better",
    "is_test_set",
    "primary_set",
    "verdict",
    "verdict_text",
]

CONFIDENCE = 0.95
#: What hybrid is compared with, each separately: the paper's two pure strategies, LAReQA's
#: pooled X-X ("random"; not in the paper) and the untrained model.
BASELINES = ("mono", "cross", "random", "untrained")
#: How the report names each baseline.
BASELINE_NAMES = {
    "mono": "mono",
    "cross": "cross",
    "random": "pooled X-X (LAReQA; not in the paper)",
    "untrained": "untrained",
    "interpolation": "interpolation",
}
#: The primary family by default: on the primary test set's multilingual mAP, hybrid at
#: this alpha against these baselines, per size and their slopes.
PRIMARY_METRIC = "map_multi"
PRIMARY_ALPHA = 0.5
PRIMARY_BASELINES = ("mono", "cross")
#: Metrics in rank units, for which a margin in mAP units means nothing: no equivalence.
_NO_MARGIN = frozenset({"rank_distance"})
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
        p_holm: Holm-adjusted p-value within its family.
        sizes: For a slope, the sizes it was fitted on.
        family: ``primary`` or ``secondary <kind>``: the Holm family.
        family_size: Number of tests in the family (Holm's m).
        holm_low: Lower end of the interval at the level Holm tested this claim.
        holm_high: Upper end; the interval excludes 0 exactly when Holm rejects.
        mde: Minimum detectable effect: the true difference found with 80% power at the
            family's first Holm level, from this estimate's standard error and df.
        margin: Equivalence margin (NaN: no equivalence test for this metric).
        p_equivalence: TOST p-value for ``|difference| < margin``.
        p_equivalence_holm: Holm-adjusted within the family's equivalence tests.
        lack_of_fit: For a slope, how far the sizes stray from the line.
        recipe_note: For a slope, why its sizes are not alike ("" when they are).
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
    family: str = ""
    family_size: int = 0
    holm_low: float = math.nan
    holm_high: float = math.nan
    mde: float = math.nan
    margin: float = math.nan
    p_equivalence: float = math.nan
    p_equivalence_holm: float = math.nan
    lack_of_fit: LackOfFit | None = None
    recipe_note: str = ""

    @property
    def significant(self) -> bool:
        """Whether the Holm-adjusted p-value is below ``1 - CONFIDENCE``."""
        return self.p_holm < 1.0 - CONFIDENCE

    @property
    def equivalent(self) -> bool:
        """Whether the Holm-adjusted equivalence test shows ``|difference| < margin``."""
        return self.p_equivalence_holm < 1.0 - CONFIDENCE


@dataclass
class Comparisons:
    """All tests and per-cell interval estimates of a study, computed once.

    Attributes:
        tests: Every tested claim, Holm-adjusted within its kind.
        cells: ``(eval set, metric, model, arm) -> Estimate`` of the cell's headline.
        clusters: Question clusters per evaluation set.
        articles: Article groups resampled above the questions, per evaluation set (absent
            where the per-query files do not record them).
        se_ratio: Per evaluation set, the (lowest, highest) ratio of the article-clustered
            to the question-only standard error of the primary contrasts.
        notes: Comparisons that could not be made, and why.
        n_resamples: Bootstrap replicates behind every estimate.
        primary: The primary family's test set ("" when there is none).
    """

    tests: list[Test] = field(default_factory=list)
    cells: dict[tuple[str, str, str, Arm], Estimate] = field(default_factory=dict)
    clusters: dict[str, int] = field(default_factory=dict)
    articles: dict[str, int] = field(default_factory=dict)
    se_ratio: dict[str, tuple[float, float]] = field(default_factory=dict)
    primary: str = ""
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
    study: Study,
    rows: Sequence[dict[str, Any]],
    metric: str,
    keys: np.ndarray | None,
    reference: Any = None,
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
        if reference is not None and not _same_queries(per_query, reference):
            return None
        out.append(u.values)
    return np.stack(out)


#: Arrays that name the queries of a per-query file: cells are compared query by query
#: only where these agree, not merely where the units line up by position.
_IDENTITY = ("languages", "query_ids", "parallel_ids", "query_lang")


def _same_queries(a: Any, b: Any) -> bool:
    """Whether two per-query files hold the same queries, in the same order and languages."""
    for name in _IDENTITY:
        if (name in a) != (name in b):
            return False
        if name in a and not np.array_equal(np.asarray(a[name]), np.asarray(b[name])):
            return False
    return True


def _metric_tests(
    study: Study, out: Comparisons, eval_set: str, metric: str, n_resamples: int, seed: int
) -> list[Test]:
    """Every cell estimate and unadjusted test of one (evaluation set, metric)."""
    layout = None
    reference = None  # the first per-query file: every other must hold the same queries
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
                layout, reference = units(first, metric), first
            values = _seed_values(study, rows, metric, layout.keys, reference)
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
    if draws.n_articles:
        out.articles[eval_set] = draws.n_articles
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
                tests.append(_slope_test(study, draws, eval_set, metric, arm, against, present))
    if metric == PRIMARY_METRIC and draws.n_articles:
        _article_ratio(out, layout, cells, tests, eval_set, n_resamples, seed)
    return tests


def _vector(draws: HeadlineDraws, weights: dict[_CellKey, float]) -> np.ndarray:
    c = np.zeros(len(draws.keys))
    for key, w in weights.items():
        c[draws.index(key)] = w
    return c


def _slope_test(
    study: Study,
    draws: HeadlineDraws,
    eval_set: str,
    metric: str,
    arm: Arm,
    against: str,
    present: list[tuple[Size, dict[_CellKey, float]]],
) -> Test:
    """The slope of one contrast over the sizes, with its lack of fit and recipe check."""
    x = [math.log2(max(size.non_embedding, 1)) for size, _ in present]
    a = slope_weights(x)
    combined: dict[_CellKey, float] = {}
    for coefficient, (_, weights) in zip(a, present, strict=True):
        for key, w in weights.items():
            combined[key] = combined.get(key, 0.0) + coefficient * w
    sampling = estimate(draws, combined, confidence=CONFIDENCE)
    per_size = np.stack([_vector(draws, w) for _, w in present], axis=1)  # [K, k]
    values = draws.point @ per_size
    covariance = np.cov(draws.replicates @ per_size, rowvar=False)
    e, lack = line_fit(sampling, x, values, covariance)
    sizes = tuple(size for size, _ in present)
    return Test(
        "slope",
        eval_set,
        metric,
        arm,
        against,
        None,
        e,
        sizes=sizes,
        lack_of_fit=lack,
        recipe_note=_recipe_note(study, sizes),
    )


def _recipe_note(study: Study, sizes: tuple[Size, ...]) -> str:
    """Which training settings differ between the sizes of a slope ("" when none do)."""
    keys = sorted({k for s in sizes for k in study.recipes.get(s.model, {})})
    differing = []
    for key in keys:
        values = {repr(study.recipes.get(s.model, {}).get(key)) for s in sizes}
        if len(values) > 1:
            per = ", ".join(
                f"{s.label} {study.recipes.get(s.model, {}).get(key, 'default')}" for s in sizes
            )
            differing.append(f"{key} ({per})")
    if not differing:
        return ""
    return "sizes trained with different recipes: " + "; ".join(differing)


def _article_ratio(
    out: Comparisons,
    layout: Units,
    cells: dict[_CellKey, np.ndarray],
    tests: list[Test],
    eval_set: str,
    n_resamples: int,
    seed: int,
) -> None:
    """Record how much resampling articles widens the primary contrasts' question-level
    standard errors (the seed part is the same either way)."""
    plain = draw_headlines(layout, cells, n_resamples=n_resamples, seed=seed, articles=False)
    ratios = []
    for t in tests:
        primary = t.arm.alpha == PRIMARY_ALPHA and t.against in PRIMARY_BASELINES
        if t.kind != "effect" or not primary or t.size is None:
            continue
        weights = {(t.size.model, t.arm): 1.0, (t.size.model, Arm(t.against)): -1.0}
        question_only = estimate(plain, weights, confidence=CONFIDENCE)
        if question_only.se_question > 0:
            ratios.append(t.estimate.se_question / question_only.se_question)
    if ratios:
        out.se_ratio[eval_set] = (min(ratios), max(ratios))


def primary_set(study: Study) -> str:
    """The primary family's test set: ``[study] primary``, else the first test set."""
    if study.primary:
        return study.primary
    return next((ev for ev in study.eval_sets if is_test_set(ev)), "")


def _family(test: Test, primary: str) -> str:
    """``primary`` for the declared claims, else ``secondary <kind>``."""
    if (
        test.eval_set == primary
        and test.metric == PRIMARY_METRIC
        and test.kind in ("effect", "slope")
        and test.arm.alpha == PRIMARY_ALPHA
        and test.against in PRIMARY_BASELINES
    ):
        return "primary"
    return f"secondary {test.kind}"


def _adjust(tests: list[Test], margin: float) -> list[Test]:
    """Holm p-values, Holm-level intervals, equivalence and MDE within one family."""
    alpha = 1.0 - CONFIDENCE
    m = len(tests)
    p = [t.estimate.p_value for t in tests]
    adjusted, levels = holm(p), holm_levels(p, alpha)
    with_margin = [i for i, t in enumerate(tests) if t.metric not in _NO_MARGIN]
    p_eq = [
        tost(t.estimate.value, t.estimate.se, t.estimate.df, margin=margin)
        if t.estimate.se > 0
        else math.nan
        for t in (tests[i] for i in with_margin)
    ]
    eq_holm = dict(zip(with_margin, holm(p_eq), strict=True))
    eq_raw = dict(zip(with_margin, p_eq, strict=True))
    out = []
    for i, t in enumerate(tests):
        e = t.estimate
        low, high = interval_at(e, float(levels[i]))
        mde = (
            minimum_detectable_effect(e.se, e.df, alpha=alpha, power=POWER, tests=m)
            if e.se > 0
            else 0.0
        )
        out.append(
            replace(
                t,
                p_holm=float(adjusted[i]),
                family_size=m,
                holm_low=low,
                holm_high=high,
                mde=mde,
                margin=margin if i in eq_raw else math.nan,
                p_equivalence=float(eq_raw.get(i, math.nan)),
                p_equivalence_holm=float(eq_holm.get(i, math.nan)),
            )
        )
    return out


def compute_comparisons(study: Study, *, n_resamples: int = 4000, seed: int = 0) -> Comparisons:
    """Estimate every cell and test every effect, synergy margin and slope of a study.

    The tests form one primary family (the primary test set's multilingual mAP, hybrid
    alpha 0.5 - {mono, cross} per size and their slopes) and a secondary family per kind
    for everything else; each family is Holm-adjusted on its own, and each test gets its
    Holm-level interval, MDE and, for metrics in proportion units, an equivalence test
    against the study's margin.

    Args:
        study: The loaded study.
        n_resamples: Two-level bootstrap replicates (shared by all claims of a metric).
        seed: Seed of the resampling (fixed, so rebuilding the report gives the same numbers).

    Returns:
        The :class:`Comparisons`.

    Example:
        >>> comparisons = compute_comparisons(load_study("runs/scaling"))  # doctest: +SKIP
    """
    out = Comparisons(primary=primary_set(study))
    tests: list[Test] = []
    for eval_set in study.eval_sets:
        if not is_test_set(eval_set):
            continue  # nothing is estimated or tested on the checkpoint-choosing data
        for metric in TESTED[study.eval_kind[eval_set]]:
            tests += _metric_tests(study, out, eval_set, metric, n_resamples, seed)
    tests = [replace(t, family=_family(t, out.primary)) for t in tests]
    names = ["primary", *(f"secondary {kind}" for kind in KINDS)]
    for name in names:
        index = [i for i, t in enumerate(tests) if t.family == name]
        adjusted = _adjust([tests[i] for i in index], study.equivalence_margin)
        for i, t in zip(index, adjusted, strict=True):
            tests[i] = t
    out.tests = tests
    return out


def verdict(test: Test) -> str:
    """The claim a test supports, in one word.

    ``better``/``worse`` for hybrid when the Holm-adjusted test rejects; ``equivalent``
    when it does not and the Holm-adjusted equivalence test shows the difference within the
    margin; ``no line`` for a slope whose sizes reject a straight line (whatever its
    p-value: a slope of a curve is not a trend); else ``n.s.`` (not significant: not
    evidence of no difference). For a synergy margin *better* means synergy and *worse*
    interference; for a slope, *better* means the difference moves in hybrid's favour as
    the model grows.

    Example:
        >>> from langmix.study.inference import Estimate
        >>> e = Estimate(-0.02, 0.005, -0.03, -0.01, 1e-4, 8.0, 0.004, 0.003, 0.95, 4000)
        >>> verdict(Test("effect", "x", "map_multi", Arm("hybrid", 0.5), "mono", None, e, 4e-4))
        'worse'
    """
    if test.lack_of_fit is not None and test.lack_of_fit.rejected:
        return "no line"
    if test.significant:
        return "better" if (test.estimate.value > 0) == higher_is_better(test.metric) else "worse"
    if test.equivalent:
        return "equivalent"
    return "n.s."


def verdict_text(test: Test) -> str:
    """The verdict in words, with what qualifies it.

    Example:
        >>> from langmix.study.inference import Estimate
        >>> e = Estimate(0.002, 0.004, -0.006, 0.01, 0.6, 20.0, 0.003, 0.002, 0.95, 4000)
        >>> t = Test("effect", "x", "map_multi", Arm("hybrid", 0.5), "mono", None, e, 1.0,
        ...          family_size=10, mde=0.0137)
        >>> verdict_text(t)
        'not significant after Holm (m = 10; MDE 0.014)'
    """
    word = verdict(test)
    d = digits(test.metric)
    if word == "n.s.":
        return f"not significant after Holm (m = {test.family_size}; MDE {test.mde:.{d}f})"
    if word == "equivalent":
        return f"equivalent within ±{test.margin:g} (TOST, Holm p = {test.p_equivalence_holm:.2g})"
    if word == "no line":
        lack = test.lack_of_fit
        assert lack is not None
        return f"no line: lack of fit χ²({lack.df}) = {lack.chi2:.1f}, p = {lack.p_value:.2g}"
    return word


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
