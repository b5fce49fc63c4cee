"""Seed-aware inference for a study: intervals of linear contrasts of cell headlines.

A study evaluates many *cells* (one cell = one model size x training arm) on the same
queries, each with one or more training seeds. Its claims are linear contrasts of the
cells' headlines (macro means, see :mod:`langmix.study.statistics`): a difference
hybrid - baseline, a synergy margin hybrid(a) - [a * mono + (1 - a) * cross], the
least-squares slope of a difference across sizes (:func:`slope_weights`). A headline
is uncertain for two independent reasons, and both must be in its interval:

* **Which questions were asked** (question level). As in
  :func:`~langmix.study.paired.compare`, parallel questions are resampled as
  clusters, and one cluster resample is shared by all cells of a replicate, because
  every cell answered the same questions: a contrast is paired by question.
* **Which training runs happened** (seed level). Two runs of one configuration differ
  by more than their evaluation noise. ``compare`` averages the seeds first and so
  ignores this; here each cell's seeds are resampled too, independently per cell
  (the training runs of different cells are independent).

:func:`draw_headlines` makes the two-level bootstrap replicates of every cell's
headline, :func:`estimate` turns them into an interval and p-value for one contrast,
and :func:`holm` adjusts a family of p-values.

**Why the seed residuals are inflated.** The plain bootstrap of ``S`` values has
variance ``(S - 1) / S`` times the unbiased ``var / S``: two thirds of it for three
seeds. Each seed's values are therefore first moved away from the seed mean by
``sqrt(S / (S - 1))``, which makes the seed level's bootstrap variance unbiased.

**Why a t interval and not the percentile interval.** With three training seeds the
seed level of a cell carries about two degrees of freedom. When seed noise dominates,
the bootstrap standard error is itself a very noisy estimate, and a percentile
interval (which behaves like ``estimate +- 1.96 se``) under-covers: in the tests'
simulation of a seed-dominated difference with three seeds per arm it covers about 88%
instead of 95% (the t interval: 96%). So the interval is ``estimate +- t_df * se``, ``se``
the standard deviation of the bootstrap replicates and ``df`` the Welch-Satterthwaite
degrees of freedom of the two variance components: each cell's seed variance
(``S_k - 1`` df, computed analytically from the per-seed headlines) and the question
variance (the rest of the bootstrap variance, ``n_top - 1`` df: the article groups where
the per-query files record them and they are resampled above the questions, else the
question clusters). When seeds do not
matter, ``df`` is large and this is the usual normal interval; when they dominate it
widens the interval as the small number of seeds requires.

Like :mod:`langmix.study.statistics`, this module is numpy (and scipy) only: no torch.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from langmix.study.statistics import Units, _batches, _cluster_table, _group_means

__all__ = [
    "Estimate",
    "HeadlineDraws",
    "cluster_articles",
    "draw_headlines",
    "estimate",
    "holm",
    "slope_weights",
]


@dataclass(frozen=True, eq=False)
class HeadlineDraws:
    """Point headlines and two-level bootstrap replicates of the cells of a study.

    Attributes:
        keys: The cell keys, in the order given to :func:`draw_headlines`.
        point: ``float64[K]`` headline of each cell: the macro mean of its seed-averaged
            unit values.
        seed_headlines: Per cell, ``float64[S_k]`` the headline of each seed alone.
        replicates: ``float64[R, K]`` bootstrap replicates of each cell's headline; row
            ``r`` of every cell used the same question resample.
        n_clusters: Number of question clusters resampled.
        n_articles: Number of article groups resampled above the question clusters (two
            stages), or 0 when the questions were the top-level clusters.

    Example:
        >>> d = HeadlineDraws(keys=("a", "b"), point=np.array([0.5, 0.25]),
        ...                   seed_headlines=(np.array([0.5]), np.array([0.25])),
        ...                   replicates=np.zeros((2, 2)), n_clusters=10)
        >>> d.index("b"), d.n_resamples
        (1, 2)
    """

    keys: tuple
    point: np.ndarray
    seed_headlines: tuple[np.ndarray, ...]
    replicates: np.ndarray
    n_clusters: int
    n_articles: int = 0

    @property
    def n_top(self) -> int:
        """Number of top-level clusters: article groups when resampled, else questions.

        The question level's degrees of freedom are ``n_top - 1``: with 44 articles the
        question noise is estimated from 44 independent draws, not from 1,088 questions.

        Example:
            >>> HeadlineDraws(("a",), np.zeros(1), (np.zeros(1),), np.zeros((2, 1)), 90, 12).n_top
            12
        """
        return self.n_articles or self.n_clusters

    @property
    def n_resamples(self) -> int:
        """Number of bootstrap replicates ``R``.

        Example:
            >>> HeadlineDraws(("a",), np.zeros(1), (np.zeros(1),), np.zeros((3, 1)), 1).n_resamples
            3
        """
        return int(self.replicates.shape[0])

    def index(self, key: Hashable) -> int:
        """Column of cell ``key`` in :attr:`point` and :attr:`replicates`.

        Raises:
            ValueError: If ``key`` is not a cell.

        Example:
            >>> HeadlineDraws(("a",), np.zeros(1), (np.zeros(1),), np.zeros((2, 1)), 1).index("a")
            0
        """
        try:
            return self.keys.index(key)
        except ValueError:
            raise ValueError(
                f"unknown cell {key!r}; the cells are: {', '.join(map(repr, self.keys))}"
            ) from None


def _check_cells(layout: Units, cells: Mapping[Hashable, np.ndarray]) -> list[np.ndarray]:
    """The cells as ``float64[S_k, n_units]`` arrays, or a ValueError naming the bad one."""
    if len(layout) == 0:
        raise ValueError("the layout has no units: there is nothing to average")
    if not cells:
        raise ValueError("no cells given: cells must map each cell key to its per-seed values")
    out = []
    for key, raw in cells.items():
        values = np.asarray(raw, dtype=np.float64)
        if values.ndim == 1:  # a single seed, passed as one row of unit values
            values = values[None, :]
        if values.ndim != 2 or values.shape[1] != len(layout):
            raise ValueError(
                f"cell {key!r} has values of shape {values.shape}; expected "
                f"[n_seeds, {len(layout)}] (one value per unit of the layout, in its order)"
            )
        if values.shape[0] == 0:
            raise ValueError(f"cell {key!r} has no seeds; every cell needs at least one")
        bad = ~np.isfinite(values)
        if bad.any():
            seed, unit = np.argwhere(bad)[0]
            raise ValueError(
                f"cell {key!r} has {int(bad.sum())} NaN/infinite values (first: seed {seed}, "
                f"unit {unit}); the units must be the cells every run defines, with the "
                "undefined ones dropped by the layout"
            )
        out.append(values)
    return out


def _inflate(values: np.ndarray) -> np.ndarray:
    """Seed values moved away from their mean so the seed bootstrap variance is unbiased."""
    n_seeds = values.shape[0]
    if n_seeds < 2:
        return values
    mean = values.mean(axis=0)
    return mean + math.sqrt(n_seeds / (n_seeds - 1)) * (values - mean)


def _seed_tables(layout: Units, values: np.ndarray) -> np.ndarray:
    """Per (cluster, seed, group) sum of a cell's values, ``[n_clusters, S * n_groups]``."""
    tables = [_cluster_table(layout, v)[0] for v in values]
    # Seeds side by side, so one product with the cluster weights covers all of them.
    return np.concatenate(tables, axis=1)


