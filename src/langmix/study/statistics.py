"""Paired significance tests between two evaluated models, on per-query scores.

A study compares models (or batch strategies) that were evaluated on the *same* queries, so
every comparison here is paired: per query (and, for cross-lingual metrics, per target
language) the score of run ``a`` minus the score of run ``b``. Two things make the usual
per-query bootstrap wrong for LAReQA and are handled on purpose:

* **Translations are not independent.** XQuAD-R asks each of its 1190 questions in 11
  languages; a model that fails on a question tends to fail on its translations too. The
  resampling unit is therefore the *cluster* of queries sharing a ``parallel_id``, which
  keeps translations together (MIRACL queries are their own clusters).
* **Headlines are macro averages.** ``map_cross`` is the mean over 110 language pairs of a
  per-pair mean, not a mean over queries. Each bootstrap replicate recomputes every group's
  (pair's / language's) mean from the resampled clusters and then averages the groups, so
  the interval is about the very number the paper reports.

A metric becomes a set of :class:`Units` (one value per defined (query, column) cell, a
group and a cluster each), whose macro mean reproduces the headline of
:func:`langmix.evaluation.metrics.aggregate_lareqa` exactly (see :func:`headline`).

Both tests are vectorised over replicates: the differences are summed per (cluster, group)
into a dense ``[n_clusters, n_groups]`` table once, and a replicate is a weight vector over
clusters (bootstrap: how often each cluster was drawn; randomisation: a sign per cluster),
so all group sums of a batch of replicates are one matrix product. 2000 replicates of
``map_cross`` on XQuAD-R (131k units, 1190 clusters, 110 pairs) take well under a second.

This module is numpy-only on purpose: it reads the ``.npz`` files the evaluation writes and
must not pull in torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "METRICS",
    "Comparison",
    "Units",
    "compare",
    "headline",
    "seed_summary",
    "units",
]

# metric name -> (description, higher_is_better)
METRICS: dict[str, tuple[str, bool]] = {
    "map_mono": ("LAReQA monolingual mAP (query-language pool), macro over languages", True),
    "map_cross": ("LAReQA cross-lingual mAP (one target-language pool), macro over pairs", True),
    "map_multi": ("LAReQA multilingual mAP (whole pool), macro over query languages", True),
    "r1_mono": ("LAReQA monolingual Recall@1, macro over languages", True),
    "r1_cross": ("LAReQA cross-lingual Recall@1, macro over language pairs", True),
    "r10_multi": ("LAReQA multilingual Recall@10, macro over query languages", True),
    "rank_distance": (
        "LAReQA rank distance (max - min pooled rank of the relevant set), macro over query "
        "languages; lower means less language bias",
        False,
    ),
    "ndcg@10": (
        "MIRACL nDCG@10, macro over languages (as MIRACL and `langmix eval` report it)",
        True,
    ),
    "recall@100": (
        "MIRACL Recall@100, macro over languages (as MIRACL and `langmix eval` report it)",
        True,
    ),
    "map@100": (
        "MIRACL MAP@100, macro over languages (as MIRACL and `langmix eval` report it)",
        True,
    ),
}

# metric -> the per-query array holding it
_ARRAYS: dict[str, str] = {
    "map_mono": "mono_ap",
    "r1_mono": "mono_recall1",
    "map_cross": "cross_ap",
    "r1_cross": "cross_recall1",
    "map_multi": "multi_ap",
    "r10_multi": "multi_recall10",
    "rank_distance": "rank_distance",
    "ndcg@10": "ndcg@10",
    "recall@100": "recall@100",
    "map@100": "map@100",
}
_CROSS = frozenset({"map_cross", "r1_cross"})
_MIRACL = frozenset({"ndcg@10", "recall@100", "map@100"})

# Working memory per batch of replicates, in bytes: keeps the [R, n_clusters] draws and
# weights of one batch well under the 200 MB budget whatever n_resamples is.
_BATCH_BYTES = 48 * 2**20


@dataclass(frozen=True, eq=False)
class Units:
    """The values a headline metric averages, with their macro-averaging groups and clusters.

    A unit is one defined (query, column) cell of a per-query array: a query for
    mono/multilingual and MIRACL metrics, a (query, target language) cell for cross-lingual
    ones. NaN cells are not units. The headline is :meth:`macro_mean`: the mean over groups
    of the mean of each group's units.

    Attributes:
        values: ``float64[n]`` unit values.
        group: ``int64[n]`` averaging group in ``[0, n_groups)``: the query language
            (mono, multi, rank distance), the ordered pair (cross) or the language of a
            MIRACL query id ``language/qid`` (``0`` for ids without one). Groups
            are numbered in ascending (query language, target language) order and only groups
            with at least one unit exist.
        cluster: ``int64[n]`` resampling cluster in ``[0, n_clusters)``: the parallel id
            (LAReQA, so translations stay together) or the query id (MIRACL). Only clusters
            with at least one unit exist.
        n_groups: Number of groups.
        n_clusters: Number of clusters.
        keys: ``int64[n, 2]`` unit identity ``(query row, column)`` used to align runs;
            the column is the target language for cross-lingual metrics, else ``0``.
        article: ``int64[n]`` article group in ``[0, n_articles)`` of each unit (LAReQA
            per-query files that record ``article_groups``), or ``None``. Every cluster lies
            in one article group, so whole groups can be resampled.
        n_articles: Number of article groups (0 without them).

    Example:
        >>> u = units({"query_ids": np.array(["q1", "q2"]), "ndcg@10": np.array([0.5, 1.0])},
        ...           "ndcg@10")
        >>> u.n_groups, u.n_clusters, u.macro_mean()
        (1, 2, 0.75)
    """

    values: np.ndarray
    group: np.ndarray
    cluster: np.ndarray
    n_groups: int
    n_clusters: int
    keys: np.ndarray
    article: np.ndarray | None = None
    n_articles: int = 0

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def group_means(self) -> np.ndarray:
        """Mean of each group's units, ``float64[n_groups]``.

        Example:
            >>> u = units({"query_ids": np.array(["q"]), "map@100": np.array([0.5])}, "map@100")
            >>> u.group_means().tolist()
            [0.5]
        """
        return _group_means(self.values, self)

    def macro_mean(self) -> float:
        """Unweighted mean of the group means: the headline (NaN when there are no units).

        Example:
            >>> u = units({"query_ids": np.array(["q"]), "map@100": np.array([0.5])}, "map@100")
            >>> u.macro_mean()
            0.5
        """
        if len(self) == 0:
            return float("nan")
        return float(self.group_means().mean())


def _group_means(values: np.ndarray, u: Units) -> np.ndarray:
    sums = np.bincount(u.group, weights=values, minlength=u.n_groups)
    counts = np.bincount(u.group, minlength=u.n_groups)
    return sums / counts  # every group has >= 1 unit by construction


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")


def _get(per_query: Mapping[str, Any], key: str, metric: str) -> np.ndarray:
    if key not in per_query:
        raise ValueError(
            f"the per-query arrays have no {key!r} (needed for {metric}); "
            f"they hold: {', '.join(sorted(per_query.keys()))}"
        )
    return np.asarray(per_query[key])


def _compact(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber codes to 0..k-1 in ascending order of the original codes."""
    uniq, inverse = np.unique(codes, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), int(uniq.shape[0])


