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
rank distance), and handing a dense 13k x 13k run to ``pytrec_eval`` takes minutes and
gigabytes of Python dicts. Here only the ranks of the relevant candidates are needed,
so each chunk of the float32 score matrix is sorted once per language block and the
ranks are read off by binary search, which keeps the total cost within a small factor
of the ``Q @ C.T`` product itself and independent of the relevant-set size.

Tie convention (exact, deterministic): candidates are ordered by score descending and,
among equal scores, by candidate index ascending. The rank of relevant candidate ``j``
with score ``s_j`` within a pool ``P`` is therefore::

    rank = 1 + #{i in P : s_i > s_j} + #{i in P : s_i == s_j and i < j}

Scores are the float32 dot products computed here; ranks are exact with respect to those
numbers (no epsilon), so duplicate sentences (identical embeddings) are ranked by index.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

__all__ = [
    "LareqaPerQuery",
    "LareqaResult",
    "RelevantRanks",
    "aggregate_lareqa",
    "evaluate_lareqa",
    "relevant_ranks",
]

# Score buffer per chunk, in bytes; large enough for GEMM efficiency, small enough that a
# 13k-candidate pool never needs more than a few hundred MB in flight.
_CHUNK_BYTES = 64 * 2**20
# Tied (query, relevant) pairs handled per vectorised step of the exact tie recount;
# bounds its [pairs, block size] mask.
_TIE_BATCH = 1024


class RelevantRanks(NamedTuple):
    """Ranks of every relevant candidate, aligned with ``rel_indices``.

    Attributes:
        in_lang: 1-based rank among the candidates of the relevant candidate's own
            language (the mono/cross-lingual pool).
        pooled: 1-based rank in the whole candidate pool (the multilingual pool).
    """

    in_lang: np.ndarray
    pooled: np.ndarray


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


# --------------------------------------------------------------------------- validation


def _as_int_array(x: Any, name: str, ndim: int = 1) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, got {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check_embeddings(emb: Any, name: str, pool: str) -> np.ndarray:
    if not isinstance(emb, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(emb).__name__}")
    if emb.ndim != 2:
        raise ValueError(f"{name} must be 2-D [n, d], got shape {emb.shape}")
    if emb.dtype != np.float32:
        # float64 would double memory traffic and change tie structure; be explicit.
        raise TypeError(f"{name} must be float32, got {emb.dtype}")
    if emb.shape[0] == 0:
        raise ValueError(f"{name} has no rows: the {pool} is empty")
    if not np.isfinite(emb).all():
        raise ValueError(f"{name} contains NaN or inf")
    return np.ascontiguousarray(emb)


def _check_lang(codes: Any, n: int, name: str, n_lang: int | None) -> np.ndarray:
    arr = _as_int_array(codes, name)
    if arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]}, expected {n}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} has negative language codes")
    if n_lang is not None and arr.size and arr.max() >= n_lang:
        raise ValueError(
            f"{name} has language code {int(arr.max())} but only {n_lang} languages are named"
        )
    return arr