def _cell_replicates(
    table: np.ndarray, counts: np.ndarray, weights: np.ndarray, multiplicity: np.ndarray
) -> np.ndarray:
    """Macro-mean replicates of one cell.

    Args:
        table: ``[C, S * G]`` per-seed cluster sums (:func:`_seed_tables`).
        counts: ``[C, G]`` units per (cluster, group), the same for every seed.
        weights: ``[R, C]`` how often each cluster is in each replicate.
        multiplicity: ``[R, S]`` how often each seed is in each replicate (rows sum to S).
    """
    n_seeds = multiplicity.shape[1]
    n_groups = counts.shape[1]
    group_sums = (weights @ table).reshape(weights.shape[0], n_seeds, n_groups)
    # The replicate averages the drawn seeds: seed s counts multiplicity[r, s] / S times.
    group_sums = np.einsum("rs,rsg->rg", multiplicity / n_seeds, group_sums)
    group_counts = weights @ counts
    # A group none of whose clusters was drawn is left out, as _macro_from_weights does.
    present = group_counts > 0
    means = np.divide(group_sums, group_counts, out=np.zeros_like(group_sums), where=present)
    return means.sum(axis=1) / present.sum(axis=1)


def _cluster_weights(rng: np.random.Generator, n_rows: int, n_clusters: int) -> np.ndarray:
    """``[n_rows, n_clusters]`` counts of clusters drawn with replacement (as ``_bootstrap``)."""
    draws = rng.integers(0, n_clusters, size=(n_rows, n_clusters))
    draws += np.arange(n_rows)[:, None] * n_clusters
    counts = np.bincount(draws.ravel(), minlength=n_rows * n_clusters)
    return counts.reshape(n_rows, n_clusters).astype(np.float64)


