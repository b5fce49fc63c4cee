"""Top-k dense retrieval over a corpus with faiss, and the MIRACL evaluation built on it.

LAReQA pools (about 13k to 20k candidates) are scored exactly with matrix products; MIRACL
corpora run to millions of passages, where a full score matrix does not fit, so retrieval
goes through a faiss index and only the top ``k`` per query is kept, as in trec_eval runs.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from langmix.data.errors import DataUnavailableError
from langmix.data.miracl import MiraclLanguage
from langmix.evaluation.encoding import PASSAGE, QUERY, EmbeddingCache, encode
from langmix.evaluation.trec import evaluate_trec, judged_relevant_coverage, write_run
from langmix.outputs import write_json_atomic

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from langmix.evaluation.index import DenseIndex

MIRACL_METRICS = ("ndcg_cut_10", "recall_100", "map_cut_100")


class JudgedCoverageWarning(UserWarning):
    """Some judged-relevant MIRACL passages are missing from the corpus searched."""


def check_judged_coverage(data: MiraclLanguage, docids: Iterable[str]) -> dict[str, Any]:
    """Share of the language's judged-relevant passages present in a corpus; warn if not all.

    MIRACL scores are only comparable with published ones over the full corpus: a relevant
    passage the corpus lacks can never be retrieved, which lowers Recall@100 and nDCG@10 for
    any model. A partial corpus (a sample, a truncated download, another MIRACL version) is
    therefore reported, not refused.

    Args:
        data: Topics and qrels of one language.
        docids: Ids of the passages searched.

    Returns:
        :func:`~langmix.evaluation.trec.judged_relevant_coverage`'s
        ``{"judged_relevant", "in_corpus", "share"}``.

    Warns:
        JudgedCoverageWarning: If ``share`` is below 1, naming the language and the share.

    Example:
        >>> de = MiraclLanguage("de", "dev", {"q": "Wer?"}, {"q": {"d1": 1, "d2": 1}})
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     check_judged_coverage(de, ["d1", "d9"])
        {'judged_relevant': 2, 'in_corpus': 1, 'share': 0.5}
        >>> print(caught[0].message)  # doctest: +ELLIPSIS
        MIRACL de dev: 50.0% of judged-relevant passages (1 of 2) are in the corpus; ...
    """
    coverage = judged_relevant_coverage(data.qrels, docids)
    share = coverage["share"]
    if share is not None and share < 1:
        warnings.warn(
            f"MIRACL {data.language} {data.split}: {share:.1%} of judged-relevant passages "
            f"({coverage['in_corpus']} of {coverage['judged_relevant']}) are in the corpus; "
            "the missing ones cap Recall@100 and nDCG@10, so scores are not comparable with "
            "full-corpus results",
            JudgedCoverageWarning,
            stacklevel=3,
        )
    return coverage


@dataclass
class SearchArguments:
    """Arguments of ``langmix search``."""

    model: str = field(metadata={"help": "The model that encoded the indexed passages."})
    index: str = field(metadata={"help": "Index directory written by langmix index."})
    language: str = field(metadata={"help": "MIRACL language of the topics."})
    output_dir: str = field(metadata={"help": "Where run.trec and metrics.json go."})
    split: str = field(default="dev", metadata={"help": "MIRACL split (dev or train)."})
    data_dir: str | None = field(default=None, metadata={"help": "Local data directory."})
    top_k: int = field(default=100, metadata={"help": "Passages retrieved per topic."})
    nprobe: int = field(default=32, metadata={"help": "ivfpq: lists visited per query."})
    ef_search: int = field(default=128, metadata={"help": "hnsw: search list size."})
    batch_size: int = field(default=64, metadata={"help": "Query encoding batch size."})
    query_max_length: int = field(default=64, metadata={"help": "Query truncation (tokens)."})
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace results of other settings in output_dir (else refused)."},
    )


def search(
    query_emb: np.ndarray, passage_emb: np.ndarray, top_k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k search with a faiss flat index.

    Returns:
        ``(scores, indices)``, each ``[n_queries, min(top_k, n_passages)]``, best first.

    Example:
        >>> scores, idx = search(q, p, top_k=100)  # doctest: +SKIP
    """
    import faiss

    if query_emb.shape[1] != passage_emb.shape[1]:
        raise ValueError(
            f"query and passage dimensions differ: {query_emb.shape[1]} vs {passage_emb.shape[1]}"
        )
    index = faiss.IndexFlatIP(passage_emb.shape[1])
    index.add(np.ascontiguousarray(passage_emb, dtype=np.float32))
    k = min(top_k, passage_emb.shape[0])
    scores, indices = index.search(np.ascontiguousarray(query_emb, dtype=np.float32), k)
    return scores, indices