def _check_relevant(
    indptr: Any, indices: Any, nq: int, nc: int, cand_lang: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    indptr = _as_int_array(indptr, "rel_indptr")
    indices = _as_int_array(indices, "rel_indices")
    if indptr.shape[0] != nq + 1:
        raise ValueError(f"rel_indptr has length {indptr.shape[0]}, expected nq + 1 = {nq + 1}")
    if indptr[0] != 0 or indptr[-1] != indices.shape[0]:
        raise ValueError(
            f"rel_indptr must start at 0 and end at len(rel_indices) = {indices.shape[0]}, "
            f"got {int(indptr[0])}..{int(indptr[-1])}"
        )
    counts = np.diff(indptr)
    if (counts < 0).any():
        raise ValueError("rel_indptr must be non-decreasing")
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(f"query {int(empty[0])} has no relevant candidates")
    if indices.size and (indices.min() < 0 or indices.max() >= nc):
        bad = int(indices[(indices < 0) | (indices >= nc)][0])
        raise IndexError(f"rel_indices has candidate index {bad} outside [0, {nc})")
    # One relevant per language per query is what makes mono/cross AP = 1/rank valid.
    rq = np.repeat(np.arange(nq, dtype=np.int64), counts)
    key = rq * (int(cand_lang.max()) + 1) + cand_lang[indices]
    order = np.argsort(key, kind="stable")
    dup = np.flatnonzero(np.diff(key[order]) == 0)
    if dup.size:
        a, b = indices[order[dup[0]]], indices[order[dup[0] + 1]]
        q = int(rq[order[dup[0]]])
        raise ValueError(
            f"query {q} has two relevant candidates ({int(a)} and {int(b)}) in language "
            f"code {int(cand_lang[a])}; LAReQA allows at most one per language"
        )
    return indptr, indices


def _check_chunk(chunk_size: int | None, nc: int) -> int:
    if chunk_size is None:
        return max(1, _CHUNK_BYTES // (4 * nc))
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return int(chunk_size)


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


# ------------------------------------------------------------------------------ kernel


def relevant_ranks(
    query_emb: np.ndarray,
    cand_emb: np.ndarray,
    cand_lang: np.ndarray,
    rel_indptr: np.ndarray,
    rel_indices: np.ndarray,
    *,
    chunk_size: int | None = None,
    n_threads: int | None = None,
) -> RelevantRanks:
    """Rank every relevant candidate within its language and within the whole pool.

    Scores are ``query_emb @ cand_emb.T`` in float32, computed ``chunk_size`` queries
    at a time. Ties are broken by candidate index (see module docstring):
    ``rank = 1 + #(score > s_j) + #(score == s_j and index < j)`` over the pool.

    Args:
        query_emb: ``[nq, d]`` float32 query embeddings.
        cand_emb: ``[nc, d]`` float32 candidate embeddings.
        cand_lang: ``[nc]`` integer language code of each candidate.
        rel_indptr: ``[nq + 1]`` CSR row pointer of the relevant sets.
        rel_indices: Candidate indices of the relevant sets (CSR column indices), at most
            one per language per query.
        chunk_size: Queries per score chunk; default keeps a chunk around 64 MiB.
        n_threads: Threads for the per-chunk sort; default: usable CPU cores.

    Returns:
        ``RelevantRanks(in_lang, pooled)``, int64 arrays aligned with ``rel_indices``.

    Raises:
        TypeError: Non-float32 embeddings or non-integer index arrays.
        ValueError: Shape mismatches, empty pools, queries without relevant candidates,
            two relevant candidates of one query in the same language.
        IndexError: Relevant candidate index out of range.

    Example:
        >>> q = np.eye(2, dtype=np.float32)
        >>> c = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
        >>> r = relevant_ranks(q, c, np.array([0, 0, 1]), np.array([0, 2, 3]),
        ...                    np.array([0, 2, 2]))
        >>> r.in_lang.tolist(), r.pooled.tolist()
        ([1, 1, 1], [1, 2, 2])
    """
    q = _check_embeddings(query_emb, "query_emb", "query set")
    c = _check_embeddings(cand_emb, "cand_emb", "candidate pool")
    if q.shape[1] != c.shape[1]:
        raise ValueError(f"embedding dims differ: query_emb {q.shape}, cand_emb {c.shape}")
    cl = _check_lang(cand_lang, c.shape[0], "cand_lang", None)
    indptr, indices = _check_relevant(rel_indptr, rel_indices, q.shape[0], c.shape[0], cl)
    return _ranks_kernel(
        q,
        c,
        cl,
        indptr,
        indices,
        _check_chunk(chunk_size, c.shape[0]),
        n_threads or _default_threads(),
    )


def _count_greater(
    scores: np.ndarray,
    rel_s: np.ndarray,
    rel_blk: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    gt_all: np.ndarray,
    gt_own: np.ndarray,
    eq_blk: np.ndarray,
) -> None:
    """Fill per-relevant counts of greater scores and per-block equal scores (in place)."""
    # Sorting a block row once answers all relevant ranks of that row by binary search,
    # so the cost does not grow with the relevant-set size.
    vals = torch.from_numpy(rel_s)
    for k in range(starts.shape[0]):
        a, e = int(starts[k]), int(ends[k])
        srt = torch.from_numpy(np.sort(scores[:, a:e], axis=1))
        le = torch.searchsorted(srt, vals, right=True).numpy()
        lt = torch.searchsorted(srt, vals, right=False).numpy()
        gt = (e - a) - le
        gt_all += gt
        eq_blk[:, :, k] = le - lt
        own = rel_blk == k
        gt_own[own] = gt[own]


def _gemm_drifted(q: np.ndarray, c: np.ndarray, pos: np.ndarray, got: np.ndarray) -> bool:
    """True if GEMM scores ``got`` [b, R] for rows ``q[:b]`` x ``c[pos]`` are not float32."""
    b = pos.shape[0]
    pairs = c[pos]
    got = got[:b]
    direct = np.einsum("bd,brd->br", q[:b], pairs)
    # Worst-case float32 rounding of a length-d dot product is about d * eps * |q||c|;
    # bf16 inputs are off by orders of magnitude more.
    tol = 2.0 * max(q.shape[1], 16) * float(np.finfo(np.float32).eps)
    bound = tol * np.linalg.norm(q[:b], axis=1)[:, None] * np.linalg.norm(pairs, axis=2)
    return bool((np.abs(got - direct) > bound + 1e-30).any())


def _break_ties(
    scores: np.ndarray,
    rel_s: np.ndarray,
    rel_pos: np.ndarray,
    rel_blk: np.ndarray,
    valid: np.ndarray,
    eq_blk: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    perm: np.ndarray,
    tie_all: np.ndarray,
    tie_own: np.ndarray,
) -> None:
    """Count exact ties with a smaller candidate index (in place), block by block."""
    for k in range(starts.shape[0]):
        a, e = int(starts[k]), int(ends[k])
        own = rel_blk == k
        # A relevant candidate always ties with itself in its own block; anything more is
        # a genuine exact tie, which is rare, so only those (query, relevant, block)
        # triples pay for a scan, and only of that block.
        t_row, t_col = np.nonzero(valid & (eq_blk[:, :, k] > own))
        for t0 in range(0, t_row.shape[0], _TIE_BATCH):
            tr, tc = t_row[t0 : t0 + _TIE_BATCH], t_col[t0 : t0 + _TIE_BATCH]
            j_orig = perm[rel_pos[tr, tc]]
            hit, col = np.nonzero(scores[tr, a:e] == rel_s[tr, tc][:, None])
            before = hit[perm[a + col] < j_orig[hit]]
            n_before = np.bincount(before, minlength=tr.shape[0])
            tie_all[tr, tc] += n_before
            tie_own[tr, tc] += np.where(own[tr, tc], n_before, 0)


def _ranks_kernel(
    q: np.ndarray,
    c: np.ndarray,
    cand_lang: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    chunk_size: int,
    n_threads: int,
) -> RelevantRanks:
    nq, nc = q.shape[0], c.shape[0]
    # Make each language a contiguous column block so a per-language pool is a slice;
    # the stable sort keeps index order inside a block, which the tie rule relies on.
    perm = np.argsort(cand_lang, kind="stable")
    pos = np.empty(nc, dtype=np.int64)
    pos[perm] = np.arange(nc)
    lang_sorted = cand_lang[perm]
    codes, starts = np.unique(lang_sorted, return_index=True)
    ends = np.append(starts[1:], nc)
    # The GEMM goes through torch, not numpy: numpy's OpenBLAS threads keep spinning
    # after each product and starve the sort threads (measured 2x slower end to end),
    # whereas torch's own pool cooperates with them.
    c_perm = np.ascontiguousarray(c[perm])
    c_t = torch.from_numpy(c_perm).T
    q_t = torch.from_numpy(q if q.flags.writeable else q.copy())
    use_torch = True

    counts = np.diff(indptr)
    r_max = int(counts.max())
    rq = np.repeat(np.arange(nq), counts)
    col = np.arange(indices.shape[0]) - indptr[rq]
    # Pad short relevant sets with a copy of their first entry; padded slots are
    # computed like the rest and dropped when scattering back.
    pad_pos = np.repeat(pos[indices[indptr[:-1]]][:, None], r_max, axis=1)
    pad_pos[rq, col] = pos[indices]
    pad_blk = np.searchsorted(codes, lang_sorted[pad_pos])
    valid = np.zeros((nq, r_max), dtype=bool)
    valid[rq, col] = True

    out_in = np.empty((nq, r_max), dtype=np.int64)
    out_pool = np.empty((nq, r_max), dtype=np.int64)
    buf = np.empty((min(chunk_size, nq), nc), dtype=np.float32)
    buf_t = torch.from_numpy(buf)  # shares memory: the GEMM writes straight into buf

    executor = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
    try:
        for i0 in range(0, nq, chunk_size):
            i1 = min(i0 + chunk_size, nq)
            scores = buf[: i1 - i0]
            if use_torch:
                torch.matmul(q_t[i0:i1], c_t, out=buf_t[: i1 - i0])
            else:
                np.matmul(q[i0:i1], c_perm.T, out=scores)
            rel_s = np.ascontiguousarray(np.take_along_axis(scores, pad_pos[i0:i1], axis=1))
            # torch.set_float32_matmul_precision("medium") (common in training code)
            # makes CPU matmuls run in bf16; check the first chunk's relevant scores
            # against a plain float32 dot product and fall back to numpy's GEMM if they
            # drifted (the setting cannot change mid-call, so one chunk is enough).
            n_check = min(i1, 256)  # bounds the [n, R, d] gather of the check
            if use_torch and i0 == 0 and _gemm_drifted(q, c_perm, pad_pos[:n_check], rel_s):
                warnings.warn(
                    "torch float32 matmul runs at reduced precision "
                    f"(float32_matmul_precision={torch.get_float32_matmul_precision()!r}); "
                    "LAReQA scores fall back to numpy's float32 GEMM (slower)",
                    RuntimeWarning,
                    stacklevel=3,
                )
                use_torch = False
                np.matmul(q[i0:i1], c_perm.T, out=scores)
                rel_s = np.ascontiguousarray(np.take_along_axis(scores, pad_pos[i0:i1], axis=1))
            gt_all = np.zeros((i1 - i0, r_max), dtype=np.int64)
            gt_own = np.zeros_like(gt_all)
            eq_blk = np.zeros((i1 - i0, r_max, codes.shape[0]), dtype=np.int64)

            b = i1 - i0
            parts = [(0, b)]
            if executor is not None and b >= 2 * n_threads:
                edges = np.linspace(0, b, n_threads + 1).astype(int)
                parts = list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
            jobs = [
                (
                    scores[r0:r1],
                    rel_s[r0:r1],
                    pad_blk[i0 + r0 : i0 + r1],
                    starts,
                    ends,
                    gt_all[r0:r1],
                    gt_own[r0:r1],
                    eq_blk[r0:r1],
                )
                for r0, r1 in parts
            ]
            if len(jobs) == 1:
                _count_greater(*jobs[0])
            else:
                # np.sort and torch release the GIL, so threads give real parallelism.
                list(executor.map(lambda job: _count_greater(*job), jobs))

            tie_all = np.zeros_like(gt_all)
            tie_own = np.zeros_like(gt_all)
            _break_ties(
                scores,
                rel_s,
                pad_pos[i0:i1],
                pad_blk[i0:i1],
                valid[i0:i1],
                eq_blk,
                starts,
                ends,
                perm,
                tie_all,
                tie_own,
            )

            out_pool[i0:i1] = 1 + gt_all + tie_all
            out_in[i0:i1] = 1 + gt_own + tie_own
    finally:
        if executor is not None:
            executor.shutdown()

    return RelevantRanks(in_lang=out_in[rq, col], pooled=out_pool[rq, col])


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
    q = _check_embeddings(query_emb, "query_emb", "query set")
    c = _check_embeddings(cand_emb, "cand_emb", "candidate pool")
    if q.shape[1] != c.shape[1]:
        raise ValueError(f"embedding dims differ: query_emb {q.shape}, cand_emb {c.shape}")
    ql = _check_lang(query_lang, q.shape[0], "query_lang", n_lang)
    cl = _check_lang(cand_lang, c.shape[0], "cand_lang", n_lang)
    indptr, indices = _check_relevant(rel_indptr, rel_indices, q.shape[0], c.shape[0], cl)

    ranks = _ranks_kernel(
        q,
        c,
        cl,
        indptr,
        indices,
        _check_chunk(chunk_size, c.shape[0]),
        n_threads or _default_threads(),
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
    rq = np.repeat(np.arange(nq), counts)
    rl = cand_lang[indices]
    rows = np.arange(nq)

    by_lang_ap = np.full((nq, n_lang), np.nan)
    by_lang_ap[rq, rl] = 1.0 / ranks.in_lang
    by_lang_r1 = np.full((nq, n_lang), np.nan)
    by_lang_r1[rq, rl] = (ranks.in_lang == 1).astype(np.float64)
    mono_ap = by_lang_ap[rows, query_lang].copy()
    mono_r1 = by_lang_r1[rows, query_lang].copy()
    by_lang_ap[rows, query_lang] = np.nan
    by_lang_r1[rows, query_lang] = np.nan

    # Full AP with every relevant retrieved: mean over k of k / r_(k), ranks ascending.
    r_max = int(counts.max())
    col = np.arange(indices.shape[0]) - indptr[rq]
    padded = np.full((nq, r_max), np.inf)
    padded[rq, col] = ranks.pooled
    padded.sort(axis=1)
    k = np.arange(1, r_max + 1, dtype=np.float64)
    multi_ap = (k / padded).sum(axis=1) / counts

    pooled = ranks.pooled
    recall10 = np.bincount(rq, weights=(pooled <= 10), minlength=nq) / counts
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
