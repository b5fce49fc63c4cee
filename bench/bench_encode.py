"""Benchmark 2: encoding throughput of langmix against ``SentenceTransformer.encode``.

Same model (the offline multilingual-e5-small, all 12 layers), same texts (XQuAD-R questions
and candidate sentences with their paragraph, first ``--articles`` articles in all 11
languages), same prompts, batch size and truncation lengths (queries 64, passages 128 tokens).

langmix's :func:`~langmix.evaluation.encoding.encode` calls ``SentenceTransformer.encode``
underneath and adds the embedding cache, so the cold figure measures its overhead (dedup,
hashing, writing the cache) and the warm figure what every later evaluation of the same model
pays. The study-level figure counts texts actually sent to the model when one model is
evaluated twice on the same set (as a study does for its mono/cross/multi settings and on
rerun): each distinct text is encoded once.

Run: ``python bench/bench_encode.py`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from _common import data_dir, write_result
from langmix.data import load_lareqa
from langmix.evaluation.encoding import PASSAGE, QUERY, EmbeddingCache, encode
from langmix.evaluation.lareqa import encode_lareqa
from langmix.models import load_model

QUERY_LENGTH, PASSAGE_LENGTH = 64, 128


def st_encode(model, queries, passages, batch_size):
    out = []
    for texts, kind, length in (
        (queries, QUERY, QUERY_LENGTH),
        (passages, PASSAGE, PASSAGE_LENGTH),
    ):
        model.max_seq_length = length
        out.append(
            model.encode(
                texts,
                prompt=model.prompts[kind],
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        )
    return out


def langmix_encode(model, queries, passages, batch_size, cache):
    return [
        encode(
            model,
            texts,
            kind,
            batch_size=batch_size,
            max_seq_length=length,
            cache=cache,
            show_progress=False,
        )
        for texts, kind, length in (
            (queries, QUERY, QUERY_LENGTH),
            (passages, PASSAGE, PASSAGE_LENGTH),
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="offline:multilingual-e5-small")
    parser.add_argument("--articles", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    dataset = load_lareqa("xquad-r", data_dir=data_dir()).first_articles(args.articles)
    queries, passages = dataset.query_texts(), dataset.passage_texts(with_context=True)
    n_texts = len(queries) + len(passages)
    model = load_model(args.model)
    default_length = model.max_seq_length

    st_times, cold_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(args.repeat):
            # Alternate the order so neither engine always runs on a warmer machine.
            started = time.perf_counter()
            st_out = st_encode(model, queries, passages, args.batch_size)
            st_times.append(time.perf_counter() - started)
            model.max_seq_length = default_length
            cache = EmbeddingCache(f"{tmp}/cold{attempt}", "bench")
            started = time.perf_counter()
            lm_out = langmix_encode(model, queries, passages, args.batch_size, cache)
            cold_times.append(time.perf_counter() - started)
        difference = max(float(np.max(np.abs(a - b))) for a, b in zip(st_out, lm_out, strict=True))

        started = time.perf_counter()
        langmix_encode(
            model, queries, passages, args.batch_size, EmbeddingCache(f"{tmp}/cold0", "bench")
        )
        warm_s = time.perf_counter() - started

        # A study evaluates each model on a set once, and every setting reads the same
        # matrices; a rerun (or a second evaluation set sharing texts) hits the cache.
        sent: list[int] = []
        original = model.encode

        def counting_encode(sentences, *a, **kw):
            sent.append(len(sentences))
            return original(sentences, *a, **kw)

        model.encode = counting_encode
        study_cache = EmbeddingCache(f"{tmp}/study", "bench")
        for _ in range(2):
            encode_lareqa(model, dataset, cache=study_cache, show_progress=False)
        model.encode = original
    distinct = len(set(queries)) + len(set(passages))

    st_s, cold_s = min(st_times), min(cold_times)
    figures = {
        "texts": n_texts,
        "sentence_transformers_s": round(st_s, 2),
        "sentence_transformers_texts_per_s": round(n_texts / st_s, 1),
        "langmix_cold_s": round(cold_s, 2),
        "langmix_cold_texts_per_s": round(n_texts / cold_s, 1),
        "langmix_cold_over_st": round(st_s / cold_s, 3),
        "langmix_warm_s": round(warm_s, 3),
        "langmix_warm_texts_per_s": round(n_texts / warm_s, 1),
        "max_abs_difference": difference,
        "distinct_texts": distinct,
        "texts_sent_to_model_over_two_evaluations": int(sum(sent)),
        "all_timings_s": {"sentence_transformers": st_times, "langmix_cold": cold_times},
    }
    write_result(
        "encode",
        figures,
        {
            "model": args.model,
            "articles": args.articles,
            "batch_size": args.batch_size,
            "query_max_length": QUERY_LENGTH,
            "passage_max_length": PASSAGE_LENGTH,
            "with_context": True,
            "threads": torch.get_num_threads(),
        },
    )


if __name__ == "__main__":
    main()
