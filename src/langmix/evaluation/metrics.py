"""LAReQA retrieval metrics computed from embeddings in one pass over the score matrix.

LAReQA (Roy et al., 2020), in the form used by Elmahdy et al. (2024, arXiv 2408.10536),
ranks one pool of candidate sentences in several languages. A query's relevant set holds
the parallel answer sentence in every language that has the question (XQuAD-R: 11 per
query, MLQA-R: 2-4), so at most one relevant candidate per language. From the same score
matrix three settings are read:

* **monolingual** - pool restricted to the query's language, one relevant, AP = 1/rank;
* **cross-lingual** X->Y - pool restricted to language Y, one relevant, AP = 1/rank,
  for every ordered pair X != Y (queries without an answer in Y are skipped);
* **multilingual** - the whole pool, all relevant candidates, full AP, Recall@10 and
  *rank distance* (max - min pooled rank of the relevant set), which measures how far a
  model keeps answers in different languages apart.

Aggregation is the paper's: mean over queries per language pair, then a macro mean over
pairs (cross), over languages (mono) or over query languages (multi).

Why this is hand-written: no evaluation library implements this protocol (pooled
multilingual ranking with one relevant per language, language-pair macro averaging,
rank distance). Every number here is a function of two ranks per relevant candidate,
which :mod:`langmix.evaluation.ranking` computes in one pass over the score matrix (its
docstring gives the algorithm and the exact tie convention); the inputs are checked by
:mod:`langmix.evaluation.validation`. This module turns those ranks into per-query scores
and aggregates them.

Example:
    >>> q = np.eye(2, dtype=np.float32)
    >>> c = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    >>> res = evaluate_lareqa(q, c, np.array([0, 1]), np.array([0, 0, 1]),
    ...                       np.array([0, 2, 3]), np.array([0, 2, 2]), ["en", "de"])
    >>> res.map
    {'mono': 1.0, 'cross': 1.0, 'multi': 0.75}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from langmix.evaluation.ranking import (
    RelevantRanks,
    default_threads,
    rank_kernel,
    relevant_ranks,
    resolve_chunk_size,
)
from langmix.evaluation.validation import check_embeddings, check_lang, check_relevant

__all__ = [
    "LareqaPerQuery",
    "LareqaResult",
    "RelevantRanks",
    "aggregate_lareqa",
    "evaluate_lareqa",
    "relevant_ranks",
]

# RelevantRanks and relevant_ranks live in langmix.evaluation.ranking and are re-exported
# here, the module of the public LAReQA API.


@dataclass(frozen=True)
class LareqaPerQuery:
    """Per-query LAReQA scores, the unit of paired bootstrap / permutation tests.

    All float arrays hold NaN where the value is undefined for that query (e.g. no
    relevant candidate in the target language, or fewer than two relevant candidates
    for rank distance).

    Attributes:
        languages: Language names; integer code ``k`` means ``languages[k]``.
        query_lang: ``[nq]`` language code of each query.
        n_relevant: ``[nq]`` size of each query's relevant set.
        mono_ap: ``[nq]`` AP (= 1/rank) in the query-language pool.
        mono_recall1: ``[nq]`` Recall@1 in the query-language pool.
        cross_ap: ``[nq, n_lang]`` AP in the pool of target language ``Y`` (column);
            NaN on the query's own language and where ``Y`` has no answer.
        cross_recall1: ``[nq, n_lang]`` Recall@1, same layout as ``cross_ap``.
        multi_ap: ``[nq]`` AP over the whole pool with the full relevant set.
        multi_recall10: ``[nq]`` share of the relevant set ranked in the top 10.
        rank_distance: ``[nq]`` max - min pooled rank of the relevant set.

    Example:
        >>> res = evaluate_lareqa(q, c, ql, cl, indptr, indices, langs)  # doctest: +SKIP
        >>> sample = np.random.default_rng(0).integers(0, len(ql), len(ql))  # doctest: +SKIP
        >>> aggregate_lareqa(res.per_query.take(sample)).map["cross"]  # doctest: +SKIP
    """

    languages: tuple[str, ...]
    query_lang: np.ndarray
    n_relevant: np.ndarray
    mono_ap: np.ndarray
    mono_recall1: np.ndarray
    cross_ap: np.ndarray
    cross_recall1: np.ndarray
    multi_ap: np.ndarray
    multi_recall10: np.ndarray
    rank_distance: np.ndarray

    def __len__(self) -> int:
        return int(self.query_lang.shape[0])

    def take(self, idx: np.ndarray) -> LareqaPerQuery:
        """Return the queries at ``idx`` (repeats allowed, e.g. a bootstrap resample).

        Args:
            idx: Integer indices into the query axis.

        Returns:
            A new ``LareqaPerQuery`` over the selected queries.

        Example:
            >>> sub = per_query.take(np.arange(10))  # doctest: +SKIP
        """
        idx = np.asarray(idx)
        return LareqaPerQuery(
            languages=self.languages,
            query_lang=self.query_lang[idx],
            n_relevant=self.n_relevant[idx],
            mono_ap=self.mono_ap[idx],
            mono_recall1=self.mono_recall1[idx],
            cross_ap=self.cross_ap[idx],
            cross_recall1=self.cross_recall1[idx],
            multi_ap=self.multi_ap[idx],
            multi_recall10=self.multi_recall10[idx],
            rank_distance=self.rank_distance[idx],
        )


@dataclass(frozen=True)
class LareqaResult:
    """Aggregated LAReQA scores plus the per-query arrays they came from.

    Attributes:
        languages: Language names, indexed by language code.
        map: Headline mAP: ``{"mono", "cross", "multi"}``.
        recall: Headline recall: ``{"mono@1", "cross@1", "multi@10"}``.
        rank_distance: Headline rank distance (macro mean over query languages); NaN if
            no query has two or more relevant candidates.
        per_pair: ``{"en-de": {"map", "recall@1", "n_queries"}}`` for every ordered pair
            with at least one query, diagonal (``"en-en"`` = monolingual) included.
        per_language: ``{"en": {"map_multi", "recall@10", "rank_distance",
            "n_queries"}}`` per query language with at least one query.
        per_query: Per-query arrays (see ``LareqaPerQuery``).
        ranks: Ranks of the relevant candidates (``None`` when the result was rebuilt
            from per-query arrays by ``aggregate_lareqa``).

    Example:
        >>> res = evaluate_lareqa(q, c, ql, cl, indptr, indices, langs)  # doctest: +SKIP
        >>> res.map["multi"], res.per_pair["en-de"]["map"]  # doctest: +SKIP
    """

    languages: tuple[str, ...]
    map: dict[str, float]
    recall: dict[str, float]
    rank_distance: float
    per_pair: dict[str, dict[str, float]]
    per_language: dict[str, dict[str, float]]
    per_query: LareqaPerQuery = field(repr=False)
    ranks: RelevantRanks | None = field(default=None, repr=False)

    def headline(self) -> dict[str, float]:
        """The seven headline numbers under the names studies, reports and model cards use.

        Example:
            >>> sorted(res.headline())  # doctest: +SKIP
            ['map_cross', 'map_mono', 'map_multi', 'r10_multi', 'r1_cross', 'r1_mono', 'rank_distance']
        """
        return {
            "map_mono": self.map["mono"],
            "map_cross": self.map["cross"],
            "map_multi": self.map["multi"],
            "r1_mono": self.recall["mono@1"],
            "r1_cross": self.recall["cross@1"],
            "r10_multi": self.recall["multi@10"],
            "rank_distance": self.rank_distance,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (headline, per-pair, per-language); NaN becomes ``None``.

        Returns:
            Nested dict of Python ``float``/``int``/``str``/``None`` values.

        Example:
            >>> json.dumps(res.to_dict())  # doctest: +SKIP
        """
        return {
            "map": {k: _json_float(v) for k, v in self.map.items()},
            "recall": {k: _json_float(v) for k, v in self.recall.items()},
            "rank_distance": _json_float(self.rank_distance),
            "per_pair": {
                pair: {k: _json_num(v) for k, v in vals.items()}
                for pair, vals in self.per_pair.items()
            },
            "per_language": {
                lang: {k: _json_num(v) for k, v in vals.items()}
                for lang, vals in self.per_language.items()
            },
        }


