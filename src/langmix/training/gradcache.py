"""Gradient caching (GradCache, Gao et al. 2021): a large contrastive batch in fixed memory.

The InfoNCE loss couples every query with every passage of the batch, so the batch cannot simply
be split into accumulation steps. GradCache splits only the *encoder* work:

1. embed every chunk without building a graph (the RNG state of each chunk is recorded);
2. compute the loss on the detached embeddings and back-propagate to them only, caching
   ``d loss / d embedding``;
3. embed each chunk again with a graph, replaying its RNG state (same dropout masks), and
   back-propagate the cached gradient through it; one chunk of activations is alive at a time.

The parameter gradients equal those of the uncached loss on the same batch (tested, also under
2-process DDP, where all but the last chunk's backward run under ``no_sync`` so the gradient
all-reduce happens once per step).

Why not sentence-transformers' ``CachedMultipleNegativesRankingLoss``: its loss is the plain
in-batch one (no masking of translations of the query's own positive) and it lives inside the
sentence-transformers trainer, which langmix does not use for DDP reasons (see
:mod:`langmix.training.trainer`). Its RNG snapshot helper is reused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor

try:  # sentence-transformers >= 6
    from sentence_transformers.base.losses.gradcache import RandContext
except ImportError:  # pragma: no cover - older sentence-transformers
    from sentence_transformers.losses.CachedMultipleNegativesRankingLoss import RandContext


def grad_cache_step(
    groups: Sequence[Sequence[Any]],
    embed: Callable[[int, Sequence[Any]], Tensor],
    loss_fn: Callable[..., Tensor],
    chunk_size: int,
    *,
    backward: Callable[[Tensor], None] | None = None,
    no_sync: Callable[[], AbstractContextManager[Any]] | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Compute ``loss_fn(*embeddings)`` and accumulate its parameter gradients chunk by chunk.

    Args:
        groups: The inputs of each embedding group (e.g. queries, positives, negatives).
        embed: ``embed(group_index, inputs) -> [len(inputs), d]`` embeddings, with a graph
            when gradients are enabled.
        loss_fn: Takes one embedding tensor per group, returns the scalar loss.
        chunk_size: Inputs embedded at once (what bounds activation memory).
        backward: How to back-propagate the loss (default ``Tensor.backward``; pass
            ``accelerator.backward`` so mixed-precision loss scaling applies).
        no_sync: A context manager factory that suspends DDP's gradient all-reduce
            (``lambda: accelerator.no_sync(model)``); used for all but the last chunk.

    Returns:
        The loss, detached (its gradients are already accumulated).

    Raises:
        ValueError: If ``chunk_size`` is not positive.

    Example:
        >>> enc = torch.nn.Linear(4, 4)
        >>> q, p = torch.randn(8, 4), torch.randn(8, 4)
        >>> loss = grad_cache_step([q, p], lambda g, x: enc(torch.stack(list(x))),
        ...                        lambda a, b: (a @ b.T).logsumexp(1).mean(), chunk_size=2)
        >>> enc.weight.grad is not None
        True
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    chunks = [
        (g, start, group[start : start + chunk_size])
        for g, group in enumerate(groups)
        for start in range(0, len(group), chunk_size)
    ]
    # RandContext records the RNG of the devices its tensors live on, plus the CPU's.
    probe = () if device is None else (torch.empty(0, device=device),)
    states: list[RandContext] = []
    pieces: list[list[Tensor]] = [[] for _ in groups]
    with torch.no_grad():
        for g, _, inputs in chunks:
            states.append(RandContext(*probe))
            pieces[g].append(embed(g, inputs))
    leaves = [
        torch.cat(parts).detach().requires_grad_() if parts else torch.empty(0) for parts in pieces
    ]
    loss = loss_fn(*leaves)
    (backward or Tensor.backward)(loss)
    cached = [leaf.grad for leaf in leaves]
    for index, ((g, start, inputs), state) in enumerate(zip(chunks, states, strict=True)):
        last = index == len(chunks) - 1
        sync = nullcontext() if last or no_sync is None else no_sync()
        with sync, state:
            again = embed(g, inputs)
            grad = cached[g][start : start + len(inputs)]
            # The cached gradient is w.r.t. the float32 loss input; cast like the forward did.
            torch.autograd.backward(again, grad.to(again.dtype))
    return loss.detach()
