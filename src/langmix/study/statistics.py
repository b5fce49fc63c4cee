"""Per-query scores as the units a study's statistics resample.

A study compares models (or batch strategies) that were evaluated on the *same* queries, so
every comparison is paired: per query (and, for cross-lingual metrics, per target
language) the score of one run minus the score of another. Two things make the usual
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
:func:`langmix.evaluation.metrics.aggregate_lareqa` exactly (see :func:`headline`). The
resampling itself lives with its users: :mod:`langmix.study.inference` (a study's
two-level bootstrap) and :mod:`langmix.study.paired` (one paired comparison of two runs).

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
    "PER_QUESTION",
    "Units",
    "headline",
    "question_level",
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

#: Marker array of a question-level per-query file. In a fully parallel LAReQA set (every
#: question asked once in every language, every value defined) each group holds every
#: question once, so a macro mean over groups is the mean over questions of each question's
#: mean over groups, under any weighting of the questions: a bootstrap or sign-flip replicate
#: of the headline needs only that one value per question. :mod:`langmix.study.publish`
#: stores such sets so, 11 (mono, multi) to 110 (cross) times smaller.
PER_QUESTION = "per_question"

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
            MIRACL query id ``language/qid`` (``0`` for ids without one and in a
            question-level file, :data:`PER_QUESTION`). Groups
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


def _defined_rows(
    values: np.ndarray, ids: np.ndarray, name: str, ids_name: str, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Rows (and zero columns) of a one-value-per-row array's defined values, after checking
    that it has one value per id."""
    if ids.ndim != 1 or values.shape != ids.shape:
        raise ValueError(
            f"{name} has shape {values.shape} but {ids_name} has shape {ids.shape}; both must "
            f"be [n_{what}]"
        )
    rows = np.flatnonzero(~np.isnan(values))
    return rows, np.zeros_like(rows)


def units(per_query: Mapping[str, Any], metric: str) -> Units:
    """Turn per-query arrays (an opened ``.npz`` or a dict) into the units of one metric.

    LAReQA arrays need ``parallel_ids``, ``query_lang`` and the metric's array (``mono_ap``,
    ``cross_ap``, ...); a published question-level file (:data:`PER_QUESTION`) needs
    ``parallel_ids`` and one value per question; MIRACL arrays need ``query_ids`` and the
    metric's array. NaN cells
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
        rows, cols = _defined_rows(values, ids, f"{_ARRAYS[metric]!r}", "'query_ids'", "queries")
        # A study's MIRACL ids are "language/qid": the languages are the averaging groups,
        # so the headline is the macro mean over languages, as MIRACL reports it.
        names = ids.astype(str)
        if names.size and all("/" in n for n in names):
            _, raw_group = np.unique([n.split("/", 1)[0] for n in names[rows]], return_inverse=True)
            raw_group = raw_group.reshape(-1)
        else:
            raw_group = cols
        ident = ids
    elif PER_QUESTION in per_query:
        # A published question-level file (langmix.study.publish): one value per question,
        # already its mean over the groups, so the question is the only group.
        ident = _get(per_query, "parallel_ids", metric)
        rows, cols = _defined_rows(
            values,
            ident,
            f"{_ARRAYS[metric]!r}",
            "this question-level file's 'parallel_ids'",
            "questions",
        )
        raw_group = cols
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


def question_level(per_query: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """The question-level form of a fully parallel LAReQA file, or ``None`` if it is not one.

    Fully parallel: every question asked exactly once in every language, and every value of
    its metric arrays defined (off the diagonal, for the cross-lingual ones). Then each
    group holds every question once, so a headline and any weighting of the questions
    (bootstrap, sign flips) depend on one number per question: its mean over the metric's
    groups (:data:`PER_QUESTION`). MLQA-R, whose questions are missing in some languages,
    has no such form; MIRACL neither. A file already in this form gives ``None``.

    Example:
        >>> pq = {"parallel_ids": np.array(["a", "a", "b", "b"]),
        ...       "query_lang": np.array([0, 1, 0, 1]), "multi_ap": np.array([1.0, 0.5, 0.0, 0.5])}
        >>> q = question_level(pq)
        >>> q["parallel_ids"].tolist(), q["multi_ap"].tolist(), headline(q, "map_multi")
        ([0, 1], [0.75, 0.25], 0.5)
    """
    if (
        PER_QUESTION in per_query
        or "parallel_ids" not in per_query
        or "query_lang" not in per_query
    ):
        return None
    ids, question = np.unique(np.asarray(per_query["parallel_ids"]), return_inverse=True)
    question = question.reshape(-1)
    lang = np.asarray(per_query["query_lang"]).astype(np.int64)
    languages = per_query.get("languages")
    n_lang = len(languages) if languages is not None else int(lang.max()) + 1
    n_questions = ids.size
    if question.size != n_questions * n_lang or n_lang < 2 or lang.shape != question.shape:
        return None
    order = np.lexsort((lang, question))  # question-major, languages in code order
    expected = np.stack(
        [np.repeat(np.arange(n_questions), n_lang), np.tile(np.arange(n_lang), n_questions)],
        axis=1,
    )
    if not np.array_equal(np.stack([question[order], lang[order]], axis=1), expected):
        return None
    # Integer codes in sorted id order, as a publication stores them (the string ids are
    # not kept there), so a run's files and a publication's pair with each other.
    codes = np.arange(n_questions, dtype=np.int32)
    out: dict[str, np.ndarray] = {"parallel_ids": codes, PER_QUESTION: np.array(True)}
    if languages is not None:
        out["languages"] = np.asarray(languages)
    if "article_groups" in per_query:
        groups = np.asarray(per_query["article_groups"])[order].reshape(n_questions, n_lang)
        if not (groups == groups[:, :1]).all():
            return None  # units() refuses such a file, with its reason; leave it as it is
        codes_of = np.unique(groups[:, 0], return_inverse=True)[1]
        out["article_groups"] = codes_of.reshape(-1).astype(np.int32)
    off_diagonal = ~np.eye(n_lang, dtype=bool)
    for metric, name in _ARRAYS.items():
        if metric in _MIRACL or name not in per_query:
            continue
        values = np.asarray(per_query[name], dtype=np.float64)[order]
        if metric in _CROSS:  # [query, target language], its own language excluded
            values = values.reshape(n_questions, n_lang, n_lang)[:, off_diagonal]
        else:
            values = values.reshape(n_questions, n_lang)
        if np.isnan(values).any():
            return None
        out[name] = values.mean(axis=1)
    return out


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


def _cluster_table(u: Units, diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (cluster, group) sum of ``diff`` and unit count, dense ``[n_clusters, n_groups]``."""
    flat = u.cluster * u.n_groups + u.group
    size = u.n_clusters * u.n_groups
    sums = np.bincount(flat, weights=diff, minlength=size).reshape(u.n_clusters, u.n_groups)
    counts = np.bincount(flat, minlength=size).reshape(u.n_clusters, u.n_groups)
    return sums, counts.astype(np.float64)


def _batches(n: int, n_clusters: int, bytes_per_cell: int) -> list[tuple[int, int]]:
    rows = max(1, _BATCH_BYTES // (bytes_per_cell * max(n_clusters, 1)))
    return [(i, min(i + rows, n)) for i in range(0, n, rows)]


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
