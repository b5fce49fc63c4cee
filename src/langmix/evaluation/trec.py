"""trec_eval measures for top-k runs (MIRACL: nDCG@10, Recall@100, MAP@100), via pytrec_eval.

The engine is ``pytrec_eval`` (trec_eval's own C code), so the published numbers follow
trec_eval's conventions by construction rather than by a re-implementation that could drift.
This module adds what a dense retriever needs around it:

* **Arrays in**: a :class:`TopKRun` (``[nq, k]`` docids and scores, optional padding mask) is
  accepted as well as trec_eval's nested dicts.
* **Checks** trec_eval does not make: a non-finite score (its ordering is undefined) or a
  document listed twice for one query (a dict would silently keep one) is an error, and
  measure names are limited to the set below (pytrec_eval would compute anything it knows).
* **Queries**: only queries present in the run *and* with at least one judgment in the
  qrels are evaluated; the mean is over those queries (NaN when there are none). A query
  present in the run with no retrieved documents still counts (all measures 0), as in
  ``pytrec_eval`` (a run *file* cannot express such a query, so trec_eval never sees it).
* **Coverage**: :func:`judged_relevant_coverage` says how many judged-relevant documents a
  corpus holds at all; a missing one caps recall for every retriever alike.

The conventions pytrec_eval applies, for reading the numbers: ranking by score descending,
equal scores by docid *descending* (``strcmp``), the rank column of a run file ignored; a grade
``>= 1`` is relevant; nDCG uses the grade as gain with a ``log2(rank + 1)`` discount and an
ideal ranking from all positive judgments of the query; measures with no relevant documents
are 0.

Supported measure names follow trec_eval / pytrec_eval: ``ndcg_cut_K``, ``ndcg``,
``recall_K``, ``map_cut_K``, ``map``, ``P_K``, ``recip_rank``.
"""

from __future__ import annotations

import math
import os
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytrec_eval

from langmix.outputs import write_text_atomic

__all__ = [
    "DEFAULT_METRICS",
    "Qrels",
    "Run",
    "TopKRun",
    "TrecFormatError",
    "combine_coverage",
    "evaluate_trec",
    "judged_relevant_coverage",
    "read_run",
    "write_run",
]

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]

DEFAULT_METRICS: tuple[str, ...] = ("ndcg_cut_10", "recall_100", "map_cut_100")

_MEASURE_RE = re.compile(r"^(ndcg_cut|recall|map_cut|P)_([1-9][0-9]*)$|^(ndcg|map|recip_rank)$")


class TrecFormatError(ValueError):
    """A malformed line in a TREC run or qrels file (message names file and line)."""


@dataclass(frozen=True)
class TopKRun:
    """A run as arrays, the natural output of a dense retriever's top-k search.

    Attributes:
        qids: ``nq`` query ids.
        docids: ``[nq, k]`` document ids (converted with ``str``); entries where ``mask``
            is False are padding (fewer than ``k`` hits).
        scores: ``[nq, k]`` scores; any order within a row (ranking is recomputed).
        mask: Optional ``[nq, k]`` bool array of real hits; default all True.

    Example:
        >>> run = TopKRun(["q1"], np.array([["d3", "d1"]]), np.array([[0.9, 0.2]]))
        >>> evaluate_trec({"q1": {"d1": 1}}, run, ["recall_100"])[0]
        {'recall_100': 1.0}
    """

    qids: Sequence[str]
    docids: np.ndarray
    scores: np.ndarray
    mask: np.ndarray | None = None

    def to_dict(self) -> dict[str, dict[str, float]]:
        """Convert to the nested-dict form ``{qid: {docid: score}}``.

        Returns:
            The run as a dict; padding entries are dropped.

        Example:
            >>> TopKRun(["q"], np.array([["a"]]), np.array([[1.0]])).to_dict()
            {'q': {'a': 1.0}}
        """
        docids, scores, mask = _check_topk(self)
        out: dict[str, dict[str, float]] = {}
        for i, qid in enumerate(self.qids):
            row = out.setdefault(str(qid), {})
            for d, s, m in zip(docids[i], scores[i], mask[i], strict=True):
                if m:
                    row[str(d)] = float(s)
        return out


def _check_topk(run: TopKRun) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    docids = np.asarray(run.docids)
    scores = np.asarray(run.scores, dtype=np.float64)
    nq = len(run.qids)
    if docids.ndim != 2 or docids.shape[0] != nq:
        raise ValueError(f"TopKRun.docids must be [nq={nq}, k], got shape {docids.shape}")
    if scores.shape != docids.shape:
        raise ValueError(f"TopKRun.scores shape {scores.shape} != docids shape {docids.shape}")
    mask = np.ones(docids.shape, bool) if run.mask is None else np.asarray(run.mask, bool)
    if mask.shape != docids.shape:
        raise ValueError(f"TopKRun.mask shape {mask.shape} != docids shape {docids.shape}")
    if len(set(map(str, run.qids))) != nq:
        raise ValueError("TopKRun.qids has duplicate query ids")
    return docids, scores, mask


