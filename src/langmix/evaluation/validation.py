"""Checks on the arrays the LAReQA metrics take, with messages that name the bad input.

The rank kernel (:mod:`langmix.evaluation.ranking`) trusts its inputs: wrong dtypes, codes
or relevant sets would not fail there but give silently wrong ranks. Every public entry
point therefore passes its arguments through these checks first; each returns the array
in the form the kernel expects (contiguous float32, int64).

Example:
    >>> check_lang([0, 1, 1], 3, "cand_lang", n_lang=2).tolist()
    [0, 1, 1]
    >>> check_lang([0, 2], 2, "cand_lang", n_lang=2)
    Traceback (most recent call last):
        ...
    ValueError: cand_lang has language code 2 but only 2 languages are named
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "as_int_array",
    "check_embeddings",
    "check_lang",
    "check_relevant",
]


def as_int_array(x: Any, name: str, ndim: int = 1) -> np.ndarray:
    """``x`` as an int64 array of ``ndim`` dimensions; integer dtypes only, never rounded.

    Args:
        x: Array-like of integers.
        name: Argument name for the error message.
        ndim: Required number of dimensions.

    Returns:
        ``x`` as int64 (no copy if it already is).

    Raises:
        ValueError: Wrong number of dimensions.
        TypeError: A non-integer dtype.

    Example:
        >>> as_int_array(np.array([3, 1], dtype=np.int32), "rel_indices").dtype
        dtype('int64')
    """
    arr = np.asarray(x)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, got {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def check_embeddings(emb: Any, name: str, pool: str) -> np.ndarray:
    """Check a ``[n, d]`` float32 embedding matrix: non-empty and finite.

    Args:
        emb: The embeddings.
        name: Argument name for the error message.
        pool: What the rows are (``"query set"``, ``"candidate pool"``), for the message.

    Returns:
        ``emb`` as a C-contiguous array.

    Raises:
        TypeError: Not a numpy array, or not float32.
        ValueError: Not 2-D, no rows, or NaN/inf values.

    Example:
        >>> check_embeddings(np.zeros((0, 4), dtype=np.float32), "cand_emb", "candidate pool")
        Traceback (most recent call last):
            ...
        ValueError: cand_emb has no rows: the candidate pool is empty
    """
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


def check_lang(codes: Any, n: int, name: str, n_lang: int | None) -> np.ndarray:
    """Check ``n`` language codes: non-negative and, given ``n_lang``, below it.

    Args:
        codes: ``[n]`` integer language codes.
        n: Expected length (rows of the matching embeddings).
        name: Argument name for the error message.
        n_lang: Number of named languages, or ``None`` when the codes are not names.

    Returns:
        The codes as int64.

    Raises:
        ValueError: Wrong length, negative codes, or a code without a language name.
        TypeError: A non-integer dtype.

    Example:
        >>> check_lang(np.array([1, 0]), 2, "query_lang", None).tolist()
        [1, 0]
    """
    arr = as_int_array(codes, name)
    if arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]}, expected {n}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} has negative language codes")
    if n_lang is not None and arr.size and arr.max() >= n_lang:
        raise ValueError(
            f"{name} has language code {int(arr.max())} but only {n_lang} languages are named"
        )
    return arr


def check_relevant(
    indptr: Any, indices: Any, nq: int, nc: int, cand_lang: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Check the CSR relevant sets: one non-empty set per query, at most one per language.

    Args:
        indptr: ``[nq + 1]`` CSR row pointer.
        indices: Relevant candidate indices (CSR column indices).
        nq: Number of queries.
        nc: Number of candidates.
        cand_lang: ``[nc]`` checked language code of each candidate.

    Returns:
        ``(indptr, indices)`` as int64.

    Raises:
        ValueError: A malformed row pointer, a query without relevant candidates, or two
            relevant candidates of one query in the same language.
        IndexError: A candidate index outside ``[0, nc)``.
        TypeError: A non-integer dtype.

    Example:
        >>> check_relevant([0, 2], [0, 1], 1, 3, np.array([0, 0, 1]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: query 0 has two relevant candidates (0 and 1) in language code 0; ...
    """
    indptr = as_int_array(indptr, "rel_indptr")
    indices = as_int_array(indices, "rel_indices")
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
    # Each relevant entry gets the key (query, language) as one integer; after a sort, two
    # equal neighbours are two relevant candidates of one query in one language.
    rel_query = np.repeat(np.arange(nq, dtype=np.int64), counts)
    key = rel_query * (int(cand_lang.max()) + 1) + cand_lang[indices]
    order = np.argsort(key, kind="stable")
    dup = np.flatnonzero(np.diff(key[order]) == 0)
    if dup.size:
        a, b = indices[order[dup[0]]], indices[order[dup[0] + 1]]
        q = int(rel_query[order[dup[0]]])
        raise ValueError(
            f"query {q} has two relevant candidates ({int(a)} and {int(b)}) in language "
            f"code {int(cand_lang[a])}; LAReQA allows at most one per language"
        )
    return indptr, indices
