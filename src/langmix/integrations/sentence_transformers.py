"""Train with sentence-transformers' own ``SentenceTransformerTrainer`` on langmix batches.

Four pieces, each fixing what a sentence-transformers user would otherwise trip on:

* **Batches** come from a :class:`~langmix.sampling.LanguageBatchSampler` through the trainer's
  documented hook, ``SentenceTransformerTrainingArguments(batch_sampler=callable)``. The
  trainer's ``args.seed`` (handed to the hook) seeds the batches, so two runs with one seed
  see the same batches and another seed sees others.
* **The dataset is lazy.** The trainer only accepts a ``datasets.Dataset``, and a row per
  (item, query language, passage language) would be ~5.6M materialised rows for mMARCO in 8
  languages. :meth:`SentenceTransformersAdapter.dataset` is a ``datasets.Dataset`` whose Arrow
  table holds zero-width null columns (no buffers) and whose rows are decoded from the
  sampler's integer example table when accessed; building it allocates one int64 per
  parallel item. Columns: ``query``, ``passage`` and ``label`` (the parallel item id).
* **Prompts** match evaluation: :meth:`SentenceTransformersAdapter.training_arguments` sets
  ``prompts={"query": "query: ", "passage": "passage: "}`` (for E5) from the model's own
  ``query``/``passage`` prompts, as :func:`langmix.load_model` installs them, falling back to
  langmix's per-model defaults.
* **The loss** :class:`SentenceTransformersInfoNCELoss` (defined in
  :mod:`langmix.integrations.sentence_transformers_loss`, re-exported here) wraps
  :class:`langmix.InfoNCELoss` with the sentence-transformers loss signature. It reads the
  ``label`` column as item ids and masks in-batch passages that are translations of a query's
  own positive, or the same passage, instead of pushing them away.
  ``MultipleNegativesRankingLoss`` also works with this dataset (it ignores the labels).

Scope: one process. Under DDP the HF trainer hands each rank different whole batches, which
breaks the one-batch-type-per-step rule; ``langmix train`` (which shards one global batch) is
the multi-GPU path.

Example:
    >>> from sentence_transformers import SentenceTransformerTrainer  # doctest: +SKIP
    >>> adapter = SentenceTransformersAdapter(LanguageBatchSampler([pairs], 32, "hybrid"))  # doctest: +SKIP
    >>> args = adapter.training_arguments(model, "out", max_steps=1000)  # doctest: +SKIP
    >>> SentenceTransformerTrainer(model, args, train_dataset=adapter.dataset(),
    ...     loss=SentenceTransformersInfoNCELoss(model)).train()  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import functools
import os
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import BatchSampler

from langmix.integrations.sentence_transformers_loss import (
    SentenceTransformersInfoNCELoss,
    token_keys,
)
from langmix.models.loading import PASSAGE_PROMPT, QUERY_PROMPT, ModelDefaults, model_defaults
from langmix.sampling.examples import Example, ExampleTable
from langmix.sampling.sampler import LanguageBatchSampler

if TYPE_CHECKING:
    import datasets
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainingArguments

__all__ = [
    "LABEL_COLUMN",
    "PASSAGE_COLUMN",
    "QUERY_COLUMN",
    "SentenceTransformersAdapter",
    "SentenceTransformersInfoNCELoss",
    "token_keys",
    "training_prompts",
]

#: Column names of :meth:`SentenceTransformersAdapter.dataset`, in the order the trainer feeds
#: them to the loss (query first, as every sentence-transformers pair loss expects).
QUERY_COLUMN = "query"
PASSAGE_COLUMN = "passage"
#: ``label`` is the first name in the trainer's label columns, so it reaches the loss as
#: ``labels`` instead of being tokenised as text.
LABEL_COLUMN = "label"
COLUMNS: tuple[str, ...] = (QUERY_COLUMN, PASSAGE_COLUMN, LABEL_COLUMN)


def training_prompts(model: SentenceTransformer) -> dict[str, str]:
    """The per-column prompts a model is evaluated with, for ``args.prompts``.

    The model's own ``query`` and ``passage`` prompts (``document`` also counts as the passage
    prompt, sentence-transformers' name for it) win; a model without them gets langmix's
    defaults for its name (:data:`langmix.models.loading.MODEL_DEFAULTS`, e.g. E5's
    ``"query: "``/``"passage: "``). Columns without a prompt are left out.

    Args:
        model: A ``SentenceTransformer``, e.g. from :func:`langmix.load_model`.

    Returns:
        ``{"query": ..., "passage": ...}``, keyed by :meth:`SentenceTransformersAdapter.dataset`'s
        column names.

    Example:
        >>> model = load_model("offline:multilingual-e5-small@L2")  # doctest: +SKIP
        >>> training_prompts(model)  # doctest: +SKIP
        {'query': 'query: ', 'passage': 'passage: '}
    """
    own = dict(getattr(model, "prompts", None) or {})
    defaults = _defaults_for(model)
    query = own.get(QUERY_PROMPT, defaults.query_prefix)
    passage = own.get(PASSAGE_PROMPT, own.get("document", defaults.passage_prefix))
    return {
        column: prompt
        for column, prompt in ((QUERY_COLUMN, query), (PASSAGE_COLUMN, passage))
        if prompt
    }


def _defaults_for(model: Any) -> ModelDefaults:
    # load_model records the name it loaded; a plain SentenceTransformer knows its hub id.
    name = getattr(model, "langmix_name", None) or getattr(
        getattr(model, "model_card_data", None), "base_model", None
    )
    return model_defaults(name) if name else ModelDefaults()


class _RowIndex:
    """Dataset row numbers <-> example codes, over the examples a strategy can draw.

    Rows are ordered by (set, item, query language, passage language) and only the drawable
    examples get one: ``k`` for an item in ``k`` languages under mono-only strategies,
    ``k * (k - 1)`` cross-only, ``k * k`` for both. Only the first row of every item is stored
    (one int64 per item); the rest is arithmetic on the item's availability row.
    """

    def __init__(self, table: ExampleTable, *, mono: bool, cross: bool) -> None:
        self.table = table
        self.mono = mono
        self.cross = cross
        self.item_starts: list[np.ndarray] = []
        offsets = [0]
        for tset in table.sets:
            k = (tset.pair_index >= 0).sum(axis=1)
            start = np.zeros(tset.n_items + 1, dtype=np.int64)
            np.cumsum(self._per_item(k), out=start[1:])
            self.item_starts.append(start)
            offsets.append(offsets[-1] + int(start[-1]))
        self.set_offsets = np.asarray(offsets, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.set_offsets[-1])

    def __deepcopy__(self, memo: dict) -> _RowIndex:
        # Immutable; datasets deep-copies datasets in several methods, and a copy would
        # duplicate every training text.
        return self

    def _per_item(self, k: np.ndarray) -> np.ndarray:
        if self.mono and self.cross:
            return k * k
        if self.mono:
            return k
        return k * (k - 1)

    def codes(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row outside [0, {len(self)})")
        sets = np.searchsorted(self.set_offsets, rows, side="right") - 1
        codes = np.empty_like(rows)
        for s in np.unique(sets):
            here = sets == s
            start = self.item_starts[s]
            local = rows[here] - self.set_offsets[s]
            # "right" skips items that own no rows (their start equals the next item's).
            items = np.searchsorted(start, local, side="right") - 1
            position = local - start[items]
            available = self.table.sets[s].pair_index[items] >= 0
            k = available.sum(axis=1)
            if self.mono and self.cross:
                u, v = np.divmod(position, k)
            elif self.mono:
                u = v = position
            else:
                u, r = np.divmod(position, k - 1)
                v = r + (r >= u)
            codes[here] = self.table.encode(
                int(s), items, _nth_available(available, u), _nth_available(available, v)
            )
        return codes

    def rows(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.int64).reshape(-1)
        offsets = self.table.code_offsets
        if codes.size and (codes.min() < 0 or codes.max() >= offsets[-1]):
            raise IndexError(f"example code outside [0, {int(offsets[-1])})")
        sets = np.searchsorted(offsets, codes, side="right") - 1
        rows = np.empty_like(codes)
        for s in np.unique(sets):
            here = sets == s
            n_lang = self.table.sets[s].n_languages
            rest, passage = np.divmod(codes[here] - offsets[s], n_lang)
            items, query = np.divmod(rest, n_lang)
            available = self.table.sets[s].pair_index[items] >= 0
            picked = np.arange(len(items))
            if not (available[picked, query].all() and available[picked, passage].all()):
                raise KeyError("an example code names a translation that does not exist")
            ranks = np.cumsum(available, axis=1) - 1
            u, v = ranks[picked, query], ranks[picked, passage]
            k = available.sum(axis=1)
            if self.mono and self.cross:
                position = u * k + v
            elif self.mono:
                if (u != v).any():
                    raise KeyError("a cross-lingual example for a monolingual strategy")
                position = u
            else:
                if (u == v).any():
                    raise KeyError("a monolingual example for the cross strategy")
                position = u * (k - 1) + v - (v > u)
            rows[here] = self.set_offsets[s] + self.item_starts[s][items] + position
        return rows


def _nth_available(available: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Per row, the column of the ``n``-th True of ``available`` (0-based)."""
    ranks = np.cumsum(available, axis=1) - 1
    return np.argmax(available & (ranks == np.asarray(n)[:, None]), axis=1)


