"""The card of a model ``langmix train`` (or a study cell) fine-tuned: what made it.

Example:
    >>> facts = training_facts(args, trainer.train_sets, trainer.split, state)  # doctest: +SKIP
    >>> facts.title  # doctest: +SKIP
    'offline:multilingual-e5-small@L2 fine-tuned by langmix on hybrid batches (alpha = 0.5)'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from langmix.data.pairs import ParallelPairs
from langmix.models.model_card import CardFacts, TrainingData
from langmix.training.arguments import NON_SHAPING, TrainArguments

#: What each strategy's batches are, for the card's title.
_BATCHES = {
    "mono": "monolingual batches (X-X-mono)",
    "cross": "cross-lingual batches (X-Y)",
    "random": "pooled multilingual batches (X-X)",
}


def training_facts(
    args: TrainArguments,
    train_sets: Sequence[ParallelPairs],
    split: Mapping[str, Mapping[str, Any]],
    history: Sequence[Mapping[str, float]],
    kept_step: int | None,
) -> CardFacts:
    """The card of a run: title, data (with the split's hashes), settings, validation log.

    Args:
        args: The run's settings.
        train_sets: The training parts trained on.
        split: ``split_digests`` of the training sets: which groups each part held, by hash.
        history: The validations, ``{"step", "validation_loss"}`` each.
        kept_step: The step whose weights the model holds (``None``: the last).
    """
    batches = _BATCHES.get(args.sampling, f"hybrid batches (alpha = {args.alpha})")
    languages = sorted({language for pairs in train_sets for language in pairs.languages})
    loss = {"temperature": args.temperature, "symmetric": args.symmetric}
    data = [
        TrainingData(
            name=f"{pairs.name} (split version {args.split_version})",
            size=len(pairs),
            loss_settings=loss,
        )
        for pairs in train_sets
    ]
    settings = {key: value for key, value in args.to_dict().items() if key not in NON_SHAPING}
    for name, parts in split.items():
        for part, value in parts.items():
            settings[f"split.{name}.{part}"] = value
    return CardFacts(
        title=f"{args.model} fine-tuned by langmix on {batches}",
        base_model=args.model,
        languages=languages,
        training_data=data,
        hyperparameters=settings,
        non_default={k: v for k, v in settings.items() if _differs(k, v)},
        validation=[(int(h["step"]), float(h["validation_loss"])) for h in history],
        kept_step=kept_step,
    )


def _differs(key: str, value: Any) -> bool:
    """Whether ``key`` is set away from :class:`TrainArguments`' default (required: always)."""
    defaults = {f.name: f for f in dataclasses.fields(TrainArguments)}
    found = defaults.get(key)
    if found is None:  # the split's hashes: facts about the data, not settings
        return False
    if found.default is not dataclasses.MISSING:
        return value != found.default
    if found.default_factory is not dataclasses.MISSING:
        return value != found.default_factory()
    return True


__all__ = ["training_facts"]
