"""What a saved model's ``README.md`` says about it: sentence-transformers' card, filled in.

sentence-transformers writes a model card on every ``save`` from ``model.model_card_data``,
but only its own trainer fills that in. A model langmix trained or distilled otherwise gets
one of two wrong cards: the card of the model it started from (sentence-transformers reuses a
loaded model's ``README.md`` unless the card is tagged ``generated_from_trainer``), so a
student or a fine-tuned model was titled as the base model; or the empty template. This
module fills the same fields sentence-transformers' trainer fills (title, languages, training
data and loss, hyper-parameters, validation log with the kept step, evaluation metrics), so
the card is rendered by sentence-transformers' own template and its YAML header is what the
hub and mteb read. langmix's trainer, distiller and study cells call it; a
``SentenceTransformerTrainer`` user gets the same evaluation section from
:class:`langmix.evaluation.LAReQAEvaluator`.

Example:
    >>> fill_model_card(model, CardFacts(title="langmix hybrid fine-tune of L4",
    ...     base_model="offline:multilingual-e5-small-distilled@L4", languages=["en", "de"],
    ...     training_data=[TrainingData("MLQA-R (training part)", 7000)]))  # doctest: +SKIP
    >>> model.save("out/model")  # README.md now describes the fine-tune  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langmix.outputs import write_text_atomic

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: The tag that makes sentence-transformers render a fresh card on ``save`` instead of
#: writing back the card of the model it loaded.
TRAINED_TAG = "generated_from_trainer"


@dataclass(frozen=True)
class TrainingData:
    """One training set as the card's "Training Dataset" section lists it.

    Attributes:
        name: What the set is, with the part trained on (e.g. "MLQA-R, training part").
        size: Training examples (pairs, or texts for distillation).
        columns: The example's fields.
        loss: The loss's import path.
        loss_settings: The loss's settings, shown as JSON beside it.
    """

    name: str
    size: int
    columns: tuple[str, ...] = ("query", "passage")
    loss: str = "langmix.training.loss.InfoNCELoss"
    loss_settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CardFacts:
    """What langmix knows about a model it made.

    Attributes:
        title: The card's heading.
        base_model: The model it started from, as langmix names it (``offline:...``, a hub
            id or a path). Only a hub id is linked as the card's base model.
        languages: ISO codes of the training languages.
        training_data: The sets trained on.
        hyperparameters: Every setting of the run.
        non_default: The settings that differ from langmix's defaults.
        validation: ``(step, validation loss)`` of every validation.
        kept_step: The step whose weights were saved (bold in the log), if chosen.
    """

    title: str
    base_model: str
    languages: Sequence[str]
    training_data: Sequence[TrainingData]
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    non_default: Mapping[str, Any] = field(default_factory=dict)
    validation: Sequence[tuple[int, float]] = ()
    kept_step: int | None = None


def fill_model_card(model: SentenceTransformer, facts: CardFacts) -> None:
    """Fill ``model.model_card_data`` with ``facts``; the next ``model.save`` writes the card."""
    card = model.model_card_data
    # No hub lookups while saving: the base is stated, not guessed from a local path, and a
    # save must not wait on a network that may be absent.
    card.local_files_only = True
    card.model_name = facts.title
    if _is_hub_id(facts.base_model):
        card.base_model = facts.base_model
    card.set_language(list(facts.languages))
    card.train_datasets = [_dataset_entry(data) for data in facts.training_data]
    card.all_hyperparameters = {k: _shown(v) for k, v in facts.hyperparameters.items()}
    card.non_default_hyperparameters = {k: _shown(v) for k, v in facts.non_default.items()}
    card.training_logs = [
        {"Epoch": 0, "Step": step, "Validation Loss": round(loss, 6)}
        for step, loss in facts.validation
    ]
    card.best_model_step = facts.kept_step
    card.add_tags(["langmix", TRAINED_TAG])


class EvaluationRecord:
    """An evaluation langmix ran, as the card's "Evaluation" section lists it.

    sentence-transformers keys a card's metrics by the evaluator that produced them; a study
    cell is scored by langmix's evaluation pipeline (for LAReQA the code
    :class:`~langmix.evaluation.LAReQAEvaluator` also calls), so this record stands in for
    the evaluator there.

    Args:
        name: The evaluation set's name (e.g. ``xquad-r`` or ``mlqa-r:heldout``).
        description: What kind of evaluation it was (the section's heading).
        primary_metric: The metric printed in bold.
        settings: How it was run (languages, lengths, passages with or without context).
    """

    greater_is_better = True

    def __init__(
        self,
        name: str,
        description: str,
        primary_metric: str,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.primary_metric = f"{name}_{primary_metric}"
        self.settings = dict(settings or {})

    def get_config_dict(self) -> dict[str, Any]:
        return dict(self.settings)


def add_evaluation(
    model: SentenceTransformer,
    record: EvaluationRecord,
    metrics: Mapping[str, float],
) -> None:
    """Put one evaluation's headline metrics on ``model``'s card.

    Not through ``set_evaluation_metrics``: that also appends the primary metric to the
    training log as a row of step 0, which would read as a validation of the untrained model.
    """
    values = {f"{record.name}_{key}": float(value) for key, value in metrics.items()}
    model.model_card_data.eval_results_dict[record] = values


def write_model_card(model: SentenceTransformer, directory: str | os.PathLike[str]) -> Path:
    """Rewrite ``directory/README.md`` from ``model``'s card data (the weights stay).

    For a card that changed after the model was saved (a study cell's evaluations).
    """
    from sentence_transformers.base.model_card import generate_model_card

    card = model.model_card_data
    card.save_dir = str(directory)
    path = Path(directory) / "README.md"
    write_text_atomic(path, generate_model_card(model))
    return path


def _dataset_entry(data: TrainingData) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": data.name,
        "size": data.size,
        "columns": list(data.columns),
        "loss": {"fullname": data.loss},
    }
    if data.loss_settings:
        block = json.dumps(dict(data.loss_settings), indent=4)
        entry["loss"]["config_code"] = "  ```json\n" + _indent(block) + "\n  ```"
    return entry


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _shown(value: Any) -> Any:
    """A setting as the card prints it: lists joined, everything else as is."""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) if value else "[]"
    return value


def _is_hub_id(name: str) -> bool:
    """``owner/name`` that is not a local path nor a langmix offline name."""
    if name.startswith("offline:") or os.path.exists(name) or name.startswith((".", "/", "~")):
        return False
    parts = name.split("/")
    return len(parts) == 2 and all(parts)


__all__ = [
    "TRAINED_TAG",
    "CardFacts",
    "EvaluationRecord",
    "TrainingData",
    "add_evaluation",
    "fill_model_card",
    "write_model_card",
]