def units(per_query: Mapping[str, Any], metric: str) -> Units:
    """Turn per-query arrays (an opened ``.npz`` or a dict) into the units of one metric.

    LAReQA arrays need ``parallel_ids``, ``query_lang`` and the metric's array (``mono_ap``,
    ``cross_ap``, ...); MIRACL arrays need ``query_ids`` and the metric's array. NaN cells
    (undefined values) and, for cross-lingual metrics, the query's own language column are
    dropped.

    Args:
        per_query: Mapping from array name to array, e.g. ``np.load("per_query.npz")``.
        metric: A key of :data:`METRICS`.

    Returns:
        The metric's :class:`Units`; their ``macro_mean()`` equals the headline.

    Raises:
        ValueError: For an unknown metric, a missing array, or arrays whose shapes disagree.

    Example:
        >>> pq = {"parallel_ids": np.array(["a", "a", "b"]), "query_lang": np.array([0, 1, 0]),
        ...       "multi_ap": np.array([1.0, 0.5, 0.0])}
        >>> u = units(pq, "map_multi")
        >>> u.cluster.tolist(), u.group.tolist(), u.macro_mean()
        ([0, 0, 1], [0, 1, 0], 0.5)
    """
    _check_metric(metric)
    values = _get(per_query, _ARRAYS[metric], metric).astype(np.float64, copy=False)
    if metric in _MIRACL:
        ids = _get(per_query, "query_ids", metric)
        if ids.ndim != 1 or values.shape != ids.shape:
            raise ValueError(
                f"{_ARRAYS[metric]!r} has shape {values.shape} but 'query_ids' has shape "
                f"{ids.shape}; both must be [n_queries]"
            )
        rows = np.flatnonzero(~np.isnan(values))
        cols = np.zeros_like(rows)
        # A study's MIRACL ids are "language/qid": the languages are the averaging groups,
        # so the headline is the macro mean over languages, as MIRACL reports it.
        names = ids.astype(str)
        if names.size and all("/" in n for n in names):
            _, raw_group = np.unique([n.split("/", 1)[0] for n in names[rows]], return_inverse=True)
            raw_group = raw_group.reshape(-1)
        else:
            raw_group = cols
        ident = ids
    else:
        ident = _get(per_query, "parallel_ids", metric)
        query_lang = _get(per_query, "query_lang", metric)
        if query_lang.size and not np.issubdtype(query_lang.dtype, np.integer):
            raise ValueError(f"'query_lang' must hold integer codes, got dtype {query_lang.dtype}")
        query_lang = query_lang.astype(np.int64, copy=False)
        nq = query_lang.shape[0]
        if query_lang.ndim != 1 or ident.shape != (nq,):
            raise ValueError(
                f"'query_lang' {query_lang.shape} and 'parallel_ids' {ident.shape} must both "
                "be [n_queries]"
            )
        want = 2 if metric in _CROSS else 1
        if values.ndim != want or values.shape[0] != nq:
            expected = "[n_queries, n_languages]" if want == 2 else "[n_queries]"
            raise ValueError(
                f"{_ARRAYS[metric]!r} has shape {values.shape}, expected {expected} "
                f"with n_queries = {nq}"
            )
        if metric in _CROSS:
            n_lang = values.shape[1]
            # The own-language column is the monolingual setting, never a cross pair, even
            # if a writer filled it in.
            off_diag = np.arange(n_lang)[None, :] != query_lang[:, None]
            rows, cols = np.nonzero(~np.isnan(values) & off_diag)
            raw_group = query_lang[rows] * n_lang + cols
        else:
            rows = np.flatnonzero(~np.isnan(values))
            cols = np.zeros_like(rows)
            raw_group = query_lang[rows]
    vals = values[rows, cols] if values.ndim == 2 else values[rows]
    _, cluster_of_query = np.unique(ident, return_inverse=True)
    group, n_groups = _compact(raw_group)
    cluster, n_clusters = _compact(cluster_of_query.reshape(-1)[rows])
    article, n_articles = None, 0
    if metric not in _MIRACL and "article_groups" in per_query:
        groups = np.asarray(per_query["article_groups"])
        if groups.shape != ident.shape:
            raise ValueError(
                f"'article_groups' has shape {groups.shape} but 'parallel_ids' has shape "
                f"{ident.shape}; both must be [n_queries]"
            )
        article, n_articles = _compact(groups[rows])
        clusters_per = np.unique(np.stack([cluster, article]), axis=1)[0]
        if np.unique(clusters_per).size != clusters_per.size:
            raise ValueError(
                "'article_groups' puts one parallel question in two article groups; a "
                "question's translations share one group (langmix.data.pairs.article_groups)"
            )
    return Units(
        values=np.ascontiguousarray(vals, dtype=np.float64),
        group=group,
        cluster=cluster,
        n_groups=n_groups,
        n_clusters=n_clusters,
        keys=np.stack([rows, cols], axis=1).astype(np.int64),
        article=article,
        n_articles=n_articles,
    )


