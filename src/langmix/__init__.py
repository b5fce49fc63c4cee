"""langmix: language-aware batch composition for multilingual dense retrieval.

The public API, one function per stage (imported lazily, so ``import langmix`` stays cheap):

    >>> import langmix
    >>> data = langmix.load_lareqa("xquad-r", ["en", "de"])  # doctest: +SKIP
    >>> model = langmix.load_model("offline:multilingual-e5-small@L2")  # doctest: +SKIP
    >>> summary = langmix.train(langmix.TrainArguments(model="offline:multilingual-e5-small@L2",
    ...     train=["mlqa-r"], output_dir="runs/h", sampling="hybrid", max_steps=100))  # doctest: +SKIP
    >>> langmix.run_study("configs/demo.toml", "runs/demo")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "load_lareqa": "langmix.data.lareqa",
    "load_miracl": "langmix.data.miracl",
    "load_mmarco": "langmix.data.mmarco",
    "ParallelPairs": "langmix.data.pairs",
    "load_model": "langmix.models.loading",
    "LanguageBatchSampler": "langmix.sampling.sampler",
    "SentenceTransformersAdapter": "langmix.integrations.sentence_transformers",
    "SentenceTransformersInfoNCELoss": "langmix.integrations.sentence_transformers_loss",
    "InfoNCELoss": "langmix.training.loss",
    "TrainArguments": "langmix.training.arguments",
    "train": "langmix.training.trainer",
    "evaluate_lareqa": "langmix.evaluation.metrics",
    "evaluate_trec": "langmix.evaluation.trec",
    "EvalArguments": "langmix.evaluation.arguments",
    "run_eval": "langmix.evaluation.run",
    "run_study": "langmix.study.runner",
    "build_report": "langmix.study.report",
    "compare": "langmix.study.paired",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'langmix' has no attribute {name!r}")
