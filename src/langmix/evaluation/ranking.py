"""The rank kernel: where every relevant candidate ranks, in its language and in the pool.

Every LAReQA number (:mod:`langmix.evaluation.metrics`) is a function of two ranks per
relevant candidate: among the candidates of its own language (mono/cross-lingual pools)
and among all candidates (the multilingual pool). Only those ranks are needed, not a full
ranking, so the kernel never materialises one:

1. The candidate columns are permuted so that each language is one contiguous block; a
   per-language pool is then a slice of the score row.
2. Scores are computed ``chunk_size`` queries at a time (float32 GEMM into one buffer).
3. Each block of a score row is sorted once; a binary search of each relevant score in it
   gives the number of strictly greater scores (and of equal ones) in that block. Summed
   over blocks this is the pooled count; the relevant's own block gives the in-language one.
4. Exact ties are rare, so only relevant scores that tie with another candidate pay for a
   rescan of the tied block, counting the tied candidates with a smaller index.

This keeps the total cost within a small factor of the ``Q @ C.T`` product itself and
independent of the relevant-set size. No evaluation library implements this protocol, and
handing a dense 13k x 13k run to ``pytrec_eval`` takes minutes and gigabytes of Python dicts.

Tie convention (exact, deterministic): candidates are ordered by score descending and,
among equal scores, by candidate index ascending. The rank of relevant candidate ``j``
with score ``s_j`` within a pool ``P`` is therefore::

    rank = 1 + #{i in P : s_i > s_j} + #{i in P : s_i == s_j and i < j}

Scores are the float32 dot products computed here; ranks are exact with respect to those
numbers (no epsilon), so duplicate sentences (identical embeddings) are ranked by index.

Example:
    >>> q = np.eye(2, dtype=np.float32)
    >>> c = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    >>> relevant_ranks(q, c, np.array([0, 0, 1]), np.array([0, 2, 3]), np.array([0, 2, 2]))
    RelevantRanks(in_lang=array([1, 1, 1]), pooled=array([1, 2, 2]))
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import torch

from langmix.evaluation.validation import check_embeddings, check_lang, check_relevant

__all__ = [
    "RelevantRanks",
    "default_threads",
    "rank_kernel",
    "relevant_ranks",
    "resolve_chunk_size",
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


def resolve_chunk_size(chunk_size: int | None, nc: int) -> int:
    """Queries per score chunk: ``chunk_size``, or by default as many as fit in 64 MiB.

    Example:
        >>> resolve_chunk_size(None, 13_000), resolve_chunk_size(8, 13_000)
        (1290, 8)
    """
    if chunk_size is None:
        return max(1, _CHUNK_BYTES // (4 * nc))
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return int(chunk_size)


def default_threads() -> int:
    """CPU cores this process may use (the default thread count of the per-block sorts).

    Example:
        >>> default_threads() >= 1
        True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


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
    q = check_embeddings(query_emb, "query_emb", "query set")
    c = check_embeddings(cand_emb, "cand_emb", "candidate pool")
    if q.shape[1] != c.shape[1]:
        raise ValueError(f"embedding dims differ: query_emb {q.shape}, cand_emb {c.shape}")
    cl = check_lang(cand_lang, c.shape[0], "cand_lang", None)
    indptr, indices = check_relevant(rel_indptr, rel_indices, q.shape[0], c.shape[0], cl)
    return rank_kernel(
        q,
        c,
        cl,
        indptr,
        indices,
        resolve_chunk_size(chunk_size, c.shape[0]),
        n_threads or default_threads(),
    )


def _count_above(
    scores: np.ndarray,
    rel_scores: np.ndarray,
    rel_block: np.ndarray,
    block_start: np.ndarray,
    block_end: np.ndarray,
    above_pool: np.ndarray,
    above_lang: np.ndarray,
    equal_in_block: np.ndarray,
) -> None:
    """Count scores above each relevant (pool, own block) and equal to it per block, in place."""
    # Sorting a block row once answers all relevant ranks of that row by binary search,
    # so the cost does not grow with the relevant-set size.
    rel_t = torch.from_numpy(rel_scores)
    for k in range(block_start.shape[0]):
        a, e = int(block_start[k]), int(block_end[k])
        block_sorted = torch.from_numpy(np.sort(scores[:, a:e], axis=1))
        # In an ascending row, the right and left insertion points of s are the numbers of
        # scores <= s and < s.
        n_at_most = torch.searchsorted(block_sorted, rel_t, right=True).numpy()
        n_below = torch.searchsorted(block_sorted, rel_t, right=False).numpy()
        n_above = (e - a) - n_at_most
        above_pool += n_above
        equal_in_block[:, :, k] = n_at_most - n_below
        own = rel_block == k
        above_lang[own] = n_above[own]


