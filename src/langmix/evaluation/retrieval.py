"""Top-k dense retrieval over a corpus with faiss, and the MIRACL evaluation built on it.

LAReQA pools (about 13k to 20k candidates) are scored exactly with matrix products; MIRACL
corpora run to millions of passages, where a full score matrix does not fit, so retrieval
goes through a faiss index and only the top ``k`` per query is kept, as in trec_eval runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from langmix.data.errors import DataUnavailableError
from langmix.data.miracl import MiraclLanguage
from langmix.evaluation.encoding import PASSAGE, QUERY, EmbeddingCache, encode
from langmix.evaluation.lareqa import write_json
from langmix.evaluation.trec import evaluate_trec, write_run

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MIRACL_METRICS = ("ndcg_cut_10", "recall_100", "map_cut_100")


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

    Writes ``run.trec`` and ``metrics.json`` (nDCG@10, Recall@100, MAP@100, per query too).

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
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    qids = [qid for qid in data.topics if qid in data.qrels]
    started = time.perf_counter()
    query_emb = encode(
        model,
        [data.topics[q] for q in qids],
        QUERY,
        batch_size=batch_size,
        max_seq_length=query_max_length,
        cache=cache,
        show_progress=show_progress,
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
    docids = [p.docid for p in data.corpus]
    run = {
        qid: {docids[j]: float(s) for j, s in zip(indices[i], scores[i], strict=True) if j >= 0}
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
        "n_passages": len(data.corpus),
        "top_k": top_k,
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
    write_json(output / "metrics.json", document)
    return document