def _json_float(x: float) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def _json_num(x: Any) -> float | int | None:
    if isinstance(x, (int, np.integer)):
        return int(x)
    return _json_float(x)


# ----------------------------------------------------------------------------- metrics


def evaluate_lareqa(
    query_emb: np.ndarray,
    cand_emb: np.ndarray,
    query_lang: np.ndarray,
    cand_lang: np.ndarray,
    rel_indptr: np.ndarray,
    rel_indices: np.ndarray,
    languages: Sequence[str],
    *,
    chunk_size: int | None = None,
    n_threads: int | None = None,
) -> LareqaResult:
    """Evaluate LAReQA mono-, cross- and multilingual retrieval in one pass.

    Args:
        query_emb: ``[nq, d]`` float32, L2-normalised query embeddings.
        cand_emb: ``[nc, d]`` float32, L2-normalised candidate embeddings.
        query_lang: ``[nq]`` language code of each query (index into ``languages``).
        cand_lang: ``[nc]`` language code of each candidate.
        rel_indptr: ``[nq + 1]`` CSR row pointer of the relevant sets.
        rel_indices: Relevant candidate indices (CSR), at most one per language per query.
        languages: Names of the language codes, e.g. ``["ar", "de", ...]``.
        chunk_size: Queries per score chunk; default keeps a chunk around 64 MiB.
        n_threads: Threads for the per-chunk sort; default: usable CPU cores.

    Returns:
        A ``LareqaResult`` with headline, per-pair, per-language and per-query numbers.

    Raises:
        TypeError: Non-float32 embeddings or non-integer code/index arrays.
        ValueError: Invalid shapes, codes, language names, relevant sets or empty pools.
        IndexError: Relevant candidate index out of range.

    Example:
        >>> q = np.eye(2, dtype=np.float32)
        >>> c = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
        >>> res = evaluate_lareqa(q, c, np.array([0, 1]), np.array([0, 0, 1]),
        ...                       np.array([0, 2, 3]), np.array([0, 2, 2]), ["en", "de"])
        >>> res.per_pair["en-de"]["map"], res.map["multi"]
        (1.0, 0.75)
    """
    languages = tuple(languages)
    if not languages or not all(isinstance(x, str) for x in languages):
        raise ValueError("languages must be a non-empty sequence of names")
    if len(set(languages)) != len(languages):
        raise ValueError(f"languages has duplicate names: {languages}")
    n_lang = len(languages)
    q = check_embeddings(query_emb, "query_emb", "query set")
    c = check_embeddings(cand_emb, "cand_emb", "candidate pool")
    if q.shape[1] != c.shape[1]:
        raise ValueError(f"embedding dims differ: query_emb {q.shape}, cand_emb {c.shape}")
    ql = check_lang(query_lang, q.shape[0], "query_lang", n_lang)
    cl = check_lang(cand_lang, c.shape[0], "cand_lang", n_lang)
    indptr, indices = check_relevant(rel_indptr, rel_indices, q.shape[0], c.shape[0], cl)

    ranks = rank_kernel(
        q,
        c,
        cl,
        indptr,
        indices,
        resolve_chunk_size(chunk_size, c.shape[0]),
        n_threads or default_threads(),
    )
    per_query = _per_query(ranks, ql, cl, indptr, indices, languages)
    return aggregate_lareqa(per_query, ranks=ranks)


