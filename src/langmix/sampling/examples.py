"""A compact, integer view of parallel training data that samplers draw from.

A training *example* is a (parallel item, query language, passage language) triple of one
training set. Samplers never touch text: they work on the availability matrix built here and
emit integer example codes, which :class:`ExampleTable` turns back into texts. Keeping the
sampler on integers is what makes it cheap enough to regenerate any step's batch from the
seed alone (that is how training resumes) and easy to test without a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from langmix.data.pairs import ParallelPairs


@dataclass(frozen=True)
class Example:
    """One training example, decoded: a query and its positive, in possibly different languages.

    Attributes:
        code: The example's integer code (unique across all training sets of a table).
        parallel_id: The parallel item's id, as in the data.
        item: Global integer id of the parallel item (equal for all its translations); the
            loss masks in-batch negatives that share it.
        query_language: Language of the query.
        passage_language: Language of the positive passage.
        query: Query text.
        positive: Positive passage text.
        negatives: Hard negatives in the passage language (may be empty).
    """

    code: int
    parallel_id: str
    item: int
    query_language: str
    passage_language: str
    query: str
    positive: str
    negatives: tuple[str, ...]


class TrainingSet:
    """One :class:`ParallelPairs` as an availability matrix over (item, language).

    Attributes:
        pairs: The underlying pairs.
        languages: Language order used by the integer codes.
        item_ids: Parallel ids in code order.
        pair_index: ``int64[n_items, n_languages]``, the index into ``pairs.pairs`` of the
            item's pair in that language, or -1 where the item has no such translation.

    Example:
        >>> s = TrainingSet(pairs)  # doctest: +SKIP
        >>> s.available_in("de").size  # items with a German version  # doctest: +SKIP
    """

    def __init__(self, pairs: ParallelPairs) -> None:
        if len(pairs) == 0:
            raise ValueError(f"training set {pairs.name!r} has no pairs")
        self.pairs = pairs
        self.languages = tuple(pairs.languages)
        self.item_ids = tuple(pairs.by_id)
        column = {lang: j for j, lang in enumerate(self.languages)}
        matrix = np.full((len(self.item_ids), len(self.languages)), -1, dtype=np.int64)
        for i, pid in enumerate(self.item_ids):
            for lang, pair_position in pairs.by_id[pid].items():
                matrix[i, column[lang]] = pair_position
        self.pair_index = matrix

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_languages(self) -> int:
        return len(self.languages)

    def available_in(self, language: int | str) -> np.ndarray:
        """Items that exist in one language (sorted item numbers)."""
        j = self.languages.index(language) if isinstance(language, str) else language
        return np.flatnonzero(self.pair_index[:, j] >= 0)

    def multilingual_items(self) -> np.ndarray:
        """Items that exist in at least two languages (the only ones a cross pair can use)."""
        return np.flatnonzero((self.pair_index >= 0).sum(axis=1) >= 2)


class ExampleTable:
    """Several training sets behind one integer code space.

    Codes are ``offset[s] + (item * L + query_language) * L + passage_language`` with ``L``
    the number of languages of set ``s``, so a code is decodable without a lookup table and
    any (item, language pair) has a code, even for mMARCO-sized data.

    Example:
        >>> table = ExampleTable([pairs])  # doctest: +SKIP
        >>> table.example(table.encode(0, item=3, query_language=0, passage_language=2))  # doctest: +SKIP
    """

    def __init__(self, sets: Sequence[ParallelPairs]) -> None:
        if not sets:
            raise ValueError("at least one training set is needed")
        self.sets = [TrainingSet(p) for p in sets]
        sizes = [s.n_items * s.n_languages**2 for s in self.sets]
        self.code_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        item_counts = [s.n_items for s in self.sets]
        self.item_offsets = np.concatenate([[0], np.cumsum(item_counts)]).astype(np.int64)

    def __len__(self) -> int:
        """Size of the code space (not the number of pairs)."""
        return int(self.code_offsets[-1])

    @property
    def n_pairs(self) -> int:
        """Number of (query, positive) pairs over all sets: the unit of an epoch."""
        return sum(len(s.pairs) for s in self.sets)

    def encode(
        self,
        set_index: int,
        item: np.ndarray | int,
        query_language: np.ndarray | int,
        passage_language: np.ndarray | int,
    ) -> np.ndarray:
        """Codes of examples of one set (vectorised over the array arguments)."""
        n_lang = self.sets[set_index].n_languages
        local = (np.asarray(item) * n_lang + np.asarray(query_language)) * n_lang
        return self.code_offsets[set_index] + local + np.asarray(passage_language)

    def decode(self, code: int) -> tuple[int, int, int, int]:
        """``(set_index, item, query_language, passage_language)`` of a code."""
        if not 0 <= code < len(self):
            raise IndexError(f"example code {code} outside [0, {len(self)})")
        s = int(np.searchsorted(self.code_offsets, code, side="right") - 1)
        n_lang = self.sets[s].n_languages
        local = int(code - self.code_offsets[s])
        rest, passage = divmod(local, n_lang)
        item, query = divmod(rest, n_lang)
        return s, item, query, passage

    def example(self, code: int) -> Example:
        """Decode a code into texts; raises ``KeyError`` if that translation does not exist."""
        s, item, q, p = self.decode(code)
        tset = self.sets[s]
        q_pair, p_pair = tset.pair_index[item, q], tset.pair_index[item, p]
        if q_pair < 0 or p_pair < 0:
            raise KeyError(
                f"item {tset.item_ids[item]!r} of {tset.pairs.name!r} has no "
                f"{tset.languages[q] if q_pair < 0 else tset.languages[p]} version"
            )
        query, passage = tset.pairs.pairs[q_pair], tset.pairs.pairs[p_pair]
        return Example(
            code=int(code),
            parallel_id=query.parallel_id,
            item=int(self.item_offsets[s] + item),
            query_language=query.language,
            passage_language=passage.language,
            query=query.query,
            positive=passage.positive,
            negatives=passage.negatives,
        )

    def __getitem__(self, code: int) -> Example:
        # Makes the table a map-style dataset: DataLoader(table, batch_sampler=sampler).
        return self.example(int(code))