def _measure_names(measures: Iterable[str]) -> list[str]:
    """The requested names, each checked against the supported set (pytrec_eval takes them
    as they are)."""
    names = [measures] if isinstance(measures, str) else list(measures)
    for name in names:
        if _MEASURE_RE.match(name) is None:
            raise ValueError(
                f"unsupported measure {name!r}; expected ndcg_cut_K, ndcg, recall_K, "
                "map_cut_K, map, P_K or recip_rank"
            )
    if not names:
        raise ValueError("no measures requested")
    return names


def _evaluated_run(
    qrels: Qrels, run: Run | TopKRun
) -> dict[Any, tuple[Mapping[str, int], dict[str, float]]]:
    """The evaluated queries' judgments and rows (str docids, float scores, as pytrec_eval
    wants them), keyed by the run's own query ids in run order; rows checked as trec_eval
    does not."""
    rows: dict[Any, tuple[Mapping[str, int], dict[str, float]]] = {}
    if isinstance(run, TopKRun):
        docids, scores, mask = _check_topk(run)
        for i, qid in enumerate(map(str, run.qids)):
            if not qrels.get(qid):
                continue
            keep = mask[i]
            row = dict(zip(map(str, docids[i][keep]), scores[i][keep].tolist(), strict=True))
            if len(row) != int(keep.sum()):
                raise ValueError(f"run lists a document twice for query {qid!r}")
            rows[qid] = (qrels[qid], row)
    else:
        for qid, docs in run.items():
            if qrels.get(qid):
                rows[qid] = (qrels[qid], {str(d): float(s) for d, s in docs.items()})
    for qid, (_, row) in rows.items():
        if not all(map(math.isfinite, row.values())):
            raise ValueError(
                f"run has NaN or infinite scores (query {qid!r}); trec_eval ordering is undefined"
            )
    return rows