def __getattr__(name: str) -> Any:
    # The dataset class subclasses datasets.Dataset, so it is built on first use (only people
    # who train this way need datasets); pickle finds it here by name (for DataLoader workers).
    if name == "LazyExampleDataset":
        return _dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _dataset_class() -> type:
    import datasets

    class LazyExampleDataset(datasets.Dataset):
        """A ``datasets.Dataset`` whose rows are langmix examples decoded on access.

        The Arrow table is null columns (no buffers), so ``len``, ``column_names`` and the
        trainer's checks work as for any dataset while no text is stored. Only row access
        (``ds[i]``, ``ds[i:j]``, ``ds[[i, j]]``, iteration) decodes; Arrow-level operations
        (``map``, ``to_pandas``) would see the null columns.
        """

        _langmix_rows: _RowIndex

        def __getitem__(self, key: Any) -> Any:
            if isinstance(key, str):
                raise TypeError(
                    f"a whole column of this lazy dataset would decode all {len(self)} rows; "
                    f"index rows first, e.g. dataset[:100][{key!r}]"
                )
            if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
                batch = self._decode(self._positions([int(key)]))
                return {column: values[0] for column, values in batch.items()}
            return self._decode(self._positions(key))

        def __getitems__(self, keys: list) -> list:
            batch = self._decode(self._positions(keys))
            return [
                dict(zip(batch, values, strict=True))
                for values in zip(*batch.values(), strict=True)
            ]

        def select(self, *args: Any, **kwargs: Any) -> datasets.Dataset:
            return self._lazy(super().select(*args, **kwargs))

        def shuffle(self, *args: Any, **kwargs: Any) -> datasets.Dataset:
            return self._lazy(super().shuffle(*args, **kwargs))

        def _lazy(self, derived: datasets.Dataset) -> datasets.Dataset:
            # datasets builds derived datasets as plain Dataset(...) over the same (null) table
            # plus an indices mapping; keep them decoding rows.
            derived.__class__ = type(self)
            derived._langmix_rows = self._langmix_rows
            return derived

        def __iter__(self) -> Iterator[dict[str, Any]]:
            for start in range(0, len(self), 1024):
                yield from self.__getitems__(list(range(start, min(start + 1024, len(self)))))

        def _positions(self, key: Any) -> np.ndarray:
            if isinstance(key, bool):
                raise TypeError("dataset index must be an int, slice or list of ints, not bool")
            if isinstance(key, slice):
                positions = np.arange(*key.indices(len(self)), dtype=np.int64)
            else:
                positions = np.asarray(list(key) if not isinstance(key, np.ndarray) else key)
                positions = positions.astype(np.int64).reshape(-1)
                positions = np.where(positions < 0, positions + len(self), positions)
            if positions.size and (positions.min() < 0 or positions.max() >= len(self)):
                raise IndexError(f"index out of range for a dataset of {len(self)} rows")
            if self._indices is not None:  # after select() or shuffle()
                import pyarrow as pa

                positions = self._indices.column(0).take(pa.array(positions)).to_numpy()
            return positions

        def _decode(self, rows: np.ndarray) -> dict[str, list]:
            index = self._langmix_rows
            examples = [index.table.example(int(c)) for c in index.codes(rows)]
            return {
                QUERY_COLUMN: [e.query for e in examples],
                PASSAGE_COLUMN: [e.positive for e in examples],
                LABEL_COLUMN: [e.item for e in examples],
            }

    LazyExampleDataset.__qualname__ = "LazyExampleDataset"
    return LazyExampleDataset


