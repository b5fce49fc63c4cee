"""The LAReQA protocol run end to end: encode a pool once, score it, write the metrics.

The metric kernels (:mod:`langmix.evaluation.metrics`) work on arrays; this module turns a
:class:`~langmix.data.LareqaDataset` and a model into those arrays, encoding every question
and every candidate exactly once. Monolingual, cross-lingual and multilingual settings are
all read off the same query-by-candidate scores, so they can never disagree about what the
model produced.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from langmix.data import LareqaDataset
from langmix.data.pairs import article_groups
from langmix.evaluation.encoding import PASSAGE, QUERY, EmbeddingCache, encode
from langmix.evaluation.metrics import LareqaResult, evaluate_lareqa
from langmix.evaluation.trec import TopKRun, write_qrels, write_run
from langmix.outputs import atomic_path, write_json_atomic

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@dataclass
class LareqaEmbeddings:
    """The vectors that were scored, with the ids they belong to."""

    query_emb: np.ndarray
    cand_emb: np.ndarray
    query_ids: list[str]
    cand_ids: list[str]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``embeddings.npz`` (float32 vectors, id arrays) atomically."""
        with atomic_path(path) as tmp:
            np.savez(
                tmp,
                query_emb=self.query_emb,
                cand_emb=self.cand_emb,
                query_ids=np.asarray(self.query_ids),
                cand_ids=np.asarray(self.cand_ids),
            )


def encode_lareqa(
    model: SentenceTransformer,
    dataset: LareqaDataset,
    *,
    batch_size: int = 64,
    query_max_length: int = 64,
    passage_max_length: int = 128,
    with_context: bool = True,
    cache: EmbeddingCache | None = None,
    show_progress: bool = True,
) -> LareqaEmbeddings:
    """Encode all questions (as queries) and candidates (as passages) of a dataset.

    Example:
        >>> emb = encode_lareqa(model, load_lareqa("xquad-r", "en,de"))  # doctest: +SKIP
        >>> emb.query_emb.shape  # doctest: +SKIP
        (2380, 384)
    """
    query_emb = encode(
        model,
        dataset.query_texts(),
        QUERY,
        batch_size=batch_size,
        max_seq_length=query_max_length,
        cache=cache,
        show_progress=show_progress,
    )
    cand_emb = encode(
        model,
        dataset.passage_texts(with_context),
        PASSAGE,
        batch_size=batch_size,
        max_seq_length=passage_max_length,
        cache=cache,
        show_progress=show_progress,
    )
    return LareqaEmbeddings(
        query_emb,
        cand_emb,
        [q.id for q in dataset.queries],
        [c.id for c in dataset.candidates],
    )


def score_lareqa(dataset: LareqaDataset, embeddings: LareqaEmbeddings) -> LareqaResult:
    """All LAReQA metrics of a dataset from its embeddings.

    Raises:
        ValueError: If the embeddings do not line up with the dataset's ids.

    Example:
        >>> result = score_lareqa(dataset, embeddings)  # doctest: +SKIP
        >>> result.map["cross"]  # doctest: +SKIP
        0.61
    """
    if embeddings.query_ids != [q.id for q in dataset.queries] or embeddings.cand_ids != [
        c.id for c in dataset.candidates
    ]:
        raise ValueError("embeddings do not line up with the dataset's query and candidate ids")
    query_lang, cand_lang, indptr, indices = dataset.relevance_arrays()
    return evaluate_lareqa(
        embeddings.query_emb,
        embeddings.cand_emb,
        query_lang,
        cand_lang,
        indptr,
        indices,
        list(dataset.languages),
    )


#: Files of a LAReQA TREC run (``run_lareqa_eval(trec_depth=...)``).
TREC_RUN, TREC_QRELS = "run.trec", "qrels.trec"