def headline(per_query: Mapping[str, Any], metric: str) -> float:
    """The headline number of a metric, as ``aggregate_lareqa`` / the MIRACL summary report it.

    LAReQA: per-group mean of the defined values, then the unweighted mean over groups that
    have at least one value (groups: query languages; ordered pairs X != Y for cross).
    MIRACL: the plain mean over queries.

    Args:
        per_query: Mapping from array name to array, e.g. ``np.load("per_query.npz")``.
        metric: A key of :data:`METRICS`.

    Returns:
        The headline; NaN if no query has a defined value.

    Raises:
        ValueError: As :func:`units`.

    Example:
        >>> pq = {"parallel_ids": np.array(["a", "b", "a"]), "query_lang": np.array([0, 0, 1]),
        ...       "mono_ap": np.array([1.0, 0.5, 0.25])}
        >>> headline(pq, "map_mono")  # mean of en (0.75) and de (0.25)
        0.5
    """
    return units(per_query, metric).macro_mean()


@dataclass(frozen=True)
class Comparison:
    """The paired comparison of two runs on one metric.

    Attributes:
        metric: The metric compared.
        mean_a: Headline of ``a`` (averaged over its seeds).
        mean_b: Headline of ``b`` (averaged over its seeds).
        difference: ``mean_a - mean_b``.
        ci_low: Lower end of the cluster-bootstrap percentile interval of the difference.
        ci_high: Upper end of that interval.
        p_value: Two-sided cluster sign-flip randomisation p-value for "no difference".
        n_clusters: Independent clusters (parallel questions, or MIRACL queries).
        n_resamples: Bootstrap replicates behind the interval.
        higher_is_better: Whether a positive difference favours ``a``.
        n_permutations: Sign-flip replicates behind the p-value.
        confidence: Coverage the interval was built for.

    Example:
        >>> c = compare(run_a, run_b, "map_cross")  # doctest: +SKIP
        >>> f"{c.difference:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}], p={c.p_value:.3g}"
        ... # doctest: +SKIP
    """

    metric: str
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_clusters: int
    n_resamples: int
    higher_is_better: bool
    n_permutations: int = 0
    confidence: float = 0.95