class _TrainerBatches(BatchSampler):
    """The batch sampler the trainer iterates: one epoch of sampler batches as row numbers."""

    def __init__(
        self, adapter: SentenceTransformersAdapter, source: LanguageBatchSampler, n_rows: int
    ) -> None:
        # range() is O(1); torch's BatchSampler only keeps it as ``self.sampler``.
        super().__init__(range(n_rows), source.batch_size, drop_last=True)
        self.adapter = adapter
        self.source = source
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        # The HF trainer calls this before every epoch.
        self.epoch = epoch

    def __len__(self) -> int:
        return self.source.steps_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        first = self.epoch * self.source.steps_per_epoch
        for batch in self.source.batches(first, first + self.source.steps_per_epoch):
            yield self.adapter.rows(batch.codes).tolist()


class SentenceTransformersAdapter:
    """Dataset, batch-sampler hook and training arguments for ``SentenceTransformerTrainer``.

    The trainer's ``args.seed`` seeds the batches, as it seeds everything else in a run: the
    batches of a trainer run are those of ``LanguageBatchSampler(..., seed=args.seed)``. The
    sampler's own ``seed`` is used only when the trainer passes none.

    Args:
        sampler: The language-aware sampler; its ``batch_size`` must equal the trainer's
            ``per_device_train_batch_size`` and its ``world_size`` must be 1.

    Raises:
        ValueError: For a sampler built for several processes.

    Example:
        >>> adapter = SentenceTransformersAdapter(LanguageBatchSampler([pairs], 32, "hybrid"))  # doctest: +SKIP
        >>> args = adapter.training_arguments(model, "out", max_steps=1000, seed=7)  # doctest: +SKIP
        >>> trainer = SentenceTransformerTrainer(model, args, train_dataset=adapter.dataset(),
        ...     loss=SentenceTransformersInfoNCELoss(model))  # doctest: +SKIP
        >>> trainer.train()  # doctest: +SKIP
    """

    def __init__(self, sampler: LanguageBatchSampler) -> None:
        if sampler.world_size != 1:
            raise ValueError(
                "the sentence-transformers adapter is single-process; use langmix train"
            )
        self.sampler = sampler
        hybrid = sampler.strategy == "hybrid"
        mono = sampler.strategy in ("mono", "random") or (hybrid and sampler.alpha > 0)
        cross = sampler.strategy == "cross" or (hybrid and sampler.alpha < 1)
        self._index = _RowIndex(sampler.table, mono=mono, cross=cross)
        self._dataset: datasets.Dataset | None = None

    @property
    def n_rows(self) -> int:
        """Rows of :meth:`dataset`: the (item, query language, passage language) examples the
        strategy can draw (none of them stored)."""
        return len(self._index)

    def rows(self, codes: Iterable[int] | np.ndarray) -> np.ndarray:
        """Row numbers in :meth:`dataset` of example codes (:class:`~langmix.sampling.ExampleTable`).

        Raises:
            KeyError: For a code this strategy cannot draw (e.g. a cross pair under ``mono``).
        """
        return self._index.rows(
            np.asarray(list(codes) if not isinstance(codes, np.ndarray) else codes)
        )

    def codes(self, rows: Iterable[int] | np.ndarray) -> np.ndarray:
        """Example codes of rows of :meth:`dataset` (the inverse of :meth:`rows`)."""
        return self._index.codes(
            np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows)
        )

    def examples(self, rows: Iterable[int] | np.ndarray) -> list[Example]:
        """The decoded examples (texts, languages, item ids) of rows of :meth:`dataset`."""
        return [self.sampler.table.example(int(c)) for c in self.codes(rows)]

    def dataset(self) -> datasets.Dataset:
        """The lazy ``datasets.Dataset`` to pass as ``train_dataset`` (built once, then reused).

        Columns ``query``, ``passage`` (texts, without prompts) and ``label`` (the parallel
        item id: equal for translations). Building it costs one int64 per parallel item.
        """
        if self._dataset is None:
            import pyarrow as pa

            n = len(self._index)
            table = pa.table({column: pa.nulls(n) for column in COLUMNS})
            # A random fingerprint: the null table says nothing about the texts, so datasets'
            # cache must never match two adapters' datasets.
            dataset = _dataset_class()(table, fingerprint=uuid.uuid4().hex)
            dataset._langmix_rows = self._index
            self._dataset = dataset
        return self._dataset

    def sampler_for_seed(self, seed: int) -> LanguageBatchSampler:
        """The sampler with another seed (a shallow copy sharing the example table)."""
        seeded = copy.copy(self.sampler)
        seeded.seed = int(seed)
        seeded.epoch = 0
        return seeded

    def training_arguments(
        self, model: SentenceTransformer, output_dir: str, **kwargs: Any
    ) -> SentenceTransformerTrainingArguments:
        """``SentenceTransformerTrainingArguments`` wired to this adapter.

        Sets ``per_device_train_batch_size`` (the sampler's), ``batch_sampler`` (this adapter's
        hook) and ``prompts`` (:func:`training_prompts`, unless given). Prompts the model lacks
        are installed on it too (as :func:`langmix.load_model` does), so that encoding with
        ``prompt_name="query"``/``"passage"`` after training uses the prefixes it trained with.

        Args:
            model: The model to be trained.
            output_dir: The trainer's output directory.
            **kwargs: Any other ``SentenceTransformerTrainingArguments`` field (``max_steps``,
                ``learning_rate``, ``seed``, ...).

        Raises:
            ValueError: If ``per_device_train_batch_size`` differs from the sampler's batch
                size, or ``batch_sampler`` is given.
        """
        from sentence_transformers import SentenceTransformerTrainingArguments

        if "batch_sampler" in kwargs:
            raise ValueError("batch_sampler is the adapter's; build the arguments yourself")
        batch_size = kwargs.pop("per_device_train_batch_size", self.sampler.batch_size)
        if batch_size != self.sampler.batch_size:
            raise ValueError(
                f"per_device_train_batch_size {batch_size} differs from the sampler's "
                f"batch size {self.sampler.batch_size}"
            )
        prompts = kwargs.pop("prompts", None)
        if prompts is None:
            prompts = training_prompts(model)
            installed = dict(getattr(model, "prompts", None) or {})
            for name, column in ((QUERY_PROMPT, QUERY_COLUMN), (PASSAGE_PROMPT, PASSAGE_COLUMN)):
                if column in prompts:
                    installed.setdefault(name, prompts[column])
            model.prompts = installed
        # Pinned memory only helps a copy to an accelerator; without one torch warns per run.
        kwargs.setdefault("dataloader_pin_memory", torch.cuda.is_available())
        return SentenceTransformerTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=batch_size,
            batch_sampler=_Hook(self),
            prompts=prompts,
            **kwargs,
        )

    def batch_sampler(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = True,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> BatchSampler:
        """The callable for ``SentenceTransformerTrainingArguments(batch_sampler=...)``.

        The trainer calls it with its batch size, ``generator`` and ``seed`` (``args.seed``).
        Batches are always full (``drop_last`` is moot) and ``valid_label_columns`` is unused:
        the label column is ``label``. Prefer :meth:`training_arguments` to passing this
        method yourself: the trainer pickles its arguments into every checkpoint, and the
        bound method would take the adapter, with every training text, along.

        Raises:
            ValueError: If the batch size differs from the sampler's, or ``dataset`` is not
                this adapter's :meth:`dataset`.
            RuntimeError: Under distributed training (several processes).
        """
        if _world_size() > 1:
            raise RuntimeError(
                "SentenceTransformerTrainer gives DDP ranks different whole batches, which "
                "breaks one batch type per step; train on several GPUs with langmix train"
            )
        if batch_size != self.sampler.batch_size:
            raise ValueError(
                f"trainer batch size {batch_size} differs from the sampler's "
                f"{self.sampler.batch_size}"
            )
        if getattr(dataset, "_langmix_rows", None) is not self._index:
            raise ValueError("train_dataset is not this adapter's dataset()")
        if seed is None and generator is not None:
            # Older trainers pass only the generator, which they seed with args.seed.
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        source = self.sampler if seed is None else self.sampler_for_seed(seed)
        return _TrainerBatches(self, source, len(self._index))


class _Hook:
    """``adapter.batch_sampler`` for training arguments, pickled without the training data.

    The HF trainer saves its arguments (``training_args.bin``) with every checkpoint; pickling
    the bound method would write the adapter, with every training text, each time.
    """

    def __init__(self, adapter: SentenceTransformersAdapter) -> None:
        self.adapter = adapter

    def __call__(self, *args: Any, **kwargs: Any) -> BatchSampler:
        return self.adapter.batch_sampler(*args, **kwargs)

    def __reduce__(self) -> tuple:
        return (_DetachedHook, ())


class _DetachedHook:
    """What an unpickled :class:`_Hook` becomes: it says how to get a working one."""

    def __call__(self, *args: Any, **kwargs: Any) -> BatchSampler:
        raise RuntimeError(
            "these training arguments were unpickled without their SentenceTransformersAdapter; "
            "build the adapter again and use adapter.training_arguments(...)"
        )


def _world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))