def cluster_articles(layout: Units) -> np.ndarray | None:
    """``int64[n_clusters]`` the article group of each cluster of a layout, or ``None``.

    Example:
        >>> from langmix.study.statistics import units
        >>> pq = {"parallel_ids": np.array(["a", "b", "c"]), "query_lang": np.zeros(3, int),
        ...       "article_groups": np.array(["g1", "g1", "g2"]), "multi_ap": np.ones(3)}
        >>> cluster_articles(units(pq, "map_multi")).tolist()
        [0, 0, 1]
    """
    if layout.article is None:
        return None
    out = np.zeros(layout.n_clusters, dtype=np.int64)
    out[layout.cluster] = layout.article
    return out


def _article_weights(
    rng: np.random.Generator, n_rows: int, cluster_article: np.ndarray
) -> np.ndarray:
    """``[n_rows, n_clusters]`` counts of a draw of whole article groups.

    Each replicate draws as many article groups as there are, with replacement, and takes
    every question cluster of a drawn group as often as the group was drawn. The questions
    inside a group are not drawn again: the spread between groups' means already holds
    their question noise, and a second stage with replacement counts it twice (Davison &
    Hinkley 1997, section 3.8), which makes the interval too wide. Written here
    because the replicates are computed from this weight matrix, which no library makes.
    """
    n_articles = int(cluster_article.max()) + 1
    drawn = rng.integers(0, n_articles, size=(n_rows, n_articles))
    drawn += np.arange(n_rows)[:, None] * n_articles
    counts = np.bincount(drawn.ravel(), minlength=n_rows * n_articles)
    return counts.reshape(n_rows, n_articles)[:, cluster_article].astype(np.float64)