def _gemm_drifted(q: np.ndarray, c: np.ndarray, columns: np.ndarray, got: np.ndarray) -> bool:
    """True if GEMM scores ``got`` [b, R] for rows ``q[:b]`` x ``c[columns]`` are not float32."""
    b = columns.shape[0]
    pairs = c[columns]
    got = got[:b]
    direct = np.einsum("bd,brd->br", q[:b], pairs)
    # Worst-case float32 rounding of a length-d dot product is about d * eps * |q||c|;
    # bf16 inputs are off by orders of magnitude more.
    tol = 2.0 * max(q.shape[1], 16) * float(np.finfo(np.float32).eps)
    bound = tol * np.linalg.norm(q[:b], axis=1)[:, None] * np.linalg.norm(pairs, axis=2)
    return bool((np.abs(got - direct) > bound + 1e-30).any())


def _break_ties(
    scores: np.ndarray,
    rel_scores: np.ndarray,
    rel_column: np.ndarray,
    rel_block: np.ndarray,
    is_real: np.ndarray,
    equal_in_block: np.ndarray,
    block_start: np.ndarray,
    block_end: np.ndarray,
    column_cand: np.ndarray,
    tied_before_pool: np.ndarray,
    tied_before_lang: np.ndarray,
) -> None:
    """Count exact ties with a smaller candidate index (in place), block by block."""
    for k in range(block_start.shape[0]):
        a, e = int(block_start[k]), int(block_end[k])
        own = rel_block == k
        # A relevant candidate always ties with itself in its own block (own counts as 1
        # there); anything more is a genuine exact tie, which is rare, so only those
        # (query, relevant, block) triples pay for a scan, and only of that block.
        tied_row, tied_slot = np.nonzero(is_real & (equal_in_block[:, :, k] > own))
        for t0 in range(0, tied_row.shape[0], _TIE_BATCH):
            rows = tied_row[t0 : t0 + _TIE_BATCH]
            slots = tied_slot[t0 : t0 + _TIE_BATCH]
            rel_cand = column_cand[rel_column[rows, slots]]
            # Every equal score of the block as (pair of this batch, column in the block);
            # those whose candidate index is smaller than the relevant's rank above it.
            pair, offset = np.nonzero(scores[rows, a:e] == rel_scores[rows, slots][:, None])
            before = pair[column_cand[a + offset] < rel_cand[pair]]
            n_before = np.bincount(before, minlength=rows.shape[0])
            tied_before_pool[rows, slots] += n_before
            tied_before_lang[rows, slots] += np.where(own[rows, slots], n_before, 0)