_PerQuery = Mapping[str, Any]


def _as_runs(x: _PerQuery | Sequence[_PerQuery], side: str) -> list[_PerQuery]:
    if isinstance(x, Mapping):
        return [x]
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise TypeError(
            f"{side} must be a per-query mapping (e.g. an opened .npz) or a list of them, "
            f"got {type(x).__name__}"
        )
    runs = list(x)
    if not runs:
        raise ValueError(f"{side} is an empty list of runs")
    for i, run in enumerate(runs):
        if not isinstance(run, Mapping):
            raise TypeError(f"{side}[{i}] must be a per-query mapping, got {type(run).__name__}")
    return runs


def _check_same_queries(
    ref: _PerQuery, ref_label: str, other: _PerQuery, label: str, metric: str
) -> None:
    """Raise unless two per-query files describe the same queries in the same order."""
    names = ["query_ids"] if metric in _MIRACL else ["parallel_ids", "query_lang"]
    if metric not in _MIRACL and "languages" in ref and "languages" in other:
        names.append("languages")
    for name in names:
        x, y = _get(ref, name, metric), _get(other, name, metric)
        if x.shape != y.shape:
            raise ValueError(
                f"{label} and {ref_label} are not the same queries: {name!r} has shape "
                f"{y.shape} in {label} but {x.shape} in {ref_label}"
            )
        diff = np.flatnonzero(x.reshape(-1) != y.reshape(-1))
        if diff.size:
            i = int(diff[0])
            raise ValueError(
                f"{label} and {ref_label} are not the same queries: {name!r} differs at "
                f"position {i} ({y.reshape(-1)[i]!r} vs {x.reshape(-1)[i]!r}) and "
                f"{diff.size - 1} more; a paired comparison needs per-query scores of the "
                "same queries in the same order"
            )


