"""Parallel training pairs: (query, positive) per language, keyed by a parallel id.

Language-aware samplers need, for each parallel item, its (query, positive passage) in every
language it exists in: a monolingual batch takes query and passage from one language, a
cross-lingual one from two. :class:`ParallelPairs` holds exactly that, built from any
LAReQA-format set or from a user's JSONL file.

User JSONL format (one object per line; lines with the same ``id`` are translations)::

    {"id": "q17", "language": "de", "query": "Wer ...?", "positive": "Der ...",
     "group": "article-3", "negatives": ["..."]}

``id``, ``language``, ``query`` and ``positive`` are required; ``group`` (items that must
land on the same side of a train/validation split, such as questions about one article;
default: the id) and ``negatives`` (hard negatives, passages in the same language) are
optional.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from langmix.data.errors import DataError, no_records, repeated
from langmix.data.jsonl import json_object, text_lines
from langmix.data.lareqa import parse_languages
from langmix.data.records import LareqaDataset
from langmix.outputs import atomic_path

#: Split versions of :meth:`ParallelPairs.partition`.
SPLIT_VERSIONS = (1, 2)


@dataclass(frozen=True, slots=True)
class Pair:
    """One (query, positive) pair in one language.

    Example:
        >>> Pair("q1", "de", "Wer?", "Er.", "a0").language
        'de'
    """

    parallel_id: str
    language: str
    query: str
    positive: str
    group: str
    negatives: tuple[str, ...] = ()


@dataclass
class ParallelPairs:
    """Training pairs grouped by parallel id.

    Attributes:
        name: Where the pairs came from.
        languages: Languages present, in a stable order.
        pairs: All pairs.
        by_id: ``parallel_id -> {language: index into pairs}``.

    Example:
        >>> pairs = ParallelPairs.from_lareqa(load_lareqa("mlqa-r"))  # doctest: +SKIP
        >>> train, val = pairs.split(validation_fraction=0.1, seed=0)  # doctest: +SKIP
    """

    name: str
    languages: tuple[str, ...]
    pairs: list[Pair]
    by_id: dict[str, dict[str, int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_id: dict[str, dict[str, int]] = {}
        for i, pair in enumerate(self.pairs):
            by_id.setdefault(pair.parallel_id, {})[pair.language] = i
        self.by_id = by_id

    def __len__(self) -> int:
        return len(self.pairs)

    @classmethod
    def from_lareqa(cls, dataset: LareqaDataset, *, with_context: bool = True) -> ParallelPairs:
        """Every query with its answer sentence (and paragraph) as the positive.

        Groups are the connected components of questions that share an article in any
        language, so a split by group never puts the same article, in any language, on both
        sides (in MLQA-R, article indices differ between languages, hence the components).
        """
        groups = article_groups(dataset)
        pairs = [
            Pair(
                q.parallel_id,
                q.language,
                q.text,
                dataset.candidates[dataset.candidate_index(q.answer_id)].passage(with_context),
                groups[q.parallel_id],
            )
            for q in dataset.queries
        ]
        return cls(dataset.name, dataset.languages, pairs)

    def select(self, languages: Iterable[str]) -> ParallelPairs:
        """Keep only some languages (raises ``ValueError`` naming unknown ones)."""
        chosen = parse_languages(list(languages), self.languages)
        keep = set(chosen)
        return ParallelPairs(self.name, chosen, [p for p in self.pairs if p.language in keep])

    def split(
        self, validation_fraction: float = 0.1, seed: int = 0, *, test_fraction: float = 0.0
    ) -> tuple[ParallelPairs, ParallelPairs]:
        """Split into train and validation by group, so no group is on both sides.

        With ``test_fraction`` > 0 the test part of :meth:`partition` is left out of both.

        Args:
            validation_fraction: Share of groups (approximately, of items) held out.
            seed: Seed of the group shuffle; the split depends only on it and the data.
            test_fraction: Share of groups set aside as the untouched test part.

        Raises:
            ValueError: If a fraction is outside [0, 1) or a side would be empty.
        """
        parts = self.partition(validation_fraction, test_fraction, seed)
        return parts.train, parts.validation

    def partition(
        self,
        validation_fraction: float = 0.1,
        test_fraction: float = 0.0,
        seed: int = 0,
        *,
        version: int = 1,
    ) -> SplitParts:
        """Split three ways by group: train, validation (checkpoint choice), test (untouched).

        The groups are shuffled once with ``seed``. Version 1: the first ``test_fraction``
        of them form the test part and the next ``validation_fraction`` the validation
        part. Version 2 keeps version 1's train and validation parts and takes its test
        part from version 1's test groups minus the first ``validation_fraction`` of the
        order: those were the validation part of a split without a test part (the same
        seed and fraction, ``test_fraction = 0``), so they chose checkpoints there and are
        not untouched. They are *retired*: in no part. The train part is the same in both
        versions, so what was trained (or distilled) on under one is trained on under the
        other.

        Args:
            validation_fraction: Share of groups for validation, in (0, 1).
            test_fraction: Share of groups for the test part, in [0, 1) (0: none).
            seed: Seed of the group shuffle.
            version: 1 or 2, as above.

        Raises:
            ValueError: If a fraction or the version is out of range or a part would be
                empty.

        Example:
            >>> pairs = ParallelPairs("toy", ("en",), [
            ...     Pair(f"q{i}", "en", "q?", "a.", f"g{i}") for i in range(10)])
            >>> parts = pairs.partition(0.2, 0.3, seed=0)
            >>> len(parts.train), len(parts.validation), len(parts.test)
            (5, 2, 3)
            >>> parts.groups("train").isdisjoint(parts.groups("test"))
            True
            >>> fresh = pairs.partition(0.2, 0.3, seed=0, version=2)
            >>> len(fresh.train), len(fresh.validation), len(fresh.test), len(fresh.retired)
            (5, 2, 1, 2)
            >>> fresh.groups("retired") == pairs.partition(0.2, seed=0).groups("validation")
            True
        """
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
        if not 0.0 <= test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
        if version not in SPLIT_VERSIONS:
            raise ValueError(f"split version must be one of {SPLIT_VERSIONS}, got {version}")
        groups = sorted({p.group for p in self.pairs})
        order = np.random.default_rng(seed).permutation(len(groups))
        n_test = max(1, round(test_fraction * len(groups))) if test_fraction else 0
        n_val = max(1, round(validation_fraction * len(groups)))
        if n_test + n_val >= len(groups):
            raise ValueError(f"{len(groups)} group(s) are too few to split")
        n_retired = min(n_val, n_test) if version == 2 else 0
        if n_test and n_retired >= n_test:
            raise ValueError(
                f"split version 2 takes its test part from the first {n_test} groups minus "
                f"the {n_val} that validated before a test part existed; test_fraction "
                f"({test_fraction}) must exceed validation_fraction ({validation_fraction})"
            )
        retired = {groups[i] for i in order[:n_retired]}
        test = {groups[i] for i in order[n_retired:n_test]}
        held_out = {groups[i] for i in order[n_test : n_test + n_val]}
        parts: dict[str, list[Pair]] = {"train": [], "validation": [], "test": [], "retired": []}
        for p in self.pairs:
            if p.group in retired:
                side = "retired"
            elif p.group in test:
                side = "test"
            else:
                side = "validation" if p.group in held_out else "train"
            parts[side].append(p)
        return SplitParts(
            *(ParallelPairs(f"{self.name}:{side}", self.languages, parts[side]) for side in parts),
            version=version,
        )

    def to_jsonl(self, path: str | os.PathLike[str]) -> None:
        """Write the pairs in the user JSONL format (atomically)."""
        with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as out:
            for p in self.pairs:
                row = {
                    "id": p.parallel_id,
                    "language": p.language,
                    "query": p.query,
                    "positive": p.positive,
                    "group": p.group,
                }
                if p.negatives:
                    row["negatives"] = list(p.negatives)
                out.write(json.dumps(row, ensure_ascii=False) + "\n")


@dataclass(frozen=True)
class SplitParts:
    """The three group-disjoint parts of a training set (see :meth:`ParallelPairs.partition`).

    Example:
        >>> parts = pairs.partition(0.1, 0.2)  # doctest: +SKIP
        >>> parts.digest()["test"]  # doctest: +SKIP
        'c0ffee...'
    """

    train: ParallelPairs
    validation: ParallelPairs
    test: ParallelPairs
    retired: ParallelPairs
    version: int = 1

    def groups(self, part: str) -> set[str]:
        """The group ids of one part (``train``, ``validation``, ``test`` or ``retired``)."""
        return {p.group for p in getattr(self, part).pairs}

    def digest(self) -> dict[str, str | int]:
        """A short hash of each part's sorted group ids and the group counts.

        Results record it, so a reader can check which groups each part held and that two
        runs used the same split. Version 2 adds its version and its retired groups;
        version 1's digest is unchanged, so earlier results still match it.
        """
        out: dict[str, str | int] = {}
        parts = ("train", "validation", "test") + (("retired",) if self.version > 1 else ())
        for part in parts:
            ids = sorted(self.groups(part))
            out[part] = hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:16]
            out[f"{part}_groups"] = len(ids)
        if self.version > 1:
            out["version"] = self.version
        return out


def article_groups(dataset: LareqaDataset) -> dict[str, str]:
    """Map each parallel id to its article group: union-find over shared (language, article).

    In XQuAD-R (parallel articles) a group is one article; in MLQA-R, whose article indices
    differ between languages, it is the connected component of questions sharing an article
    in any language. Splits keep groups whole, and the study's statistics may resample
    them as the top-level clusters.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_in_article: dict[tuple[str, int], str] = {}
    for q in dataset.queries:
        key = (q.language, q.article)
        if key in first_in_article:
            a, b = find(q.parallel_id), find(first_in_article[key])
            if a != b:
                parent[max(a, b)] = min(a, b)
        else:
            first_in_article[key] = q.parallel_id
            find(q.parallel_id)
    return {pid: f"g:{find(pid)}" for pid in parent}


