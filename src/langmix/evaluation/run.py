"""One evaluation run from typed arguments: what ``langmix eval`` does, callable from Python."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from langmix.data import DataUnavailableError, load_lareqa
from langmix.data.miracl import MIRACL_LANGUAGES, load_miracl
from langmix.data.sources import cache_dir
from langmix.evaluation.arguments import EvalArguments
from langmix.evaluation.encoding import EmbeddingCache, model_fingerprint
from langmix.evaluation.lareqa import TREC_QRELS, TREC_RUN, run_lareqa_eval
from langmix.evaluation.retrieval import run_miracl_eval
from langmix.evaluation.trec import combine_coverage
from langmix.outputs import write_json_atomic


def run_eval(args: EvalArguments, *, show_progress: bool = True) -> dict[str, Any]:
    """Load the model and data named in ``args``, evaluate, write ``metrics.json``.

    Example:
        >>> doc = run_eval(EvalArguments(model="offline:multilingual-e5-small@L2",
        ...                              dataset="xquad-r", output_dir="runs/x"))  # doctest: +SKIP
        >>> doc["map"]["multi"]  # doctest: +SKIP
    """
    from dataclasses import asdict

    from langmix.models import load_model
    from langmix.outputs import claim_output_dir

    # Before any encoding, not after it. What does not change the numbers is left out.
    incidental = {
        "output_dir",
        "data_dir",
        "batch_size",
        "cache_embeddings",
        "overwrite",
        "trec_depth",
    }
    claim_output_dir(
        args.output_dir,
        "eval",
        {k: v for k, v in asdict(args).items() if k not in incidental},
        overwrite=args.overwrite,
        outputs=("metrics.json", "embeddings.npz", TREC_RUN, TREC_QRELS, *MIRACL_LANGUAGES),
    )
    dataset = args.dataset.lower()
    # Load data before the model: a data problem should surface in a second, not after the
    # model has been built.
    if dataset == "miracl":
        return _run_miracl(args, show_progress)
    data = load_lareqa(args.dataset, args.languages, data_dir=args.data_dir)
    started = time.perf_counter()
    model = load_model(args.model)
    load_s = time.perf_counter() - started
    cache = _cache(model) if args.cache_embeddings else None
    document = run_lareqa_eval(
        model,
        args.model,
        data,
        args.output_dir,
        save_embeddings=args.save_embeddings,
        cache=cache,
        timing={"model_load_s": round(load_s, 3)},
        batch_size=args.batch_size,
        query_max_length=args.query_max_length,
        passage_max_length=args.passage_max_length,
        with_context=args.with_context,
        show_progress=show_progress,
        trec_depth=args.trec_depth,
    )
    return document


def _cache(model) -> EmbeddingCache:
    return EmbeddingCache(cache_dir() / "embeddings", model_fingerprint(model))


def _run_miracl(args: EvalArguments, show_progress: bool) -> dict[str, Any]:
    from langmix.models import load_model

    languages = (
        [lang.strip() for lang in args.languages.split(",") if lang.strip()]
        if args.languages
        else None
    )
    if not languages:
        raise ValueError(
            "MIRACL evaluation needs --languages (one or more of "
            f"{', '.join(MIRACL_LANGUAGES)}) and a corpus for each"
        )
    corpus = Path(args.corpus) if args.corpus else None
    if corpus is not None and corpus.is_file() and len(languages) > 1:
        raise ValueError(
            "--corpus is a single file; for several languages give a directory holding {lang}.jsonl"
        )
    loaded = []
    for lang in languages:
        path = corpus / f"{lang}.jsonl" if corpus is not None and corpus.is_dir() else corpus
        if path is not None and not path.is_file():
            raise DataUnavailableError(f"MIRACL corpus file {path} does not exist")
        loaded.append(load_miracl(lang, args.split, data_dir=args.data_dir, corpus=path))
    model = load_model(args.model)
    cache = _cache(model) if args.cache_embeddings else None
    per_language = {}
    for data in loaded:
        per_language[data.language] = run_miracl_eval(
            model,
            args.model,
            data,
            Path(args.output_dir) / data.language,
            top_k=args.top_k,
            batch_size=args.batch_size,
            query_max_length=args.query_max_length,
            passage_max_length=args.passage_max_length,
            cache=cache,
            show_progress=show_progress,
        )
    names = ("ndcg@10", "recall@100", "map@100")
    document = {
        "dataset": "miracl",
        "model": args.model,
        "split": args.split,
        "languages": languages,
        "metrics": {
            n: statistics.fmean(d["metrics"][n] for d in per_language.values()) for n in names
        },
        "per_language": {lang: d["metrics"] for lang, d in per_language.items()},
        # Per language too: one partial corpus can hide behind full ones in the pooled share.
        "judged_relevant_coverage": {
            "overall": combine_coverage(
                d["judged_relevant_coverage"] for d in per_language.values()
            ),
            "per_language": {
                lang: d["judged_relevant_coverage"] for lang, d in per_language.items()
            },
        },
    }
    write_json_atomic(Path(args.output_dir) / "metrics.json", document)
    return document
