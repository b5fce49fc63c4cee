"""InfoNCE over in-batch negatives, with false-negative masking and cross-device gathering.

Why not sentence-transformers' ``MultipleNegativesRankingLoss``: it treats every other
passage in the batch as a negative. In parallel multilingual data a batch may hold a
translation of the query's own positive, or the very same sentence as another question's
positive (MLQA-R asks several questions about one answer sentence), and both are *relevant*
passages the loss must not push away. Here such columns are masked: by parallel item id
(translations) and by a key of the passage text (identical texts, hard negatives included).
It also gathers embeddings
across ranks with autograd, so every rank's queries see the global batch's passages and the
gradient equals the single-process one on the same global batch (tested with 2 processes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F
from packaging.version import Version
from torch import Tensor, nn

#: The first torch whose functional collectives have ``all_gather_single``: the name arrived
#: with 2.13 (the ``_single`` renaming, pytorch#186125), on top of the autograd support the
#: functional all-gather itself gained in 2.11 (pytorch#168140). A 2.13 pre-release may predate
#: the rename, so it takes the path every version has.
FUNCTIONAL_GATHER_SINCE = Version("2.13")


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _functional_gather(tensor: Tensor) -> Tensor:
    from torch.distributed._functional_collectives import all_gather_single

    return all_gather_single(tensor, 0, torch.distributed.group.WORLD)


def _autograd_function_gather(tensor: Tensor) -> Tensor:
    # Deprecated in newer torch in favour of the functional collectives, and the only
    # autograd-aware all-gather of the older ones (its backward runs on gloo too).
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor), dim=0)


@cache
def gather_implementation(version: str | None = None) -> Callable[[Tensor], Tensor]:
    """The autograd-aware all-gather for a torch version (default: the installed one).

    Example:
        >>> gather_implementation("2.13.0+cpu").__name__
        '_functional_gather'
        >>> gather_implementation("2.12.1").__name__
        '_autograd_function_gather'
    """
    installed = Version(version or torch.__version__)
    if installed >= FUNCTIONAL_GATHER_SINCE:
        return _functional_gather
    return _autograd_function_gather


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, keeping the local part's gradient.

    The gather is autograd-aware: its backward sums the gradients that every rank's loss
    sends to this rank's slice (a reduce-scatter). Outside DDP it is the identity.
    """
    if not _distributed() or torch.distributed.get_world_size() == 1:
        return tensor
    return gather_implementation()(tensor.contiguous())


def gather_ids(tensor: Tensor) -> Tensor:
    """Concatenate an integer tensor from every rank (no gradient)."""
    if not _distributed() or torch.distributed.get_world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def _rank() -> int:
    return torch.distributed.get_rank() if _distributed() else 0