def read_pairs_jsonl(
    path: str | os.PathLike[str], languages: Iterable[str] | None = None
) -> ParallelPairs:
    """Read a user's parallel training data (format in the module docstring).

    Args:
        path: The JSONL file.
        languages: If given, the languages to keep; a language not in the file is an error.

    Raises:
        DataError: Naming the file and line for bad JSON, missing or empty fields, a
            repeated (id, language), or ``negatives`` that is not a list of strings.

    Example:
        >>> pairs = read_pairs_jsonl("my-parallel.jsonl", languages=["en", "de"])  # doctest: +SKIP
    """
    path = Path(path)
    pairs: list[Pair] = []
    seen: dict[tuple[str, str], int] = {}
    for number, line in text_lines(path):
        pair = _parse_pair(path, number, line)
        key = (pair.parallel_id, pair.language)
        if key in seen:
            raise repeated(
                path,
                f"id {pair.parallel_id!r} in language {pair.language!r}",
                record=f"line {number}",
                first=f"line {seen[key]}",
            )
        seen[key] = number
        pairs.append(pair)
    if not pairs:
        raise no_records(path, "training pairs")
    found = tuple(dict.fromkeys(sorted(p.language for p in pairs)))
    result = ParallelPairs(path.name, found, pairs)
    if languages is not None:
        try:
            result = result.select(languages)
        except ValueError as exc:
            raise DataError(path, str(exc)) from exc
    return result


def _parse_pair(path: Path, number: int, line: str) -> Pair:
    where = f"line {number}"
    row = json_object(path, where, line)
    values = {}
    for key in ("id", "language", "query", "positive"):
        value = row.get(key)
        if value is None:
            raise DataError(path, f"missing field {key!r}", record=where)
        if isinstance(value, int) and key == "id":
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise DataError(path, f"field {key!r} must be a non-empty string", record=where)
        values[key] = value
    negatives = row.get("negatives", [])
    if not isinstance(negatives, list) or not all(
        isinstance(n, str) and n.strip() for n in negatives
    ):
        raise DataError(path, "'negatives' must be a list of non-empty strings", record=where)
    group = row.get("group", values["id"])
    return Pair(
        values["id"],
        values["language"],
        values["query"],
        values["positive"],
        str(group),
        tuple(negatives),
    )
