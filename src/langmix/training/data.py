"""Training sets from names or files, split into train and validation by group."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from langmix.data.lareqa import LAREQA_DATASETS, load_lareqa
from langmix.data.pairs import ParallelPairs, read_pairs_jsonl
from langmix.training.arguments import TrainArguments


def load_training_pairs(
    spec: str,
    languages: Sequence[str] | None = None,
    *,
    data_dir: str | None = None,
    with_context: bool = True,
    max_train_queries: int | None = None,
    hard_negatives: int = 0,
    seed: int = 0,
) -> ParallelPairs:
    """One training set: ``xquad-r``, ``mlqa-r`` (LAReQA), ``mmarco`` (hub) or a JSONL path.

    Example:
        >>> pairs = load_training_pairs("mlqa-r", ["en", "de"], data_dir="../shared/data")  # doctest: +SKIP
    """
    name = spec.lower()
    if name in LAREQA_DATASETS:
        dataset = load_lareqa(name, list(languages) if languages else None, data_dir=data_dir)
        return ParallelPairs.from_lareqa(dataset, with_context=with_context)
    if name == "mmarco":
        from langmix.data.mmarco import MMARCO_LANGUAGES, load_mmarco

        return load_mmarco(
            list(languages) if languages else list(MMARCO_LANGUAGES),
            max_queries=max_train_queries,
            seed=seed,
            data_dir=data_dir,
            hard_negatives=hard_negatives,
        )
    path = Path(spec)
    if path.suffix == ".jsonl" or path.exists():
        return read_pairs_jsonl(path, languages)
    known = ", ".join([*sorted(LAREQA_DATASETS), "mmarco"])
    raise ValueError(
        f"unknown training set {spec!r}: use one of {known} or a path to a .jsonl file"
    )


def load_training_sets(args: TrainArguments) -> list[ParallelPairs]:
    """Every training set ``args`` names, loaded with its languages and options.

    Example:
        >>> sets = load_training_sets(TrainArguments(model="m", train=["mlqa-r"],
        ...                           output_dir="o", max_steps=1))  # doctest: +SKIP
    """
    return [
        load_training_pairs(
            spec,
            args.languages,
            data_dir=args.data_dir,
            with_context=args.with_context,
            max_train_queries=args.max_train_queries,
            hard_negatives=args.hard_negatives,
            seed=args.split_seed,
        )
        for spec in args.train
    ]


def split_training_sets(
    sets: Sequence[ParallelPairs],
    validation_fraction: float,
    seed: int,
    test_fraction: float = 0.0,
    version: int = 1,
) -> tuple[list[ParallelPairs], list[ParallelPairs]]:
    """Hold out ``validation_fraction`` of each set's groups (none if the fraction is 0).

    ``test_fraction`` of the groups go to neither side: they are the untouched test part
    (:func:`test_parts`).
    """
    if validation_fraction == 0:
        return list(sets), []
    train, validation = [], []
    for pairs in sets:
        parts = pairs.partition(validation_fraction, test_fraction, seed, version=version)
        train.append(parts.train)
        validation.append(parts.validation)
    return train, validation


def split_digests(
    sets: Sequence[ParallelPairs],
    validation_fraction: float,
    seed: int,
    test_fraction: float,
    version: int = 1,
) -> dict[str, dict[str, str | int]]:
    """Per training set, the hash and size of each part's groups (empty without validation).

    Example:
        >>> split_digests(sets, 0.1, 0, 0.2)["mlqa-r"]["test_groups"]  # doctest: +SKIP
        93
    """
    if validation_fraction == 0:
        return {}
    return {
        pairs.name: pairs.partition(
            validation_fraction, test_fraction, seed, version=version
        ).digest()
        for pairs in sets
    }


def describe_sets(sets: Sequence[ParallelPairs]) -> list[dict[str, object]]:
    """Name, languages, pairs and items of each set, as ``config.json`` records them."""
    return [
        {
            "name": pairs.name,
            "languages": list(pairs.languages),
            "pairs": len(pairs),
            "items": len(pairs.by_id),
        }
        for pairs in sets
    ]
