"""trec_eval-compatible metrics for top-k runs (MIRACL: nDCG@10, Recall@100, MAP@100).

Why this is hand-written: ``pytrec_eval`` is the reference and is used in the tests, but
it is a compiled extension that wants nested dicts of every (query, doc) score. A dense
retriever produces ``[nq, k]`` arrays; converting them to dicts and back dominates the
evaluation time, and the published numbers depend on trec_eval's exact conventions, which
are easy to get subtly wrong. This module reproduces those conventions on arrays:

* **Ordering**: by score descending; equal scores by docid *descending* (trec_eval sorts
  with ``strcmp(b.docno, a.docno)``, i.e. byte order on UTF-8, which equals Python's
  code-point order). The rank column of a run file is ignored, as in trec_eval.
* **Queries**: only queries present in the run *and* with at least one judgment in the
  qrels are evaluated; the mean is over those queries. A query present in the run with
  no retrieved documents still counts (all measures 0), as in ``pytrec_eval`` (a run
  *file* cannot express such a query, so trec_eval never sees it).
* **Relevance**: a judged grade ``>= 1`` is relevant; 0 and negative grades and unjudged
  documents are non-relevant. nDCG uses the grade itself as gain (grades ``<= 0`` give
  0) with a ``log2(rank + 1)`` discount, and the ideal ranking is built from all
  positive judgments of the query. Measures with no relevant documents are 0.

Supported measure names follow trec_eval / pytrec_eval: ``ndcg_cut_K``, ``ndcg``,
``recall_K``, ``map_cut_K``, ``map``, ``P_K``, ``recip_rank``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_METRICS",
    "Qrels",
    "Run",
    "TopKRun",
    "TrecFormatError",
    "evaluate_trec",
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


def _parse_measures(measures: Iterable[str]) -> list[tuple[str, str, int | None]]:
    if isinstance(measures, str):
        measures = [measures]
    parsed = []
    for name in measures:
        m = _MEASURE_RE.match(name)
        if m is None:
            raise ValueError(
                f"unsupported measure {name!r}; expected ndcg_cut_K, ndcg, recall_K, "
                "map_cut_K, map, P_K or recip_rank"
            )
        if m.group(3):
            parsed.append((name, m.group(3), None))
        else:
            parsed.append((name, m.group(1), int(m.group(2))))
    if not parsed:
        raise ValueError("no measures requested")
    return parsed


class _Ranked:
    """Relevance grades in trec_eval rank order, padded to a rectangle."""

    def __init__(self, qids: list[str], grades: np.ndarray, ideal: np.ndarray) -> None:
        self.qids = qids
        self.grades = grades  # [nq, k] int64 grade at each rank, 0 for padding
        self.ideal = ideal  # [nq, g] positive grades sorted descending, 0-padded
        self.num_rel = (ideal > 0).sum(axis=1)


def _rank(qrels: Qrels, run: Run | TopKRun) -> _Ranked:
    # Flatten the run to rectangular arrays; padding gets score -inf so it sorts last.
    if isinstance(run, TopKRun):
        docids, scores, mask = _check_topk(run)
        run_qids = [str(q) for q in run.qids]
        keep = [i for i, q in enumerate(run_qids) if qrels.get(q)]
        qids = [run_qids[i] for i in keep]
        docs = docids[keep].astype(str)
        sc = scores[keep]
        valid = mask[keep]
    else:
        qids = [q for q in run if qrels.get(q)]
        k = max((len(run[q]) for q in qids), default=0)
        docs = np.full((len(qids), k), "", dtype=object)
        sc = np.full((len(qids), k), -np.inf)
        valid = np.zeros((len(qids), k), bool)
        for i, q in enumerate(qids):
            row = run[q]
            n = len(row)
            docs[i, :n] = [str(d) for d in row]
            sc[i, :n] = np.fromiter(row.values(), dtype=np.float64, count=n)
            valid[i, :n] = True
        docs = docs.astype(str) if docs.size else np.zeros(docs.shape, dtype="<U1")
    if not np.isfinite(sc[valid]).all():
        raise ValueError("run has NaN or infinite scores; trec_eval ordering is undefined")
    sc = np.where(valid, sc, -np.inf)
    nq, k = docs.shape

    # One integer code per docid, increasing in code-point (= strcmp on UTF-8) order.
    judged = [(i, str(d), int(g)) for i, q in enumerate(qids) for d, g in qrels[q].items()]
    j_docs = np.array([d for _, d, _ in judged], dtype=str)
    universe, codes = np.unique(
        np.concatenate([docs.reshape(-1), j_docs]) if judged else docs.reshape(-1),
        return_inverse=True,
    )
    run_codes = codes[: nq * k].reshape(nq, k)
    if nq and k:
        dup_check = np.sort(np.where(valid, run_codes, -1 - np.arange(k)), axis=1)
        dup = np.flatnonzero((np.diff(dup_check, axis=1) == 0).any(axis=1))
        if dup.size:
            raise ValueError(f"run lists a document twice for query {qids[dup[0]]!r}")

    # Primary key score descending, secondary docid descending (trec_eval's tie rule).
    order = np.lexsort((-run_codes, -sc), axis=-1)
    run_codes = np.take_along_axis(run_codes, order, axis=1)
    valid = np.take_along_axis(valid, order, axis=1)

    grades = np.zeros((nq, k), dtype=np.int64)
    ideal = np.zeros((nq, 1), dtype=np.int64)
    if judged:
        j_q = np.array([i for i, _, _ in judged], dtype=np.int64)
        j_g = np.array([g for _, _, g in judged], dtype=np.int64)
        j_key = j_q * len(universe) + codes[nq * k :]
        srt = np.argsort(j_key)
        j_key, j_g_sorted = j_key[srt], j_g[srt]
        r_key = np.arange(nq)[:, None] * len(universe) + run_codes
        hit = np.searchsorted(j_key, r_key).clip(max=len(j_key) - 1)
        found = (j_key[hit] == r_key) & valid
        grades = np.where(found, j_g_sorted[hit], 0)
        # Ideal ranking: each query's positive grades, descending, left-aligned.
        pos = j_g > 0
        p_q, p_g = j_q[pos], j_g[pos]
        srt = np.lexsort((-p_g, p_q))
        p_q, p_g = p_q[srt], p_g[srt]
        per_q = np.bincount(p_q, minlength=nq)
        ideal = np.zeros((nq, max(1, int(per_q.max(initial=0)))), dtype=np.int64)
        ideal[p_q, np.arange(p_q.size) - np.repeat(np.cumsum(per_q) - per_q, per_q)] = p_g
    return _Ranked(qids, grades, ideal)


def _dcg(gains: np.ndarray) -> np.ndarray:
    disc = 1.0 / np.log2(np.arange(2, gains.shape[1] + 2, dtype=np.float64))
    return (np.maximum(gains, 0) * disc).sum(axis=1)


def _measure(r: _Ranked, kind: str, cut: int | None) -> np.ndarray:
    nq, k = r.grades.shape
    rel = r.grades >= 1
    num_rel = r.num_rel.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind in ("ndcg_cut", "ndcg"):
            c = k if cut is None else cut
            ideal_c = r.ideal if cut is None else r.ideal[:, :cut]
            dcg, idcg = _dcg(r.grades[:, :c]), _dcg(ideal_c)
            return np.where(idcg > 0, dcg / idcg, 0.0)
        if kind == "P":
            return rel[:, :cut].sum(axis=1) / float(cut)
        if kind == "recall":
            return np.where(num_rel > 0, rel[:, :cut].sum(axis=1) / num_rel, 0.0)
        if kind in ("map_cut", "map"):
            c = k if cut is None else cut
            hits = rel[:, :c]
            prec = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
            return np.where(num_rel > 0, (prec * hits).sum(axis=1) / num_rel, 0.0)
        if kind == "recip_rank":
            first = np.argmax(rel, axis=1) if k else np.zeros(nq, dtype=np.int64)
            has = rel.any(axis=1) if k else np.zeros(nq, bool)
            return np.where(has, 1.0 / (first + 1), 0.0)
    raise AssertionError(kind)  # pragma: no cover - guarded by _parse_measures


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
    parsed = _parse_measures(metrics)
    ranked = _rank(qrels, run)
    values = {name: _measure(ranked, kind, cut) for name, kind, cut in parsed}
    mean = {name: float(values[name].mean()) if ranked.qids else math.nan for name, _, _ in parsed}
    per_query = {
        q: {name: float(values[name][i]) for name, _, _ in parsed}
        for i, q in enumerate(ranked.qids)
    }
    return mean, per_query


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
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)


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