class InfoNCELoss(nn.Module):
    """Contrastive loss of queries against the batch's positives (and hard negatives).

    For query ``i`` with positive ``p_i`` the loss is
    ``-log softmax_j(cos(q_i, c_j) / temperature)[p_i]`` over the candidates ``c`` = all
    positives of the global batch followed by all hard negatives. Candidates that are relevant
    to query ``i`` rather than negative are masked out: another example's positive of the same
    parallel item (a translation), and, when text keys are given, any other positive or hard
    negative whose text is the same as ``p_i``'s. With ``symmetric=True`` the
    passage-to-query loss over the batch's queries is added and the two are averaged.

    After each call, :attr:`last_masked` counts the masked entries of this rank's rows:
    ``translations``, ``same_text`` (other positives with ``p_i``'s text) and
    ``hard_negatives`` (hard negatives with ``p_i``'s text).

    Args:
        temperature: Softmax temperature. The paper states none; sentence-transformers'
            ``MultipleNegativesRankingLoss`` uses scale 20 (0.05) and E5 fine-tunes at 0.01.
            langmix defaults to 0.05 and a study records the value it used.
        symmetric: Add the passage-to-query direction.

    Example:
        >>> loss = InfoNCELoss(temperature=0.05)
        >>> q, p = torch.eye(2), torch.eye(2)
        >>> round(float(loss(q, p, torch.tensor([0, 1]))), 6)
        0.0
    """

    def __init__(self, temperature: float = 0.05, symmetric: bool = False) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.symmetric = symmetric
        self.last_masked: dict[str, int] = {"translations": 0, "same_text": 0, "hard_negatives": 0}

    def forward(
        self,
        queries: Tensor,
        positives: Tensor,
        item_ids: Tensor,
        negatives: Tensor | None = None,
        positive_keys: Tensor | None = None,
        negative_keys: Tensor | None = None,
    ) -> Tensor:
        """Mean loss over this rank's queries.

        Args:
            queries: ``[b, d]`` query embeddings of this rank.
            positives: ``[b, d]`` their positives.
            item_ids: ``[b]`` parallel item ids (equal ids are translations of each other).
            negatives: ``[b * k, d]`` hard negatives, or ``None``.
            positive_keys: ``[b]`` integer keys of the positives' texts (equal key: same
                text, see :func:`text_key`), or ``None`` to mask by item id only.
            negative_keys: ``[b * k]`` keys of the hard negatives' texts.
        """
        if queries.shape != positives.shape or queries.shape[0] != item_ids.shape[0]:
            raise ValueError(
                f"shape mismatch: queries {tuple(queries.shape)}, positives "
                f"{tuple(positives.shape)}, item_ids {tuple(item_ids.shape)}"
            )
        queries = F.normalize(queries, dim=-1)
        positives = F.normalize(positives, dim=-1)
        local = queries.shape[0]
        offset = _rank() * local
        all_positives = gather_with_grad(positives)
        all_items = gather_ids(item_ids)
        targets = torch.arange(local, device=queries.device) + offset
        rows = torch.arange(local, device=queries.device)
        # Mask translations of the query's own positive: same item, other column.
        same_item = item_ids[:, None] == all_items[None, :]
        same_item[rows, targets] = False
        # ... and other positives that are the very same text (another question's answer).
        same_text = torch.zeros_like(same_item)
        if positive_keys is not None:
            all_keys = gather_ids(positive_keys)
            same_text = (positive_keys[:, None] == all_keys[None, :]) & ~same_item
            same_text[rows, targets] = False
        mask = same_item | same_text
        candidates = all_positives
        negative_hits = 0
        if negatives is not None:
            all_negatives = gather_with_grad(F.normalize(negatives, dim=-1))
            candidates = torch.cat([all_positives, all_negatives], dim=0)
            negative_mask = torch.zeros(
                local, all_negatives.shape[0], dtype=torch.bool, device=mask.device
            )
            if positive_keys is not None and negative_keys is not None:
                # A hard negative mined for another row may be this row's positive.
                negative_mask = positive_keys[:, None] == gather_ids(negative_keys)[None, :]
                negative_hits = int(negative_mask.sum())
            mask = torch.cat([mask, negative_mask], dim=1)
        self.last_masked = {
            "translations": int(same_item.sum()),
            "same_text": int(same_text.sum()),
            "hard_negatives": negative_hits,
        }
        logits = (queries @ candidates.T) / self.temperature
        logits = logits.masked_fill(mask, torch.finfo(logits.dtype).min)
        loss = F.cross_entropy(logits, targets)
        if not self.symmetric:
            return loss
        all_queries = gather_with_grad(queries)
        reverse = (positives @ all_queries.T) / self.temperature
        reverse = reverse.masked_fill(same_item | same_text, torch.finfo(reverse.dtype).min)
        return (loss + F.cross_entropy(reverse, targets)) / 2


def text_key(text: str) -> int:
    """A 63-bit key of a text: equal texts, equal keys, on every rank and in every process.

    Python's ``hash`` of a string differs between processes, so DDP ranks could not compare
    theirs; a BLAKE2b digest can be.

    Example:
        >>> text_key("Berlin is the capital.") == text_key("Berlin is the capital.")
        True
        >>> text_key("a") == text_key("b")
        False
    """
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