def _per_query(
    ranks: RelevantRanks,
    query_lang: np.ndarray,
    cand_lang: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    languages: tuple[str, ...],
) -> LareqaPerQuery:
    nq, n_lang = query_lang.shape[0], len(languages)
    counts = np.diff(indptr)
    # Query and language of each relevant entry (CSR order, aligned with the ranks).
    rel_query = np.repeat(np.arange(nq), counts)
    rel_lang = cand_lang[indices]
    rows = np.arange(nq)

    # One relevant per language, so a (query, language) cell holds at most one AP = 1/rank.
    by_lang_ap = np.full((nq, n_lang), np.nan)
    by_lang_ap[rel_query, rel_lang] = 1.0 / ranks.in_lang
    by_lang_r1 = np.full((nq, n_lang), np.nan)
    by_lang_r1[rel_query, rel_lang] = (ranks.in_lang == 1).astype(np.float64)
    mono_ap = by_lang_ap[rows, query_lang].copy()
    mono_r1 = by_lang_r1[rows, query_lang].copy()
    by_lang_ap[rows, query_lang] = np.nan
    by_lang_r1[rows, query_lang] = np.nan

    # Full AP with every relevant retrieved: mean over k of k / r_(k), ranks ascending.
    # Padding with inf adds k / inf = 0 to the sum, so ragged sets need no loop.
    max_rel = int(counts.max())
    rel_slot = np.arange(indices.shape[0]) - indptr[rel_query]
    padded = np.full((nq, max_rel), np.inf)
    padded[rel_query, rel_slot] = ranks.pooled
    padded.sort(axis=1)
    k = np.arange(1, max_rel + 1, dtype=np.float64)
    multi_ap = (k / padded).sum(axis=1) / counts

    pooled = ranks.pooled
    recall10 = np.bincount(rel_query, weights=(pooled <= 10), minlength=nq) / counts
    starts = indptr[:-1]
    spread = np.maximum.reduceat(pooled, starts) - np.minimum.reduceat(pooled, starts)
    rank_distance = np.where(counts >= 2, spread.astype(np.float64), np.nan)

    return LareqaPerQuery(
        languages=languages,
        query_lang=query_lang,
        n_relevant=counts,
        mono_ap=mono_ap,
        mono_recall1=mono_r1,
        cross_ap=by_lang_ap,
        cross_recall1=by_lang_r1,
        multi_ap=multi_ap,
        multi_recall10=recall10,
        rank_distance=rank_distance,
    )