def draw_headlines(
    layout: Units,
    cells: Mapping[Hashable, np.ndarray],
    *,
    n_resamples: int = 4000,
    seed: int = 0,
    articles: bool = True,
) -> HeadlineDraws:
    """Point headlines and two-level (question x seed) bootstrap replicates of many cells.

    A replicate draws the question clusters once, with replacement, for all cells (the
    cells answered the same questions), as whole article groups where the layout knows
    each cluster's group (:func:`_article_weights`: questions of one article share its
    topic and difficulty, so they are not independent draws), and, independently per cell, the cell's seeds
    with replacement (after inflating their residuals, see the module docstring). The
    cell's replicate is the macro mean over groups of the drawn seeds' averaged values
    over the drawn clusters; groups with no drawn units are left out of that replicate.

    Memory: the per-seed (cluster, group) sums of all cells are kept (about the size of
    ``cells`` itself); the replicates are made in batches of a bounded working set.

    Args:
        layout: Units giving the group and cluster of every unit (e.g. from
            :func:`~langmix.study.statistics.units` of any run); its values are not used.
        cells: Cell key -> ``float[S_k, n_units]`` per-seed unit values, aligned with
            ``layout`` (same units, same order); a 1-D array is one seed.
        n_resamples: Bootstrap replicates ``R`` (at least 2).
        seed: Seed of the draws; the same inputs and seed give the same replicates.
        articles: Resample whole article groups where the layout has them (``False``:
            question clusters, e.g. to show what articles add).

    Returns:
        A :class:`HeadlineDraws`.

    Raises:
        ValueError: For an empty layout or no cells, a cell with no seeds, values not
            matching the layout's units, NaN or infinite values (naming the cell), or
            ``n_resamples < 2``.

    Example:
        >>> from langmix.study.statistics import units
        >>> ids = np.array(["q1", "q2", "q3", "q4"])
        >>> layout = units({"query_ids": ids, "ndcg@10": np.zeros(4)}, "ndcg@10")
        >>> cells = {"base": np.array([[0.5, 0.6, 0.4, 0.7], [0.6, 0.7, 0.5, 0.8]]),
        ...          "hybrid": np.array([[0.9, 0.8, 0.7, 1.0], [0.8, 0.9, 0.8, 0.9]])}
        >>> d = draw_headlines(layout, cells, n_resamples=200)
        >>> d.point.round(3).tolist(), d.replicates.shape
        ([0.6, 0.85], (200, 2))
        >>> [h.round(3).tolist() for h in d.seed_headlines]
        [[0.55, 0.65], [0.85, 0.85]]
    """
    if int(n_resamples) < 2:
        raise ValueError(
            f"n_resamples must be >= 2 (a standard error needs two), got {n_resamples}"
        )
    n_resamples = int(n_resamples)
    arrays = _check_cells(layout, cells)
    keys = tuple(cells.keys())

    point = np.array([_group_means(v.mean(axis=0), layout).mean() for v in arrays])
    seed_headlines = tuple(np.array([_group_means(s, layout).mean() for s in v]) for v in arrays)

    counts = _cluster_table(layout, np.zeros(len(layout)))[1]
    tables = [_seed_tables(layout, _inflate(v)) for v in arrays]
    n_seeds = [v.shape[0] for v in arrays]

    # Independent streams: one for the shared question draws, one per cell for its seeds.
    cluster_seq, *cell_seqs = np.random.SeedSequence(seed).spawn(1 + len(arrays))
    cluster_rng = np.random.default_rng(cluster_seq)
    cell_rngs = [np.random.default_rng(s) for s in cell_seqs]

    n_clusters, n_groups = counts.shape
    cluster_article = cluster_articles(layout) if articles else None
    if cluster_article is not None and not 1 < layout.n_articles < n_clusters:
        cluster_article = None  # one group, or one question per group: nothing to nest
    max_seeds = max(n_seeds)
    # 8-byte values alive per replicate row: the cluster draws, flat ids, counts and weights
    # ([C] each), one cell's seed group sums and their weighted copy ([S, G]), group sums,
    # counts and means ([G] each). _batches keeps a batch within statistics._BATCH_BYTES.
    row_values = 4 * n_clusters + 2 * max_seeds * n_groups + 4 * n_groups + max_seeds
    replicates = np.empty((n_resamples, len(arrays)))
    for i0, i1 in _batches(n_resamples, row_values, 8):
        rows = i1 - i0
        if cluster_article is None:
            weights = _cluster_weights(cluster_rng, rows, n_clusters)
        else:
            weights = _article_weights(cluster_rng, rows, cluster_article)
        for k, (table, s, rng) in enumerate(zip(tables, n_seeds, cell_rngs, strict=True)):
            if s == 1:
                mult = np.ones((rows, 1))
            else:
                mult = rng.multinomial(s, np.full(s, 1.0 / s), size=rows).astype(np.float64)
            replicates[i0:i1, k] = _cell_replicates(table, counts, weights, mult)
    return HeadlineDraws(
        keys=keys,
        point=point,
        seed_headlines=seed_headlines,
        replicates=replicates,
        n_clusters=int(n_clusters),
        n_articles=0 if cluster_article is None else int(layout.n_articles),
    )


