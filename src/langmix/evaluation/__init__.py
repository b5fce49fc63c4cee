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

__all__ = [
    "EvalArguments",
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