def _group_mean(values: np.ndarray, group: np.ndarray, n_groups: int) -> tuple[np.ndarray, ...]:
    """NaN-skipping mean of ``values`` ([n] or [n, m]) per group; returns (mean, count)."""
    onehot = (group[None, :] == np.arange(n_groups)[:, None]).astype(np.float64)
    ok = ~np.isnan(values)
    n = onehot @ ok.astype(np.float64)
    s = onehot @ np.where(ok, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / n, n.astype(np.int64)


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def aggregate_lareqa(
    per_query: LareqaPerQuery, *, ranks: RelevantRanks | None = None
) -> LareqaResult:
    """Aggregate per-query LAReQA arrays with the paper's macro averaging.

    Pair (X, Y): mean over queries of language X that have an answer in Y. Mono headline:
    macro mean of the diagonal pairs; cross headline: macro mean over ordered pairs
    X != Y with at least one query; multi headline (mAP, R@10, rank distance): macro mean
    over query languages of the per-language mean. Use with ``LareqaPerQuery.take`` to
    recompute headlines on bootstrap resamples.

    Args:
        per_query: Per-query arrays, e.g. ``evaluate_lareqa(...).per_query``.
        ranks: Optional relevant ranks to attach to the result.

    Returns:
        A ``LareqaResult``.

    Example:
        >>> boot = aggregate_lareqa(res.per_query.take(sample))  # doctest: +SKIP
        >>> boot.map["cross"]  # doctest: +SKIP
    """
    langs = per_query.languages
    n_lang = len(langs)
    ql = per_query.query_lang

    ap = per_query.cross_ap.copy()
    r1 = per_query.cross_recall1.copy()
    rows = np.arange(len(per_query))
    ap[rows, ql] = per_query.mono_ap
    r1[rows, ql] = per_query.mono_recall1
    pair_ap, pair_n = _group_mean(ap, ql, n_lang)
    pair_r1, _ = _group_mean(r1, ql, n_lang)

    per_pair: dict[str, dict[str, float]] = {}
    for x in range(n_lang):
        for y in range(n_lang):
            if pair_n[x, y] > 0:
                per_pair[f"{langs[x]}-{langs[y]}"] = {
                    "map": float(pair_ap[x, y]),
                    "recall@1": float(pair_r1[x, y]),
                    "n_queries": int(pair_n[x, y]),
                }
    diag = np.eye(n_lang, dtype=bool)
    has = pair_n > 0
    mono_map = _nanmean(pair_ap[diag & has])
    mono_r1 = _nanmean(pair_r1[diag & has])
    cross_map = _nanmean(pair_ap[~diag & has])
    cross_r1 = _nanmean(pair_r1[~diag & has])

    stats = np.stack(
        [per_query.multi_ap, per_query.multi_recall10, per_query.rank_distance], axis=1
    )
    lang_mean, lang_n = _group_mean(stats, ql, n_lang)
    n_queries = np.bincount(ql, minlength=n_lang)
    per_language: dict[str, dict[str, float]] = {}
    for x in range(n_lang):
        if n_queries[x] > 0:
            per_language[langs[x]] = {
                "map_multi": float(lang_mean[x, 0]),
                "recall@10": float(lang_mean[x, 1]),
                "rank_distance": float(lang_mean[x, 2]) if lang_n[x, 2] else float("nan"),
                "n_queries": int(n_queries[x]),
            }
    present = n_queries > 0
    return LareqaResult(
        languages=langs,
        map={
            "mono": mono_map,
            "cross": cross_map,
            "multi": _nanmean(lang_mean[present, 0]),
        },
        recall={
            "mono@1": mono_r1,
            "cross@1": cross_r1,
            "multi@10": _nanmean(lang_mean[present, 1]),
        },
        rank_distance=_nanmean(lang_mean[present & (lang_n[:, 2] > 0), 2]),
        per_pair=per_pair,
        per_language=per_language,
        per_query=per_query,
        ranks=ranks,
    )