def rank_kernel(
    q: np.ndarray,
    c: np.ndarray,
    cand_lang: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    chunk_size: int,
    n_threads: int,
) -> RelevantRanks:
    """:func:`relevant_ranks` on inputs already checked (:mod:`langmix.evaluation.validation`).

    Args:
        q: ``[nq, d]`` float32 query embeddings, C-contiguous.
        c: ``[nc, d]`` float32 candidate embeddings, C-contiguous.
        cand_lang: ``[nc]`` int64 language code of each candidate.
        indptr: ``[nq + 1]`` int64 CSR row pointer of the relevant sets (none empty).
        indices: int64 relevant candidate indices, at most one per language per query.
        chunk_size: Queries per score chunk (:func:`resolve_chunk_size`).
        n_threads: Threads for the per-block sorts.

    Returns:
        ``RelevantRanks(in_lang, pooled)``, aligned with ``indices``.

    Example:
        >>> q, c = np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32)
        >>> rank_kernel(q, c, np.array([0, 1]), np.array([0, 1, 2]), np.array([1, 1]), 2, 1)
        RelevantRanks(in_lang=array([1, 1]), pooled=array([2, 1]))
    """
    nq, nc = q.shape[0], c.shape[0]
    # Make each language a contiguous column block so a per-language pool is a slice;
    # the stable sort keeps index order inside a block, which the tie rule relies on.
    column_cand = np.argsort(cand_lang, kind="stable")  # candidate index of each column
    cand_column = np.empty(nc, dtype=np.int64)  # and back: column of each candidate
    cand_column[column_cand] = np.arange(nc)
    column_lang = cand_lang[column_cand]
    block_lang, block_start = np.unique(column_lang, return_index=True)
    block_end = np.append(block_start[1:], nc)
    # The GEMM goes through torch, not numpy: numpy's OpenBLAS threads keep spinning
    # after each product and starve the sort threads (measured 2x slower end to end),
    # whereas torch's own pool cooperates with them.
    cand_sorted = np.ascontiguousarray(c[column_cand])
    cand_sorted_t = torch.from_numpy(cand_sorted).T
    query_t = torch.from_numpy(q if q.flags.writeable else q.copy())
    use_torch = True

    # The ragged CSR relevant sets become [nq, max_rel] tables, so every step below is one
    # array operation over a whole chunk; CSR entry i sits at (rel_query[i], rel_slot[i]).
    n_rel = np.diff(indptr)
    max_rel = int(n_rel.max())
    rel_query = np.repeat(np.arange(nq), n_rel)
    rel_slot = np.arange(indices.shape[0]) - indptr[rel_query]
    # Pad short relevant sets with a copy of their first entry; padded slots are
    # computed like the rest and dropped when scattering back.
    rel_column = np.repeat(cand_column[indices[indptr[:-1]]][:, None], max_rel, axis=1)
    rel_column[rel_query, rel_slot] = cand_column[indices]
    rel_block = np.searchsorted(block_lang, column_lang[rel_column])
    is_real = np.zeros((nq, max_rel), dtype=bool)
    is_real[rel_query, rel_slot] = True

    rank_in_lang = np.empty((nq, max_rel), dtype=np.int64)
    rank_pooled = np.empty((nq, max_rel), dtype=np.int64)
    score_buf = np.empty((min(chunk_size, nq), nc), dtype=np.float32)
    score_buf_t = torch.from_numpy(score_buf)  # shares memory: the GEMM writes into score_buf

    executor = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
    try:
        for q0 in range(0, nq, chunk_size):
            q1 = min(q0 + chunk_size, nq)
            n_rows = q1 - q0
            scores = score_buf[:n_rows]
            if use_torch:
                torch.matmul(query_t[q0:q1], cand_sorted_t, out=score_buf_t[:n_rows])
            else:
                np.matmul(q[q0:q1], cand_sorted.T, out=scores)
            rel_scores = np.ascontiguousarray(np.take_along_axis(scores, rel_column[q0:q1], axis=1))
            # torch.set_float32_matmul_precision("medium") (common in training code)
            # makes CPU matmuls run in bf16; check the first chunk's relevant scores
            # against a plain float32 dot product and fall back to numpy's GEMM if they
            # drifted (the setting cannot change mid-call, so one chunk is enough).
            n_check = min(q1, 256)  # bounds the [n, R, d] gather of the check
            if (
                use_torch
                and q0 == 0
                and _gemm_drifted(q, cand_sorted, rel_column[:n_check], rel_scores)
            ):
                warnings.warn(
                    "torch float32 matmul runs at reduced precision "
                    f"(float32_matmul_precision={torch.get_float32_matmul_precision()!r}); "
                    "LAReQA scores fall back to numpy's float32 GEMM (slower)",
                    RuntimeWarning,
                    stacklevel=3,
                )
                use_torch = False
                np.matmul(q[q0:q1], cand_sorted.T, out=scores)
                rel_scores = np.ascontiguousarray(
                    np.take_along_axis(scores, rel_column[q0:q1], axis=1)
                )
            above_pool = np.zeros((n_rows, max_rel), dtype=np.int64)
            above_lang = np.zeros_like(above_pool)
            equal_in_block = np.zeros((n_rows, max_rel, block_lang.shape[0]), dtype=np.int64)

            parts = [(0, n_rows)]
            if executor is not None and n_rows >= 2 * n_threads:
                edges = np.linspace(0, n_rows, n_threads + 1).astype(int)
                parts = list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
            jobs = [
                (
                    scores[r0:r1],
                    rel_scores[r0:r1],
                    rel_block[q0 + r0 : q0 + r1],
                    block_start,
                    block_end,
                    above_pool[r0:r1],
                    above_lang[r0:r1],
                    equal_in_block[r0:r1],
                )
                for r0, r1 in parts
            ]
            if len(jobs) == 1:
                _count_above(*jobs[0])
            else:
                # np.sort and torch release the GIL, so threads give real parallelism.
                list(executor.map(lambda job: _count_above(*job), jobs))

            tied_before_pool = np.zeros_like(above_pool)
            tied_before_lang = np.zeros_like(above_pool)
            _break_ties(
                scores,
                rel_scores,
                rel_column[q0:q1],
                rel_block[q0:q1],
                is_real[q0:q1],
                equal_in_block,
                block_start,
                block_end,
                column_cand,
                tied_before_pool,
                tied_before_lang,
            )

            rank_pooled[q0:q1] = 1 + above_pool + tied_before_pool
            rank_in_lang[q0:q1] = 1 + above_lang + tied_before_lang
    finally:
        if executor is not None:
            executor.shutdown()

    return RelevantRanks(
        in_lang=rank_in_lang[rel_query, rel_slot], pooled=rank_pooled[rel_query, rel_slot]
    )
