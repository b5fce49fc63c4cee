"""Use a :class:`LanguageBatchSampler` inside sentence-transformers' own trainer.

``SentenceTransformerTrainer`` takes a batch sampler through its documented hook,
``SentenceTransformerTrainingArguments(batch_sampler=callable)``, and reads rows of a
``datasets.Dataset``. This adapter materialises one row per (item, query language, passage
language) the strategy can draw, and yields the row numbers of the sampler's batches.

Scope: one process. Under DDP the HF trainer hands each rank different whole batches, which
breaks the one-batch-type-per-step rule; ``langmix train`` (which shards one global batch)
is the multi-GPU path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from langmix.sampling.sampler import LanguageBatchSampler


class SentenceTransformersAdapter:
    """Dataset and batch-sampler hook for ``SentenceTransformerTrainer``.

    Args:
        sampler: The language-aware sampler (its ``batch_size`` must equal the trainer's
            ``per_device_train_batch_size``).

    Example:
        >>> adapter = SentenceTransformersAdapter(LanguageBatchSampler([pairs], 32, "hybrid"))  # doctest: +SKIP
        >>> args = SentenceTransformerTrainingArguments("out", per_device_train_batch_size=32,
        ...                                             batch_sampler=adapter.batch_sampler)  # doctest: +SKIP
        >>> SentenceTransformerTrainer(model, args, train_dataset=adapter.dataset(),
        ...                            loss=MultipleNegativesRankingLoss(model)).train()  # doctest: +SKIP
    """

    def __init__(self, sampler: LanguageBatchSampler) -> None:
        if sampler.world_size != 1:
            raise ValueError(
                "the sentence-transformers adapter is single-process; use langmix train"
            )
        self.sampler = sampler
        codes = []
        for s, tset in enumerate(sampler.table.sets):
            available = tset.pair_index >= 0
            items, langs = np.nonzero(available)
            if sampler.strategy in ("mono", "hybrid", "random"):
                codes.append(sampler.table.encode(s, items, langs, langs))
            if sampler.strategy in ("cross", "hybrid"):
                both = available[:, :, None] & available[:, None, :]
                both &= ~np.eye(tset.n_languages, dtype=bool)[None]
                item, q, p = np.nonzero(both)
                codes.append(sampler.table.encode(s, item, q, p))
        self.codes = np.unique(np.concatenate(codes))

    def rows(self, codes: np.ndarray) -> np.ndarray:
        """Row numbers of example codes in :meth:`dataset`."""
        return np.searchsorted(self.codes, codes)

    def dataset(self) -> Any:
        """A ``datasets.Dataset`` with ``anchor`` (query) and ``positive`` columns."""
        from datasets import Dataset

        examples = [self.sampler.table.example(int(c)) for c in self.codes]
        return Dataset.from_dict(
            {"anchor": [e.query for e in examples], "positive": [e.positive for e in examples]}
        )

    def batch_sampler(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = True,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int = 0,
    ) -> Any:
        """The callable for ``SentenceTransformerTrainingArguments(batch_sampler=...)``."""
        from sentence_transformers.base.sampler import DefaultBatchSampler

        if batch_size != self.sampler.batch_size:
            raise ValueError(
                f"trainer batch size {batch_size} differs from the sampler's {self.sampler.batch_size}"
            )
        if len(dataset) != len(self.codes):
            raise ValueError("the dataset is not this adapter's dataset()")
        adapter = self

        class _Rows(DefaultBatchSampler):
            def __iter__(self) -> Iterator[list[int]]:
                adapter.sampler.set_epoch(getattr(self, "epoch", 0))
                for codes in adapter.sampler:
                    yield adapter.rows(np.asarray(codes)).tolist()

            def __len__(self) -> int:
                return len(adapter.sampler)

        return _Rows(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
