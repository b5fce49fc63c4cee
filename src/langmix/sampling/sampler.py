"""Language-aware batch samplers: X-X-mono, X-Y cross-lingual, hybrid, and pooled random.

Why by hand: sentence-transformers' samplers (``NoDuplicatesBatchSampler``,
``GroupByLabelBatchSampler``, the round-robin/proportional multi-dataset samplers) choose
*rows*; none chooses, per batch, a batch type and then languages for each row, and none can
pair a query in one language with its positive in another without materialising every
language pair as a row. These samplers decide exactly that, on integer codes
(:mod:`langmix.sampling.examples`), and are still ordinary PyTorch batch samplers.

Strategies (the paper's batch compositions):

* ``mono``: one language per batch, drawn per batch (uniformly over languages, or in
  proportion to their number of items with ``language_weighting="size"``); query and
  positive in that language.
* ``cross``: for each example, a query language and a different passage language, drawn
  uniformly among the languages in which that item exists; a batch mixes languages.
* ``hybrid``: each batch is ``mono`` with probability ``alpha``, else ``cross``.
* ``random``: the multilingual fine-tuning baseline, uniform batches over the pooled
  monolingual (query, positive) pairs of all languages, with no language structure.

Guarantees, for every strategy:

* no two examples of a (global) batch share a parallel item, so a translation of a query's
  positive is never in the batch as its negative;
* with several training sets, each batch comes from one set, drawn with probability
  proportional to ``n_pairs ** (1 / set_temperature)``;
* **epoch** = ``n_pairs // batch_size`` steps, where ``n_pairs`` counts (query, positive)
  pairs over all sets and languages. The definition is the same for every strategy, so equal
  epochs mean equal steps and equal examples. Within an epoch each pool (a language's items,
  the multilingual items, the pooled pairs) is drawn without replacement and reshuffled only
  when it runs out;
* the batch of every step is a pure function of ``seed`` and the step, so a resumed run sees
  the same batches;
* under DDP every rank computes the same global batch and keeps its own slice: all ranks
  share the batch type (and the language of a mono batch), and no item repeats across ranks.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from langmix.data.pairs import ParallelPairs
from langmix.sampling.examples import ExampleTable, TrainingSet

Strategy = Literal["mono", "cross", "hybrid", "random"]
BatchType = Literal["mono", "cross", "random"]
STRATEGIES: tuple[str, ...] = ("mono", "cross", "hybrid", "random")


@dataclass(frozen=True)
class Batch:
    """One global batch, as the sampler chose it.

    Attributes:
        step: 0-based optimizer step.
        epoch: Epoch the step belongs to.
        batch_type: ``"mono"``, ``"cross"`` or ``"random"``.
        set_index: Which training set the batch came from.
        items: ``int64[B]`` item numbers within the set.
        query_languages: ``int64[B]`` language numbers (the set's language order).
        passage_languages: ``int64[B]``.
        codes: ``int64[B]`` example codes of the :class:`ExampleTable`.
    """

    step: int
    epoch: int
    batch_type: BatchType
    set_index: int
    items: np.ndarray
    query_languages: np.ndarray
    passage_languages: np.ndarray
    codes: np.ndarray

    def shard(self, rank: int, world_size: int) -> np.ndarray:
        """The example codes this rank trains on (a contiguous slice of the global batch)."""
        per_rank = len(self.codes) // world_size
        return self.codes[rank * per_rank : (rank + 1) * per_rank]


class _Pool:
    """Draws without replacement from a fixed population, reshuffling when it runs out."""

    def __init__(self, population: np.ndarray, rng: np.random.Generator) -> None:
        self.population = population
        self.rng = rng
        self.order = rng.permutation(population)
        self.position = 0

    def take(self, count: int, distinct_key: np.ndarray | None = None) -> np.ndarray:
        """``count`` members, all with different ``distinct_key[member]`` if a key is given."""
        chosen: list[int] = []
        seen: set[int] = set()
        deferred: list[int] = []
        while len(chosen) < count:
            if self.position == len(self.order):
                # Members skipped as duplicates go first in the next pass, so none starves.
                self.order = np.concatenate(
                    [np.asarray(deferred, dtype=np.int64), self.rng.permutation(self.population)]
                )
                self.position, deferred = 0, []
            member = int(self.order[self.position])
            self.position += 1
            key = member if distinct_key is None else int(distinct_key[member])
            if key in seen:
                deferred.append(member)
                continue
            seen.add(key)
            chosen.append(member)
        if deferred:
            self.order = np.concatenate(
                [np.asarray(deferred, dtype=np.int64), self.order[self.position :]]
            )
            self.position = 0
        return np.asarray(chosen, dtype=np.int64)


class LanguageBatchSampler:
    """Batch sampler over parallel training pairs with a language-aware batch composition.

    It is a PyTorch batch sampler (``__iter__`` yields this rank's example codes for one
    epoch, ``__len__`` is the number of steps per epoch, ``set_epoch`` picks the epoch) over
    the map-style dataset :attr:`table`; trainers that want the batch type use
    :meth:`batches`.

    Args:
        sets: Training sets (each a :class:`ParallelPairs`).
        batch_size: Global batch size (over all ranks).
        strategy: ``"mono"``, ``"cross"``, ``"hybrid"`` or ``"random"``.
        alpha: Probability of a mono batch under ``hybrid``.
        seed: Seed; the batches depend on nothing else.
        language_weighting: How a mono batch's language is drawn: ``"uniform"`` or ``"size"``.
        set_temperature: Sets are drawn proportionally to ``n_pairs ** (1 / set_temperature)``.
        rank: This process's rank under DDP.
        world_size: Number of processes; must divide ``batch_size``.

    Raises:
        ValueError: For an unknown strategy, an alpha outside [0, 1], a batch size not
            divisible by the world size, or data that cannot fill one batch of the requested
            kind (for example a language with fewer items than ``batch_size``).

    Example:
        >>> sampler = LanguageBatchSampler([pairs], batch_size=32, strategy="hybrid")  # doctest: +SKIP
        >>> loader = DataLoader(sampler.table, batch_sampler=sampler, collate_fn=list)  # doctest: +SKIP
        >>> next(sampler.batches()).batch_type in {"mono", "cross"}  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        sets: Sequence[ParallelPairs],
        batch_size: int,
        strategy: Strategy,
        *,
        alpha: float = 0.5,
        seed: int = 0,
        language_weighting: Literal["uniform", "size"] = "uniform",
        set_temperature: float = 1.0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown sampling strategy {strategy!r}; choose one of {STRATEGIES}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if batch_size < 2:
            raise ValueError(
                f"batch_size must be at least 2 for in-batch negatives, got {batch_size}"
            )
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not valid for world size {world_size}")
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not divisible by world size {world_size}")
        if language_weighting not in ("uniform", "size"):
            raise ValueError(
                f"language_weighting must be 'uniform' or 'size', got {language_weighting!r}"
            )
        if set_temperature <= 0:
            raise ValueError(f"set_temperature must be positive, got {set_temperature}")
        self.table = ExampleTable(sets)
        self.batch_size = batch_size
        self.strategy = strategy
        self.alpha = alpha
        self.seed = seed
        self.language_weighting = language_weighting
        self.set_temperature = set_temperature
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        sizes = np.array([len(s.pairs) for s in self.table.sets], dtype=np.float64)
        weights = sizes ** (1.0 / set_temperature)
        self.set_probabilities = weights / weights.sum()
        self._mono_languages = [self._mono_choices(s) for s in self.table.sets]
        self._validate()
        dropped = self.dropped_languages()
        if dropped:
            # Mono batches cannot be drawn from these languages, so mono and hybrid train on
            # fewer languages than cross and random: say so, once, and the trainer records it.
            warnings.warn(
                "monolingual batches leave out language(s) with fewer items than the batch "
                f"size {batch_size}: "
                + "; ".join(f"{name}: {', '.join(langs)}" for name, langs in dropped.items()),
                stacklevel=2,
            )

    def dropped_languages(self) -> dict[str, list[str]]:
        """Per training set, the languages mono batches cannot use (fewer items than a batch).

        Empty for cross and random sampling, and for hybrid with ``alpha`` = 0, which draw no
        mono batches.

        Example:
            >>> sampler.dropped_languages()  # doctest: +SKIP
            {'mlqa-r:train': ['hi']}
        """
        if self.strategy not in ("mono", "hybrid") or (
            self.strategy == "hybrid" and self.alpha == 0
        ):
            return {}
        out: dict[str, list[str]] = {}
        for tset, (usable, _) in zip(self.table.sets, self._mono_languages, strict=True):
            missing = [lang for j, lang in enumerate(tset.languages) if j not in set(usable)]
            if missing:
                out[tset.pairs.name] = missing
        return out

    # -- torch BatchSampler protocol ---------------------------------------------------------
    def __len__(self) -> int:
        return self.steps_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        start = self.epoch * self.steps_per_epoch
        for batch in self.batches(start, stop_step=start + self.steps_per_epoch):
            yield batch.shard(self.rank, self.world_size).tolist()

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch ``__iter__`` yields (as ``DistributedSampler.set_epoch`` does)."""
        self.epoch = epoch

    # -- the sampler proper ------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.table.n_pairs // self.batch_size)

    def batches(self, start_step: int = 0, stop_step: int | None = None) -> Iterator[Batch]:
        """Global batches from ``start_step`` (inclusive) to ``stop_step`` (exclusive, or forever).

        Resuming at step ``k`` replays the pools of ``k``'s epoch up to ``k`` (integers only,
        milliseconds), so the batches are identical to an uninterrupted run's.
        """
        step = (start_step // self.steps_per_epoch) * self.steps_per_epoch
        while stop_step is None or step < stop_step:
            epoch = step // self.steps_per_epoch
            for batch in self._epoch(epoch):
                if batch.step >= start_step and (stop_step is None or batch.step < stop_step):
                    yield batch
                step = batch.step + 1
                if stop_step is not None and step >= stop_step:
                    return

    def _epoch(self, epoch: int) -> Iterator[Batch]:
        rng = np.random.default_rng([self.seed, epoch])
        pools = [self._pools(s, rng) for s in self.table.sets]
        first = epoch * self.steps_per_epoch
        for offset in range(self.steps_per_epoch):
            s = int(rng.choice(len(self.table.sets), p=self.set_probabilities))
            batch_type = self._batch_type(rng)
            items, query, passage = self._draw(s, batch_type, pools[s], rng)
            yield Batch(
                step=first + offset,
                epoch=epoch,
                batch_type=batch_type,
                set_index=s,
                items=items,
                query_languages=query,
                passage_languages=passage,
                codes=self.table.encode(s, items, query, passage),
            )

    def _batch_type(self, rng: np.random.Generator) -> BatchType:
        if self.strategy == "hybrid":
            # Always consume one draw, so the mono/cross choice of step k never depends on
            # how many draws earlier batches needed.
            return "mono" if rng.random() < self.alpha else "cross"
        return self.strategy  # type: ignore[return-value]

    def _pools(self, tset: TrainingSet, rng: np.random.Generator) -> dict[str, object]:
        pools: dict[str, object] = {}
        if self.strategy in ("mono", "hybrid"):
            pools["mono"] = [_Pool(tset.available_in(j), rng) for j in range(tset.n_languages)]
        if self.strategy in ("cross", "hybrid"):
            pools["cross"] = _Pool(tset.multilingual_items(), rng)
        if self.strategy == "random":
            pools["random"] = _Pool(np.flatnonzero(tset.pair_index.ravel() >= 0), rng)
        return pools

    def _draw(
        self, s: int, batch_type: BatchType, pools: dict, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tset = self.table.sets[s]
        size = self.batch_size
        if batch_type == "mono":
            languages, probabilities = self._mono_languages[s]
            language = int(rng.choice(languages, p=probabilities))
            items = pools["mono"][language].take(size)
            query = np.full(size, language, dtype=np.int64)
            return items, query, query.copy()
        if batch_type == "cross":
            items = pools["cross"].take(size)
            available = tset.pair_index[items] >= 0
            counts = available.sum(axis=1)
            # Query language: uniform among the item's languages; passage language: uniform
            # among the others (drawn as a rank among the remaining count-1 languages).
            query_rank = (rng.random(size) * counts).astype(np.int64)
            passage_rank = (rng.random(size) * (counts - 1)).astype(np.int64)
            passage_rank += passage_rank >= query_rank
            ranks = np.cumsum(available, axis=1) - 1
            query = np.argmax(available & (ranks == query_rank[:, None]), axis=1)
            passage = np.argmax(available & (ranks == passage_rank[:, None]), axis=1)
            return items, query.astype(np.int64), passage.astype(np.int64)
        flat = pools["random"].take(size, distinct_key=self._item_of_flat(tset))
        items, language = np.divmod(flat, tset.n_languages)
        return items.astype(np.int64), language.astype(np.int64), language.astype(np.int64)

    def _item_of_flat(self, tset: TrainingSet) -> np.ndarray:
        return np.arange(tset.pair_index.size, dtype=np.int64) // tset.n_languages

    def _mono_choices(self, tset: TrainingSet) -> tuple[np.ndarray, np.ndarray]:
        counts = (tset.pair_index >= 0).sum(axis=0)
        usable = np.flatnonzero(counts >= self.batch_size)
        if self.language_weighting == "size":
            weights = counts[usable].astype(np.float64)
        else:
            weights = np.ones(len(usable))
        total = weights.sum()
        return usable, (weights / total if total else weights)

    def _validate(self) -> None:
        for tset, (usable, _) in zip(self.table.sets, self._mono_languages, strict=True):
            name = tset.pairs.name
            if self.strategy == "random" and tset.n_items < self.batch_size:
                raise ValueError(
                    f"training set {name!r} has {tset.n_items} parallel items, fewer than the "
                    f"batch size {self.batch_size}"
                )
            needs_mono = self.strategy == "mono" or (self.strategy == "hybrid" and self.alpha > 0)
            if needs_mono and len(usable) == 0:
                raise ValueError(
                    f"no language of training set {name!r} has {self.batch_size} items for a "
                    f"monolingual batch; lower the batch size"
                )
            needs_cross = self.strategy == "cross" or (self.strategy == "hybrid" and self.alpha < 1)
            if needs_cross and len(tset.multilingual_items()) < self.batch_size:
                raise ValueError(
                    f"training set {name!r} has {len(tset.multilingual_items())} items in two or "
                    f"more languages, fewer than the batch size {self.batch_size}; cross-lingual "
                    f"batches need parallel data"
                )
