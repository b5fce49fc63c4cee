"""Benchmark 4: how cost grows, so a user can predict MIRACL-scale runs.

A. LAReQA evaluation time against pool size: synthetic unit vectors (384-d, 11 languages,
   one relevant per language per query), 1k to 100k candidates, against the bare product.
B. Top-100 search over a 1M-passage synthetic corpus (clustered unit vectors, so an
   approximate index has structure to exploit, as real embeddings do): faiss exact flat
   (langmix's :func:`~langmix.evaluation.retrieval.search`), IVF-Flat and IVF-PQ, with build
   time, search time, index memory and recall of the exact top 100.

Memory formulas (float32, d dimensions):

* LAReQA evaluation: ``4 d (n_q + n_c)`` bytes of embeddings + a 64 MiB score chunk +
  about ``8 n_rel (3 + n_lang)`` bytes per query of rank bookkeeping.
* Flat index: ``4 d N`` bytes. IVF-Flat: ``4 d N + 8 N`` (ids) + ``4 d nlist``.
  IVF-PQ with ``m`` one-byte codes: ``(m + 8) N`` bytes + ``4 d nlist`` + ``4 d 256``.

Run: ``python bench/bench_growth.py`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _common import best_time, peak_rss_mib, write_result
from langmix.evaluation.metrics import evaluate_lareqa
from langmix.evaluation.retrieval import search

N_LANG = 11


def unit(rows: np.ndarray) -> np.ndarray:
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def lareqa_pool(n_queries: int, n_cand: int, dim: int, rng: np.random.Generator):
    items = n_cand // N_LANG
    cand = unit(rng.standard_normal((items * N_LANG, dim), dtype=np.float32))
    cand_lang = np.repeat(np.arange(N_LANG), items)
    query_item = rng.integers(0, items, n_queries)
    # Questions sit near their answers, so ranks are spread as for a real model.
    query = unit(cand[query_item] + rng.standard_normal((n_queries, dim), dtype=np.float32))
    query_lang = rng.integers(0, N_LANG, n_queries)
    indices = (np.arange(N_LANG)[None, :] * items + query_item[:, None]).reshape(-1)
    indptr = np.arange(0, n_queries * N_LANG + 1, N_LANG)
    return query, cand, query_lang, cand_lang, indptr, indices


def pool_growth(sizes: list[int], n_queries: int, dim: int) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for n_cand in sizes:
        q, c, ql, cl, indptr, indices = lareqa_pool(n_queries, n_cand, dim, rng)
        product = torch.empty((q.shape[0], c.shape[0]))
        q_t, c_t = torch.from_numpy(q), torch.from_numpy(c)
        floor_s, _ = best_time(lambda: torch.matmul(q_t, c_t.T, out=product))  # noqa: B023
        langs = [f"l{k}" for k in range(N_LANG)]
        took, _ = best_time(
            lambda: evaluate_lareqa(q, c, ql, cl, indptr, indices, langs)  # noqa: B023
        )
        rows.append(
            {
                "candidates": int(c.shape[0]),
                "queries": n_queries,
                "floor_matmul_s": round(floor_s, 4),
                "langmix_s": round(took, 4),
                "langmix_over_floor": round(took / floor_s, 2),
                "embedding_mib": round(4 * dim * (q.shape[0] + c.shape[0]) / 2**20, 1),
            }
        )
        print(rows[-1], flush=True)
    return rows


def clustered_corpus(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Two-level clusters (topics, then near-duplicate groups of about 50 passages), so
    a query's exact top 100 is its group plus graded neighbours, as with real embeddings."""
    topics = unit(rng.standard_normal((max(1, n // 1000), dim), dtype=np.float32))
    groups = n // 50
    centres = unit(
        topics[rng.integers(0, topics.shape[0], groups)]
        + rng.standard_normal((groups, dim), dtype=np.float32) * (0.7 / np.sqrt(dim))
    )
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        stop = min(n, start + step)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32) * (0.5 / np.sqrt(dim))
        out[start:stop] = centres[rng.integers(0, groups, stop - start)] + noise
    return unit(out)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(e.tolist())) for f, e in zip(found, exact, strict=True))
    return hits / exact.size


def corpus_search(n: int, n_queries: int, dim: int, top_k: int) -> dict:
    import faiss

    rng = np.random.default_rng(1)
    started = time.perf_counter()
    corpus = clustered_corpus(n, dim, rng)
    noise = rng.standard_normal((n_queries, dim), dtype=np.float32) * (0.5 / np.sqrt(dim))
    queries = unit(corpus[rng.integers(0, n, n_queries)] + noise)
    made = time.perf_counter() - started
    out: dict = {"passages": n, "queries": n_queries, "dim": dim, "top_k": top_k}
    out["corpus_generation_s"] = round(made, 1)

    started = time.perf_counter()
    _, exact = search(queries, corpus, top_k)
    flat_s = time.perf_counter() - started
    out["flat"] = {
        "build_and_search_s": round(flat_s, 2),
        "queries_per_s": round(n_queries / flat_s, 1),
        "index_mib": round(4 * dim * n / 2**20, 1),
        "recall_of_exact_top_k": 1.0,
        "recall_of_exact_top_10": 1.0,
    }
    print(out["flat"], flush=True)

    # About sqrt(N) lists, trained on 48 points per list (faiss asks for at least 39).
    nlist = max(16, int(np.sqrt(n)) // 16 * 16)
    train = corpus[rng.choice(n, min(n, 48 * nlist), replace=False)]
    for name, factory, nprobe in (
        ("ivf_flat", f"IVF{nlist},Flat", 16),
        ("ivf_pq48", f"IVF{nlist},PQ48", 16),
    ):
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        if name == "ivf_pq48":
            # Defaults measured 85 s to train at 100k on 2 cores, mostly polysemous code
            # reordering (useless for this search) and 25 k-means passes on every point.
            index.do_polysemous_training = False
            index.pq.cp.max_points_per_centroid = 64
            index.pq.cp.niter = 10
        started = time.perf_counter()
        index.train(train)
        index.add(corpus)
        built = time.perf_counter() - started
        index.nprobe = nprobe
        started = time.perf_counter()
        _, found = index.search(queries, top_k)
        searched = time.perf_counter() - started
        code_bytes = 4 * dim if name == "ivf_flat" else 48
        out[name] = {
            "nlist": nlist,
            "nprobe": nprobe,
            "build_s": round(built, 1),
            "search_s": round(searched, 3),
            "queries_per_s": round(n_queries / searched, 1),
            "index_mib": round(((code_bytes + 8) * n + 4 * dim * nlist) / 2**20, 1),
            "recall_of_exact_top_k": round(recall(found, exact), 4),
            "recall_of_exact_top_10": round(recall(found[:, :10], exact[:, :10]), 4),
        }
        print(name, out[name], flush=True)
        del index
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--pool-queries", type=int, default=2000)
    parser.add_argument("--pool-sizes", default="1000,3000,10000,30000,100000")
    parser.add_argument("--corpus", type=int, default=1_000_000)
    parser.add_argument("--corpus-queries", type=int, default=1000)
    args = parser.parse_args()

    sizes = [int(s) for s in args.pool_sizes.split(",")]
    figures = {
        "lareqa_pool_growth": pool_growth(sizes, args.pool_queries, args.dim),
        "corpus_search": corpus_search(args.corpus, args.corpus_queries, args.dim, 100),
        "peak_rss_mib": peak_rss_mib(),
    }
    write_result(
        "growth",
        figures,
        {
            "dim": args.dim,
            "pool_queries": args.pool_queries,
            "corpus": args.corpus,
            "corpus_queries": args.corpus_queries,
            "threads": torch.get_num_threads(),
        },
    )


if __name__ == "__main__":
    main()