def evaluate_trec(
    qrels: Qrels,
    run: Run | TopKRun,
    metrics: Iterable[str] = DEFAULT_METRICS,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """trec_eval measures: the mean over evaluated queries and the per-query values.

    The mean is trec_eval's ``all`` line; the per-query dict has ``pytrec_eval``'s shape,
    ready for paired significance tests.

    Args:
        qrels: ``{qid: {docid: grade}}``; grade ``>= 1`` is relevant.
        run: ``{qid: {docid: score}}`` or a ``TopKRun``.
        metrics: trec_eval measure names; default nDCG@10, Recall@100, MAP@100.

    Returns:
        ``(mean, per_query)``: ``{measure: mean}`` (NaN for every measure when no query
        is evaluated) and ``{qid: {measure: value}}`` in run order.

    Raises:
        ValueError: Unsupported measure, non-finite score, or a document listed twice.

    Example:
        >>> qrels = {"q1": {"d1": 2, "d2": 0}, "q2": {"d9": 1}}
        >>> run = {"q1": {"d1": 0.5, "d2": 0.9}, "q2": {"d3": 0.3}}
        >>> mean, per_query = evaluate_trec(qrels, run, ["recall_100", "P_1"])
        >>> mean
        {'recall_100': 0.5, 'P_1': 0.0}
        >>> per_query["q1"]
        {'recall_100': 1.0, 'P_1': 0.0}
    """
    names = _measure_names(metrics)
    rows = _evaluated_run(qrels, run)
    if not rows:
        return dict.fromkeys(names, math.nan), {}
    # A query that retrieved nothing scores 0 on every supported measure; it is kept out of
    # pytrec_eval, whose versions differ on whether they report such a query at all.
    ranked = {str(q): (judged, row) for q, (judged, row) in rows.items() if row}
    result: dict[str, dict[str, float]] = {}
    if ranked:
        evaluator = pytrec_eval.RelevanceEvaluator(
            {q: {str(d): int(g) for d, g in judged.items()} for q, (judged, _) in ranked.items()},
            set(names),
        )
        result = evaluator.evaluate({q: row for q, (_, row) in ranked.items()})
    zeros = dict.fromkeys(names, 0.0)
    per_query = {
        q: {name: float(result[str(q)][name]) for name in names} if row else dict(zeros)
        for q, (_, row) in rows.items()
    }
    mean = {name: statistics.fmean(v[name] for v in per_query.values()) for name in names}
    return mean, per_query


def judged_relevant_coverage(qrels: Qrels, docids: Iterable[str]) -> dict[str, Any]:
    """How many judged-relevant (query, document) pairs have their document in a corpus.

    A relevant document the corpus lacks can never be retrieved, so it caps Recall@100 and
    nDCG@10 for every model alike; a share below 1 usually means a partial or mismatched
    corpus file rather than a weak retriever.

    Args:
        qrels: ``{qid: {docid: grade}}``; grade ``>= 1`` is relevant.
        docids: The corpus's document ids.

    Returns:
        ``{"judged_relevant": n, "in_corpus": m, "share": m / n}`` (``share`` is ``None``
        when nothing is judged relevant).

    Example:
        >>> judged_relevant_coverage({"q1": {"a": 1, "b": 1, "c": 0}}, ["a", "c"])
        {'judged_relevant': 2, 'in_corpus': 1, 'share': 0.5}
    """
    corpus = docids if isinstance(docids, (set, frozenset, dict)) else set(docids)
    relevant = [d for judged in qrels.values() for d, g in judged.items() if g >= 1]
    found = sum(1 for d in relevant if d in corpus)
    return _coverage(len(relevant), found)


def combine_coverage(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Pool :func:`judged_relevant_coverage` results (e.g. of several languages).

    Example:
        >>> combine_coverage([{"judged_relevant": 3, "in_corpus": 3},
        ...                   {"judged_relevant": 1, "in_corpus": 0}])
        {'judged_relevant': 4, 'in_corpus': 3, 'share': 0.75}
    """
    parts = list(parts)
    return _coverage(
        sum(int(p["judged_relevant"]) for p in parts), sum(int(p["in_corpus"]) for p in parts)
    )


def _coverage(judged: int, found: int) -> dict[str, Any]:
    return {
        "judged_relevant": judged,
        "in_corpus": found,
        "share": found / judged if judged else None,
    }


# ------------------------------------------------------------------------------ files


def _ranked_rows(run: Run | TopKRun) -> Iterable[tuple[str, list[tuple[str, float]]]]:
    items = run.to_dict() if isinstance(run, TopKRun) else run
    for qid, docs in items.items():
        # Docid descending first, then a stable sort on score: trec_eval's order.
        row = sorted(((str(d), float(s)) for d, s in docs.items()), reverse=True)
        row.sort(key=lambda x: x[1], reverse=True)
        yield str(qid), row


def write_run(
    path: str | os.PathLike[str],
    run: Run | TopKRun,
    tag: str = "langmix",
) -> None:
    """Write a run as ``qid Q0 docid rank score tag`` lines in trec_eval rank order.

    Scores are written with ``repr`` so they round-trip exactly and ties survive.

    Args:
        path: Output file.
        run: ``{qid: {docid: score}}`` or a ``TopKRun``.
        tag: Run tag (no whitespace).

    Raises:
        ValueError: Whitespace in a qid, docid or tag, or a non-finite score.

    Example:
        >>> write_run("run.trec", {"q1": {"d1": 0.5}}, tag="e5")  # doctest: +SKIP
    """
    if not tag or any(ch.isspace() for ch in tag):
        raise ValueError(f"run tag must be non-empty without whitespace, got {tag!r}")
    lines = []
    for qid, row in _ranked_rows(run):
        for rank, (doc, score) in enumerate(row, start=1):
            if not math.isfinite(score):
                raise ValueError(f"non-finite score for query {qid!r}, doc {doc!r}")
            for field_name, value in (("qid", qid), ("docid", doc)):
                if not value or any(ch.isspace() for ch in value):
                    raise ValueError(f"{field_name} {value!r} is empty or has whitespace")
            lines.append(f"{qid} Q0 {doc} {rank} {score!r} {tag}\n")
    write_text_atomic(path, "".join(lines))


def write_qrels(path: str | os.PathLike[str], qrels: Qrels) -> None:
    """Write relevance judgements as trec_eval ``qid 0 docid grade`` lines (atomic).

    Example:
        >>> write_qrels("qrels.trec", {"q1": {"d1": 1}})  # doctest: +SKIP
    """
    lines = []
    for qid, judged in qrels.items():
        for doc, grade in judged.items():
            for field_name, value in (("qid", qid), ("docid", doc)):
                if not value or any(ch.isspace() for ch in value):
                    raise ValueError(f"{field_name} {value!r} is empty or has whitespace")
            lines.append(f"{qid} 0 {doc} {int(grade)}\n")
    write_text_atomic(path, "".join(lines))


def read_run(path: str | os.PathLike[str]) -> dict[str, dict[str, float]]:
    """Read a ``qid Q0 docid rank score tag`` run file (blank lines are skipped).

    Args:
        path: Run file.

    Returns:
        ``{qid: {docid: score}}``.

    Raises:
        TrecFormatError: Wrong field count, non-integer rank, non-numeric or non-finite
            score, or a document repeated for a query; the message names file and line.

    Example:
        >>> run = read_run("run.trec")  # doctest: +SKIP
    """
    run: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{os.fspath(path)}:{lineno}"
            if len(fields) != 6:
                raise TrecFormatError(
                    f"{where}: expected 6 fields 'qid Q0 docid rank score tag', "
                    f"got {len(fields)}: {line.rstrip()!r}"
                )
            qid, _, doc, rank, score_s, _ = fields
            try:
                int(rank)
            except ValueError:
                raise TrecFormatError(f"{where}: rank {rank!r} is not an integer") from None
            try:
                score = float(score_s)
            except ValueError:
                raise TrecFormatError(f"{where}: score {score_s!r} is not a number") from None
            if not math.isfinite(score):
                raise TrecFormatError(f"{where}: score {score_s!r} is not finite")
            row = run.setdefault(qid, {})
            if doc in row:
                raise TrecFormatError(f"{where}: document {doc!r} repeated for query {qid!r}")
            row[doc] = score
    return run