@dataclass(frozen=True)
class Estimate:
    """A linear contrast of cell headlines with its seed-aware interval and p-value.

    Attributes:
        value: The contrast of the point headlines.
        se: Its standard error: standard deviation of the bootstrap replicates.
        ci_low: Lower end of the t interval ``value - t * se``.
        ci_high: Upper end ``value + t * se``.
        p_value: Two-sided t-test p-value for "the contrast is zero".
        df: Welch-Satterthwaite degrees of freedom (``inf`` when ``se`` has no
            estimated component).
        se_seed: Seed part of ``se``, from the per-seed headlines (0 with one seed per cell).
        se_question: Question part: ``sqrt(max(se**2 - se_seed**2, 0))``.
        confidence: Coverage the interval was built for.
        n_resamples: Bootstrap replicates behind ``se``.

    Example:
        >>> e = Estimate(0.1, 0.02, 0.05, 0.15, 0.001, 10.0, 0.015, 0.013, 0.95, 4000)
        >>> e.excludes_zero()
        True
    """

    value: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float
    se_seed: float
    se_question: float
    confidence: float
    n_resamples: int

    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of zero.

        Example:
            >>> Estimate(0.0, 1.0, -2.0, 2.0, 1.0, 5.0, 1.0, 0.0, 0.95, 100).excludes_zero()
            False
        """
        return self.ci_low > 0.0 or self.ci_high < 0.0


def _contrast(draws: HeadlineDraws, weights: Mapping[Hashable, float]) -> np.ndarray:
    if not weights:
        raise ValueError("the contrast has no weights: give at least one cell key -> weight")
    unknown = [k for k in weights if k not in draws.keys]
    if unknown:
        raise ValueError(
            f"unknown cell(s) in the weights: {', '.join(map(repr, unknown))}; "
            f"the cells are: {', '.join(map(repr, draws.keys))}"
        )
    c = np.zeros(len(draws.keys))
    for key, w in weights.items():
        w = float(w)
        if not math.isfinite(w):
            raise ValueError(f"the weight of cell {key!r} is {w}; weights must be finite")
        c[draws.index(key)] = w
    return c


def estimate(
    draws: HeadlineDraws, weights: Mapping[Hashable, float], *, confidence: float = 0.95
) -> Estimate:
    """Estimate, interval and p-value of the contrast ``sum_k weights[k] * headline_k``.

    ``se`` is the standard deviation of the contrast over the bootstrap replicates. Its
    seed part is computed analytically, ``V_s = sum_k c_k**2 * var_k / S_k`` with
    ``var_k`` the sample variance of cell ``k``'s per-seed headlines (cells with one seed
    contribute none); the question part is the rest, ``V_q = max(se**2 - V_s, 0)``. The
    degrees of freedom are Welch-Satterthwaite's,
    ``df = se**4 / (sum_k (c_k**2 var_k / S_k)**2 / (S_k - 1) + V_q**2 / (n_top - 1))``,
    and the interval is ``value +- t_{df} * se`` (see the module docstring for why not the
    percentile interval).

    Args:
        draws: From :func:`draw_headlines`.
        weights: Cell key -> coefficient ``c_k``; cells not named get 0.
        confidence: Interval coverage, in (0, 1).

    Returns:
        An :class:`Estimate`.

    Raises:
        ValueError: For no weights, unknown cell keys (naming them), non-finite weights or a
            confidence outside (0, 1).

    Example:
        >>> from langmix.study.statistics import units
        >>> ids = np.array(["q1", "q2", "q3", "q4"])
        >>> layout = units({"query_ids": ids, "ndcg@10": np.zeros(4)}, "ndcg@10")
        >>> cells = {"base": np.array([[0.5, 0.6, 0.4, 0.7], [0.6, 0.7, 0.5, 0.8]]),
        ...          "hybrid": np.array([[0.9, 0.8, 0.7, 1.0], [0.8, 0.9, 0.8, 0.9]])}
        >>> d = draw_headlines(layout, cells, n_resamples=200)
        >>> e = estimate(d, {"hybrid": 1.0, "base": -1.0})
        >>> round(e.value, 3), round(e.se_seed, 3), e.ci_low < e.value < e.ci_high
        (0.25, 0.05, True)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    c = _contrast(draws, weights)
    value = float(c @ draws.point)
    theta = draws.replicates @ c
    se = float(theta.std(ddof=1))

    # Seed level, per cell: the variance of its seed mean, with S_k - 1 df.
    seed_parts, seed_df = [], []
    for ck, heads in zip(c, draws.seed_headlines, strict=True):
        n = heads.shape[0]
        if ck != 0.0 and n >= 2:
            seed_parts.append(ck**2 * float(heads.var(ddof=1)) / n)
            seed_df.append(n - 1)
    v_seed = float(sum(seed_parts))
    v_question = max(se**2 - v_seed, 0.0)

    denominator = sum(v**2 / d for v, d in zip(seed_parts, seed_df, strict=True))
    # With one cluster the question level cannot vary: its "variance" is rounding noise.
    if draws.n_top >= 2:
        denominator += v_question**2 / (draws.n_top - 1)
    df = se**4 / denominator if denominator > 0.0 else math.inf

    if se > 0.0:
        t = float(stats.t.ppf(0.5 + confidence / 2, df))
        half = t * se
        p_value = float(2.0 * stats.t.sf(abs(value) / se, df))
    else:  # every replicate gives the same contrast: no uncertainty left to test with
        half = 0.0
        p_value = 1.0 if value == 0.0 else 0.0
    return Estimate(
        value=value,
        se=se,
        ci_low=value - half,
        ci_high=value + half,
        p_value=min(p_value, 1.0),
        df=float(df),
        se_seed=math.sqrt(v_seed),
        se_question=math.sqrt(v_question),
        confidence=float(confidence),
        n_resamples=draws.n_resamples,
    )


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the order given.

    The ``i``-th smallest of ``m`` p-values is multiplied by ``m - i + 1``; the adjusted
    values are then made non-decreasing in that order and capped at 1. Rejecting the
    hypotheses whose adjusted p-value is at most ``alpha`` controls the family-wise error
    at ``alpha``. NaN (a contrast that could not be tested) stays NaN and does not count
    in ``m``.

    Args:
        p_values: One p-value per hypothesis, each in [0, 1] or NaN.

    Returns:
        ``float64[m]`` adjusted p-values.

    Raises:
        ValueError: For values outside [0, 1] or input that is not one-dimensional.

    Example:
        >>> holm([0.01, 0.04, 0.03, 0.005]).round(3).tolist()
        [0.03, 0.06, 0.06, 0.02]
        >>> holm([0.02, float("nan"), 0.5]).tolist()
        [0.04, nan, 0.5]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be one-dimensional, got shape {p.shape}")
    valid = ~np.isnan(p)
    if np.any((p[valid] < 0.0) | (p[valid] > 1.0)):
        raise ValueError(f"p-values must lie in [0, 1] (or be NaN), got {p[valid].tolist()}")
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(valid)
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    # Step-down: a hypothesis is rejected only after every smaller p-value was.
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