def lareqa_trec(
    dataset: LareqaDataset, embeddings: LareqaEmbeddings, depth: int
) -> tuple[TopKRun, dict[str, dict[str, int]]]:
    """LAReQA's multilingual (pooled) setting as a TREC run and its qrels.

    Every query (qid ``{lang}/{question id}``) is ranked against the whole pool of every
    language (docid: the candidate id), by the cosine score the metrics use; relevant are its
    answer sentences in every language. With ``depth`` at least the pool size, trec_eval's
    ``map`` on the run is the per-query multilingual AP; a shallower run (``depth`` per query)
    is for rank fusion, re-ranking and significance tests in ranx or ir-measures.

    Example:
        >>> run, qrels = lareqa_trec(dataset, embeddings, depth=100)  # doctest: +SKIP
        >>> write_run("run.trec", run)  # doctest: +SKIP
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if embeddings.query_ids != [q.id for q in dataset.queries] or embeddings.cand_ids != [
        c.id for c in dataset.candidates
    ]:
        raise ValueError("embeddings do not line up with the dataset's query and candidate ids")
    cand_ids = np.asarray(embeddings.cand_ids)
    k = min(depth, cand_ids.size)
    top_ids, top_scores = [], []
    # 1024 queries at a time: a [1024, pool] float32 score block, not the whole matrix.
    for start in range(0, len(embeddings.query_ids), 1024):
        scores = embeddings.query_emb[start : start + 1024] @ embeddings.cand_emb.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else None
        if top is None:
            top = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        top_ids.append(cand_ids[top])
        top_scores.append(np.take_along_axis(scores, top, axis=1).astype(np.float64))
    run = TopKRun(embeddings.query_ids, np.concatenate(top_ids), np.concatenate(top_scores))
    qrels = {q.id: {c.id: 1 for c in dataset.relevant(q)} for q in dataset.queries}
    return run, qrels


def metrics_document(
    result: LareqaResult,
    dataset: LareqaDataset,
    model_name: str,
    **extra: Any,
) -> dict[str, Any]:
    """The ``metrics.json`` document: the contract other tools read.

    Keys: ``dataset``, ``model``, ``languages``, ``n_queries``, ``n_candidates``, ``map``
    {mono, cross, multi}, ``recall`` {mono@1, cross@1, multi@10}, ``rank_distance``,
    ``per_pair`` {"en-de": {map, recall@1, n_queries}}, ``per_language``, plus ``extra``.
    """
    document: dict[str, Any] = {
        "dataset": dataset.name,
        "model": model_name,
        "languages": list(dataset.languages),
        "n_queries": len(dataset.queries),
        "n_candidates": len(dataset.candidates),
    }
    document.update(result.to_dict())
    document.update(extra)
    return document


def run_lareqa_eval(
    model: SentenceTransformer,
    model_name: str,
    dataset: LareqaDataset,
    output_dir: str | os.PathLike[str],
    *,
    save_embeddings: bool = False,
    cache: EmbeddingCache | None = None,
    timing: dict[str, float] | None = None,
    trec_depth: int = 0,
    **encode_options: Any,
) -> dict[str, Any]:
    """Encode, score and write ``metrics.json`` (and ``embeddings.npz``) for one dataset;
    with ``trec_depth``, also the multilingual setting's top ``trec_depth`` candidates per
    query as ``run.trec`` and its ``qrels.trec`` (:func:`lareqa_trec`).

    Returns:
        The metrics document, with ``timing`` (seconds spent encoding and scoring).

    Example:
        >>> doc = run_lareqa_eval(model, "e5", ds, "runs/eval")  # doctest: +SKIP
    """
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    embeddings = encode_lareqa(model, dataset, cache=cache, **encode_options)
    encoded = time.perf_counter()
    result = score_lareqa(dataset, embeddings)
    scored = time.perf_counter()
    document = metrics_document(
        result,
        dataset,
        model_name,
        settings={k: v for k, v in encode_options.items() if k != "show_progress"},
        timing={
            "encode_s": round(encoded - started, 3),
            "metrics_s": round(scored - encoded, 3),
            **(timing or {}),
        },
    )
    write_json_atomic(output / "metrics.json", document)
    if save_embeddings:
        embeddings.save(output / "embeddings.npz")
    if trec_depth:
        run, qrels = lareqa_trec(dataset, embeddings, trec_depth)
        write_run(output / TREC_RUN, run, tag="langmix")
        write_qrels(output / TREC_QRELS, qrels)
    return document


def save_per_query(
    result: LareqaResult, dataset: LareqaDataset, path: str | os.PathLike[str]
) -> Path:
    """Write the per-query scores (the unit of the study's paired statistics) atomically.

    Arrays: ``languages``, ``query_ids``, ``parallel_ids``, ``article_groups`` and every :class:`LareqaPerQuery`
    field (``query_lang``, ``n_relevant``, ``mono_ap``, ``mono_recall1``, ``cross_ap``,
    ``cross_recall1``, ``multi_ap``, ``multi_recall10``, ``rank_distance``).

    Example:
        >>> save_per_query(result, dataset, "runs/x/per_query.npz")  # doctest: +SKIP
    """
    path = Path(path)
    per_query = result.per_query
    groups = article_groups(dataset)
    arrays = {
        "languages": np.asarray(per_query.languages),
        "query_ids": np.asarray([q.id for q in dataset.queries]),
        "parallel_ids": np.asarray([q.parallel_id for q in dataset.queries]),
        # The article group of each question (langmix.data.pairs.article_groups): the
        # clusters above questions, for article-level resampling.
        "article_groups": np.asarray([groups[q.parallel_id] for q in dataset.queries]),
    }
    for name in (
        "query_lang",
        "n_relevant",
        "mono_ap",
        "mono_recall1",
        "cross_ap",
        "cross_recall1",
        "multi_ap",
        "multi_recall10",
        "rank_distance",
    ):
        arrays[name] = np.asarray(getattr(per_query, name))
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return path