def _cluster_table(u: Units, diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (cluster, group) sum of ``diff`` and unit count, dense ``[n_clusters, n_groups]``."""
    flat = u.cluster * u.n_groups + u.group
    size = u.n_clusters * u.n_groups
    sums = np.bincount(flat, weights=diff, minlength=size).reshape(u.n_clusters, u.n_groups)
    counts = np.bincount(flat, minlength=size).reshape(u.n_clusters, u.n_groups)
    return sums, counts.astype(np.float64)


def _macro_from_weights(sums: np.ndarray, counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Macro mean per replicate, given how often each cluster is in it (``weights [R, C]``).

    A group none of whose clusters was drawn has no mean in that replicate and is left out of
    that replicate's average, as the headline leaves out groups without values.
    """
    group_sums = weights @ sums
    group_counts = weights @ counts
    present = group_counts > 0
    means = np.divide(group_sums, group_counts, out=np.zeros_like(group_sums), where=present)
    return means.sum(axis=1) / present.sum(axis=1)


def _batches(n: int, n_clusters: int, bytes_per_cell: int) -> list[tuple[int, int]]:
    rows = max(1, _BATCH_BYTES // (bytes_per_cell * max(n_clusters, 1)))
    return [(i, min(i + rows, n)) for i in range(0, n, rows)]


def _bootstrap(
    sums: np.ndarray, counts: np.ndarray, rng: np.random.Generator, n: int
) -> np.ndarray:
    """``n`` cluster-bootstrap replicates of the macro mean of the differences."""
    n_clusters = sums.shape[0]
    out = np.empty(n)
    # ~4 arrays of [rows, C] 8-byte cells live at once: draws, flat index, counts, weights.
    for i0, i1 in _batches(n, n_clusters, 32):
        r = i1 - i0
        draws = rng.integers(0, n_clusters, size=(r, n_clusters))
        # How often each cluster was drawn per replicate: one bincount over offset ids.
        draws += np.arange(r)[:, None] * n_clusters
        weights = np.bincount(draws.ravel(), minlength=r * n_clusters).reshape(r, n_clusters)
        del draws
        out[i0:i1] = _macro_from_weights(sums, counts, weights.astype(np.float64))
    return out


def _sign_flip_p(sums: np.ndarray, counts: np.ndarray, rng: np.random.Generator, n: int) -> float:
    """Two-sided cluster sign-flip p-value of the macro mean of the differences."""
    n_clusters, n_groups = sums.shape
    # Flipping never changes which units exist, so group sizes are fixed and the macro mean
    # is linear in the signs: stat = signs @ w, w[c] = cluster c's share of the statistic.
    w = (sums / counts.sum(axis=0)).sum(axis=1) / n_groups
    observed = float(np.ones(n_clusters) @ w)
    # Sign patterns that equal the observed one up to rounding must count as "as extreme".
    tol = 1e-10 * float(np.abs(w).sum())
    hits = 0
    for i0, i1 in _batches(n, n_clusters, 9):
        signs = rng.integers(0, 2, size=(i1 - i0, n_clusters), dtype=np.int8)
        stats = (2.0 * signs - 1.0) @ w
        hits += int(np.count_nonzero(np.abs(stats) >= abs(observed) - tol))
    return (1 + hits) / (1 + n)


def compare(
    a: _PerQuery | Sequence[_PerQuery],
    b: _PerQuery | Sequence[_PerQuery],
    metric: str,
    *,
    n_resamples: int = 2000,
    n_permutations: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Comparison:
    """Paired comparison of runs ``a`` and ``b`` on the same queries: CI and p-value.

    With several seeds per side, each side's unit values are first averaged over its own
    seeds (the sides need not have the same number of seeds); the tests then run on the
    difference of those averages, so they treat the query sample as the source of
    uncertainty, not the training seed (report the seed spread with :func:`seed_summary`).

    * Interval: paired cluster bootstrap. Clusters (parallel questions) are drawn with
      replacement; each group's mean difference is recomputed from the drawn clusters'
      units and the replicate is the mean over the groups that got units. Percentile
      interval at ``confidence``.
    * p-value: paired randomisation test. The differences of a whole cluster flip sign
      together; the statistic is the macro mean difference; two-sided, with
      ``p = (1 + #{|stat| >= |observed|}) / (1 + n_permutations)``.

    Args:
        a: Per-query mapping (e.g. ``np.load(...)``) or a list of them (seeds).
        b: The same for the other run.
        metric: A key of :data:`METRICS`.
        n_resamples: Bootstrap replicates.
        n_permutations: Sign-flip replicates.
        seed: Seed of the bootstrap and randomisation draws (independent streams).
        confidence: Interval coverage, in (0, 1).

    Returns:
        A :class:`Comparison`.

    Raises:
        ValueError: For an unknown metric, runs of different queries (naming the array and
            position that differ), runs whose defined cells differ, no defined values, or
            bad arguments.
        TypeError: If ``a`` or ``b`` is neither a mapping nor a list of mappings.

    Example:
        >>> ids = np.array(["q1", "q2", "q3", "q4"])
        >>> a = {"query_ids": ids, "ndcg@10": np.array([0.9, 0.8, 0.7, 1.0])}
        >>> b = {"query_ids": ids, "ndcg@10": np.array([0.5, 0.6, 0.4, 0.7])}
        >>> c = compare(a, b, "ndcg@10", n_resamples=200, n_permutations=200)
        >>> round(c.difference, 3), c.ci_low > 0, c.p_value < 0.2
        (0.3, True, True)
    """
    _check_metric(metric)
    if int(n_resamples) < 1 or int(n_permutations) < 1:
        raise ValueError(
            f"n_resamples and n_permutations must be >= 1, got {n_resamples}, {n_permutations}"
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    runs_a, runs_b = _as_runs(a, "a"), _as_runs(b, "b")
    labelled = [(f"a[{i}]", r) for i, r in enumerate(runs_a)]
    labelled += [(f"b[{i}]", r) for i, r in enumerate(runs_b)]
    ref_label, ref = labelled[0]
    for label, run in labelled[1:]:
        _check_same_queries(ref, ref_label, run, label, metric)

    unit_sets = [(label, units(run, metric)) for label, run in labelled]
    base = unit_sets[0][1]
    for label, u in unit_sets[1:]:
        if not np.array_equal(u.keys, base.keys):
            raise ValueError(
                f"{label} and {ref_label} have {metric} values for different (query, column) "
                f"cells ({len(u)} vs {len(base)} defined); the NaN pattern of a metric must "
                "not depend on the model"
            )
    if len(base) == 0:
        raise ValueError(f"no query has a defined {metric} value")
    values_a = np.mean([u.values for label, u in unit_sets if label[0] == "a"], axis=0)
    values_b = np.mean([u.values for label, u in unit_sets if label[0] == "b"], axis=0)
    mean_a = float(_group_means(values_a, base).mean())
    mean_b = float(_group_means(values_b, base).mean())

    sums, counts = _cluster_table(base, values_a - values_b)
    boot_seq, perm_seq = np.random.SeedSequence(seed).spawn(2)
    replicates = _bootstrap(sums, counts, np.random.default_rng(boot_seq), int(n_resamples))
    alpha = 1.0 - confidence
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    p_value = _sign_flip_p(sums, counts, np.random.default_rng(perm_seq), int(n_permutations))
    return Comparison(
        metric=metric,
        mean_a=mean_a,
        mean_b=mean_b,
        difference=mean_a - mean_b,
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(p_value),
        n_clusters=base.n_clusters,
        n_resamples=int(n_resamples),
        higher_is_better=METRICS[metric][1],
        n_permutations=int(n_permutations),
        confidence=float(confidence),
    )


def seed_summary(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of a metric over training seeds.

    Args:
        values: One headline per seed.

    Returns:
        ``(mean, sd)``; ``sd`` is ``0.0`` for a single seed.

    Raises:
        ValueError: For no values.

    Example:
        >>> seed_summary([1.0, 3.0])
        (2.0, 1.4142135623730951)
        >>> seed_summary([0.5])
        (0.5, 0.0)
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("seed_summary needs at least one value")
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return float(x.mean()), sd