def slope_weights(x: Sequence[float]) -> np.ndarray:
    """Coefficients of the least-squares slope of ``y`` on ``x``, as a linear contrast.

    ``slope = sum_i a_i * y_i`` with ``a_i = (x_i - mean(x)) / sum_j (x_j - mean(x))**2``;
    with ``x`` the log2 non-embedding parameter count of each size and ``y_i`` a
    difference at size ``i``, the weights turn "the gain grows with size" into one
    contrast for :func:`estimate`.

    Args:
        x: One predictor value per point.

    Returns:
        ``float64[n]`` the coefficients ``a_i``.

    Raises:
        ValueError: For non-finite ``x`` or fewer than two distinct values.

    Example:
        >>> a = slope_weights([1.0, 2.0, 3.0])
        >>> a.tolist(), round(float(a @ np.array([0.1, 0.3, 0.5])), 12)
        ([-0.5, 0.0, 0.5], 0.2)
    """
    xs = np.asarray(x, dtype=np.float64)
    if xs.ndim != 1:
        raise ValueError(f"x must be one-dimensional, got shape {xs.shape}")
    if not np.all(np.isfinite(xs)):
        raise ValueError(f"x must be finite, got {xs.tolist()}")
    if np.unique(xs).size < 2:
        raise ValueError(f"a slope needs at least two distinct x values, got {xs.tolist()}")
    centred = xs - xs.mean()
    return centred / float(centred @ centred)
