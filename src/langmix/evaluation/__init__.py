"""Evaluation: encoding with a cache, the LAReQA protocol, MIRACL/TREC metrics, faiss search."""

from __future__ import annotations

from langmix.evaluation.arguments import EvalArguments
from langmix.evaluation.metrics import (
    LareqaPerQuery,
    LareqaResult,
    RelevantRanks,
    aggregate_lareqa,
    evaluate_lareqa,
    relevant_ranks,
)
from langmix.evaluation.trec import TopKRun, evaluate_trec, read_run, write_run


def __getattr__(name: str):
    # Lazy: the evaluator subclasses sentence-transformers' evaluator, a heavy import that
    # the rest of evaluation does not need at import time.
    if name == "LAReQAEvaluator":
        from langmix.evaluation.lareqa_evaluator import LAReQAEvaluator

        return LAReQAEvaluator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EvalArguments",
    "LAReQAEvaluator",
    "LareqaPerQuery",
    "LareqaResult",
    "RelevantRanks",
    "TopKRun",
    "aggregate_lareqa",
    "evaluate_lareqa",
    "evaluate_trec",
    "read_run",
    "relevant_ranks",
    "write_run",
]
