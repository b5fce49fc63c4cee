"""InfoNCE with sentence-transformers' loss signature, masking what is not a negative.

A sentence-transformers loss receives tokenised columns and a ``labels`` tensor, never the
texts, so the text keys langmix's own trainer masks by (:func:`langmix.training.loss.text_key`)
are rebuilt here from token ids (:func:`token_keys`). Kept apart from
:mod:`langmix.integrations.sentence_transformers` (batches, dataset, prompts): a loss is one
concept, as in sentence-transformers' own ``losses/``.

Example:
    >>> loss = SentenceTransformersInfoNCELoss(model, temperature=0.05)  # doctest: +SKIP
    >>> SentenceTransformerTrainer(model, args, train_dataset=adapter.dataset(), loss=loss)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from langmix.training.loss import InfoNCELoss

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["SentenceTransformersInfoNCELoss", "token_keys"]


# Two Mersenne-prime moduli: each product of a token id (< 2**18) and a weight (< 2**31)
# stays below 2**49, so a row sum of up to 2**14 tokens fits int64 without overflow.
_KEY_MODULUS = 2**31 - 1


def token_keys(features: dict[str, Tensor]) -> Tensor:
    """A 62-bit key per row of tokenised texts: equal tokens, equal keys (on every rank).

    Two polynomial hashes of the unpadded token ids (one with the length added), combined;
    the loss compares them to find identical passages.

    Example:
        >>> ids = torch.tensor([[0, 5, 9, 2], [0, 5, 9, 2], [0, 5, 8, 2]])
        >>> keys = token_keys({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
        >>> bool(keys[0] == keys[1]), bool(keys[0] == keys[2])
        (True, False)
    """
    ids = features["input_ids"].to(torch.int64)
    mask = features.get("attention_mask")
    if mask is not None:
        ids = ids.masked_fill(mask == 0, 0)
        length = mask.sum(dim=1).to(torch.int64)
    else:
        length = torch.full((ids.shape[0],), ids.shape[1], dtype=torch.int64, device=ids.device)
    halves = []
    for base in (1_000_003, 998_244_353):
        weights = torch.tensor(_key_weights(base, ids.shape[1]), device=ids.device)
        halves.append(((ids % _KEY_MODULUS) * weights).sum(dim=1) % _KEY_MODULUS)
    # The length joins the first half, so trailing id-0 tokens cannot make two texts equal.
    first = (halves[0] + length) % _KEY_MODULUS
    return first * _KEY_MODULUS + halves[1]  # < 2**62


@functools.cache
def _key_weights(base: int, width: int) -> tuple[int, ...]:
    return tuple(pow(base, j, _KEY_MODULUS) for j in range(1, width + 1))


class SentenceTransformersInfoNCELoss(nn.Module):
    """:class:`langmix.InfoNCELoss` with sentence-transformers' loss signature.

    Columns are (query, positive, hard negatives...) as the trainer passes them; ``labels``
    are the rows' parallel item ids (the ``label`` column of
    :meth:`SentenceTransformersAdapter.dataset`). A query's in-batch candidates that share its
    item id are translations of its positive, and candidates with the same tokens as its
    positive are the same passage (another question's answer): both are masked instead of
    pushed away, as in langmix's own trainer (:func:`token_keys` stands in for the text keys,
    since a loss sees tokens, not texts).

    Args:
        model: The ``SentenceTransformer`` being trained.
        temperature: Softmax temperature (E5: 0.05, i.e. scale 20).
        symmetric: Add the passage-to-query direction.

    Example:
        >>> loss = SentenceTransformersInfoNCELoss(model, temperature=0.05)  # doctest: +SKIP
        >>> SentenceTransformerTrainer(model, args, train_dataset=adapter.dataset(), loss=loss)  # doctest: +SKIP
    """

    def __init__(
        self, model: SentenceTransformer, temperature: float = 0.05, symmetric: bool = False
    ) -> None:
        super().__init__()
        self.model = model
        self.info_nce = InfoNCELoss(temperature=temperature, symmetric=symmetric)

    def forward(
        self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None
    ) -> Tensor:
        """Mean InfoNCE over the batch's queries.

        Args:
            sentence_features: Tokenised columns: queries, positives, then any hard negatives.
            labels: ``[b]`` integer parallel item ids.

        Raises:
            ValueError: Without a positive column or without integer item ids.
        """
        features = list(sentence_features)
        if len(features) < 2:
            raise ValueError(f"need a query and a positive column, got {len(features)} column(s)")
        if labels is None or labels.is_floating_point():
            raise ValueError(
                "SentenceTransformersInfoNCELoss needs integer parallel item ids as the dataset's "
                "'label' column (SentenceTransformersAdapter.dataset() has them)"
            )
        embeddings = [self.model(f)["sentence_embedding"] for f in features]
        negatives = torch.cat(embeddings[2:]) if len(embeddings) > 2 else None
        item_ids = labels.to(embeddings[0].device).reshape(-1)
        # Token keys need token ids; features without them (a custom module) mask by item only.
        keys = [token_keys(f) if "input_ids" in f else None for f in features[1:]]
        if any(k is None for k in keys):
            keys = [None]
        return self.info_nce(
            embeddings[0],
            embeddings[1],
            item_ids,
            negatives,
            positive_keys=keys[0],
            negative_keys=torch.cat(keys[1:]) if len(keys) > 1 else None,  # type: ignore[arg-type]
        )

    def get_config_dict(self) -> dict[str, Any]:
        """Settings for the model card sentence-transformers writes."""
        return {"temperature": self.info_nce.temperature, "symmetric": self.info_nce.symmetric}
