"""LAReQA as a sentence-transformers evaluator, for ``SentenceTransformerTrainer`` runs.

A user training with sentence-transformers' own trainer (on langmix batches,
:mod:`langmix.integrations.sentence_transformers`, or on anything else) passes
``evaluator=LAReQAEvaluator(dataset)`` and gets LAReQA's numbers during training, in the
trainer's logs and trackers, for ``metric_for_best_model`` and on the saved model's card. The
numbers are those of ``langmix eval`` and a study: the evaluator calls the same encoding and
metric code (:func:`~langmix.evaluation.lareqa.encode_lareqa`,
:func:`~langmix.evaluation.lareqa.score_lareqa`), with the model's ``query``/``passage``
prompts and the same truncation lengths.

Choosing checkpoints on a test set is the user's to avoid: pass a validation set here (for
MLQA-R, the validation part of :meth:`~langmix.data.pairs.ParallelPairs.partition`), and the
test set only to a final evaluation.

Example:
    >>> from langmix.data import load_lareqa
    >>> evaluator = LAReQAEvaluator(load_lareqa("xquad-r", ["en", "de"]).first_articles(2),
    ...     name="xquad-r")  # doctest: +SKIP
    >>> evaluator(model)["xquad-r_map_multi"]  # doctest: +SKIP
    0.41
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sentence_transformers.evaluation import SentenceEvaluator

from langmix.data.records import LareqaDataset
from langmix.evaluation.lareqa import encode_lareqa, score_lareqa

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: The metrics an evaluator returns (before its name prefix), from ``LareqaResult.headline``.
METRICS = ("map_mono", "map_cross", "map_multi", "r1_mono", "r1_cross", "r10_multi")


class LAReQAEvaluator(SentenceEvaluator):
    """LAReQA's mono, cross and multilingual mAP and recall of a model on one dataset.

    Args:
        dataset: The questions and candidate pool (:func:`langmix.data.load_lareqa`).
        name: Prefix of the returned metric names (``{name}_map_multi``, ...).
        query_max_length: Query truncation, in tokens.
        passage_max_length: Passage truncation, in tokens.
        with_context: Passages with their paragraph (LAReQA's default) or the sentence only.
        batch_size: Encoding batch size.
        primary_metric: The metric ``metric_for_best_model`` and the card's bold row use.
        rank_distance: Also return the language-bias rank distance (lower is better).

    Raises:
        ValueError: An unknown ``primary_metric``, or lengths below 1.
    """

    def __init__(
        self,
        dataset: LareqaDataset,
        *,
        name: str = "lareqa",
        query_max_length: int = 64,
        passage_max_length: int = 128,
        with_context: bool = True,
        batch_size: int = 64,
        primary_metric: str = "map_multi",
        rank_distance: bool = False,
    ) -> None:
        super().__init__()
        if primary_metric not in METRICS:
            raise ValueError(
                f"primary_metric must be one of {', '.join(METRICS)}, got {primary_metric!r}"
            )
        if min(query_max_length, passage_max_length, batch_size) < 1:
            raise ValueError("query_max_length, passage_max_length and batch_size must be >= 1")
        self.dataset = dataset
        self.name = name
        self.query_max_length = query_max_length
        self.passage_max_length = passage_max_length
        self.with_context = with_context
        self.batch_size = batch_size
        self.rank_distance = rank_distance
        self.primary_metric = primary_metric
        self.greater_is_better = True

    def __call__(
        self,
        model: SentenceTransformer,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
    ) -> dict[str, float]:
        """Encode the dataset with ``model`` and score it; the metrics, name-prefixed."""
        embeddings = encode_lareqa(
            model,
            self.dataset,
            batch_size=self.batch_size,
            query_max_length=self.query_max_length,
            passage_max_length=self.passage_max_length,
            with_context=self.with_context,
            show_progress=False,
        )
        headline = score_lareqa(self.dataset, embeddings).headline()
        keys = METRICS + (("rank_distance",) if self.rank_distance else ())
        metrics = self.prefix_name_to_metrics({k: float(headline[k]) for k in keys}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    @property
    def description(self) -> str:
        return "LAReQA retrieval"

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "languages": list(self.dataset.languages),
            "questions": len(self.dataset.queries),
            "candidates": len(self.dataset.candidates),
            "query_max_length": self.query_max_length,
            "passage_max_length": self.passage_max_length,
            "with_context": self.with_context,
        }


__all__ = ["METRICS", "LAReQAEvaluator"]