def run_miracl_eval(
    model: SentenceTransformer,
    model_name: str,
    data: MiraclLanguage,
    output_dir: str | os.PathLike[str],
    *,
    top_k: int = 100,
    batch_size: int = 64,
    query_max_length: int = 64,
    passage_max_length: int = 256,
    cache: EmbeddingCache | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Retrieve the top ``k`` passages for every judged topic and score them trec_eval-style.

    Writes ``run.trec`` and ``metrics.json`` (nDCG@10, Recall@100, MAP@100, per query too,
    and ``judged_relevant_coverage``: see :func:`check_judged_coverage`, which also warns when
    the corpus lacks judged-relevant passages).

    Raises:
        DataUnavailableError: If the language has no corpus loaded.

    Example:
        >>> de = load_miracl("de", corpus="miracl-de.jsonl")  # doctest: +SKIP
        >>> run_miracl_eval(model, "e5", de, "runs/miracl-de")  # doctest: +SKIP
    """
    if not data.corpus:
        raise DataUnavailableError(
            f"no MIRACL {data.language} corpus loaded: pass --corpus PATH (JSONL with docid, "
            "title, text) or download it online with langmix.data.miracl.download_corpus"
        )
    docids = [p.docid for p in data.corpus]
    # Before encoding, which can take hours: a partial corpus should be known at once.
    coverage = check_judged_coverage(data, docids)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    qids, query_emb = _encode_topics(
        model, data, batch_size, query_max_length, cache, show_progress
    )
    passage_emb = encode(
        model,
        [p.passage() for p in data.corpus],
        PASSAGE,
        batch_size=batch_size,
        max_seq_length=passage_max_length,
        cache=cache,
        show_progress=show_progress,
    )
    encoded = time.perf_counter()
    scores, indices = search(query_emb, passage_emb, top_k)
    found = [[docids[j] for j in row if j >= 0] for row in indices]
    return _score_miracl_run(
        data,
        model_name,
        qids,
        scores,
        found,
        output,
        top_k,
        coverage,
        len(docids),
        started,
        encoded,
    )


def _encode_topics(
    model: SentenceTransformer,
    data: MiraclLanguage,
    batch_size: int,
    max_length: int,
    cache: EmbeddingCache | None,
    show_progress: bool,
) -> tuple[list[str], np.ndarray]:
    """The judged topics' ids and query embeddings (topics without qrels are not scored)."""
    qids = [qid for qid in data.topics if qid in data.qrels]
    query_emb = encode(
        model,
        [data.topics[q] for q in qids],
        QUERY,
        batch_size=batch_size,
        max_seq_length=max_length,
        cache=cache,
        show_progress=show_progress,
    )
    return qids, query_emb


def _score_miracl_run(
    data: MiraclLanguage,
    model_name: str,
    qids: list[str],
    scores: np.ndarray,
    found: list[list[str]],
    output: Path,
    top_k: int,
    coverage: dict[str, Any],
    n_passages: int,
    started: float,
    encoded: float,
) -> dict[str, Any]:
    """Write ``run.trec`` and ``metrics.json`` for retrieved ``found`` docids per query."""
    run = {
        qid: {docid: float(s) for docid, s in zip(found[i], scores[i], strict=False)}
        for i, qid in enumerate(qids)
    }
    searched = time.perf_counter()
    summary, per_query = evaluate_trec(data.qrels, run, MIRACL_METRICS)
    write_run(output / "run.trec", run, tag=model_name.replace(" ", "_"))
    document = {
        "dataset": "miracl",
        "model": model_name,
        "language": data.language,
        "split": data.split,
        "n_queries": len(qids),
        "n_passages": n_passages,
        "top_k": top_k,
        "judged_relevant_coverage": coverage,
        "metrics": {
            "ndcg@10": summary["ndcg_cut_10"],
            "recall@100": summary["recall_100"],
            "map@100": summary["map_cut_100"],
        },
        "per_query": per_query,
        "timing": {
            "encode_s": round(encoded - started, 3),
            "search_s": round(searched - encoded, 3),
            "metrics_s": round(time.perf_counter() - searched, 3),
        },
    }
    write_json_atomic(output / "metrics.json", document)
    return document


def search_miracl(
    model: SentenceTransformer,
    model_name: str,
    data: MiraclLanguage,
    index: DenseIndex,
    output_dir: str | os.PathLike[str],
    *,
    top_k: int = 100,
    batch_size: int = 64,
    query_max_length: int = 64,
    show_progress: bool = True,
) -> dict[str, Any]:
    """MIRACL topics against a prebuilt index (see ``langmix index``), scored like
    :func:`run_miracl_eval`: ``run.trec`` and ``metrics.json`` in ``output_dir``.

    Raises:
        IndexDirError: If the index was built from another model's embeddings.

    Example:
        >>> sw = load_miracl("sw", data_dir="../shared/data")  # doctest: +SKIP
        >>> search_miracl(model, "e5", sw, DenseIndex("index/sw"), "runs/sw")  # doctest: +SKIP
    """
    from langmix.evaluation.encoding import model_fingerprint
    from langmix.evaluation.index import IndexDirError

    if model_fingerprint(model) != index.fingerprint:
        raise IndexDirError(
            f"{index.directory} was built from passages encoded by another model "
            f"({index.meta.get('model_name') or index.fingerprint}); queries and passages "
            "must share the encoder"
        )
    coverage = check_judged_coverage(data, index.ids)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    qids, query_emb = _encode_topics(model, data, batch_size, query_max_length, None, show_progress)
    encoded = time.perf_counter()
    scores, found = index.search(query_emb, top_k)
    return _score_miracl_run(
        data,
        model_name,
        qids,
        scores,
        found,
        output,
        top_k,
        coverage,
        len(index.ids),
        started,
        encoded,
    )
