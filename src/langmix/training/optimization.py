"""What training and distillation optimise, and how: frozen tables, AdamW with a warm-up.

Shared by :class:`langmix.training.trainer.Trainer` and :mod:`langmix.distillation`, so both
freeze and decay the same parameters the same way.

Example:
    >>> layer = torch.nn.Linear(2, 2)
    >>> optimizer, scheduler = adamw_with_warmup(layer, learning_rate=1e-3, weight_decay=0.01,
    ...                                          warmup_steps=1, total_steps=10)
    >>> [len(g["params"]) for g in optimizer.param_groups]
    [1, 1]
"""

from __future__ import annotations

import torch

__all__ = ["adamw_with_warmup", "freeze_poolers", "freeze_word_embeddings"]


def freeze_poolers(model: torch.nn.Module) -> None:
    """Freeze every ``pooler``: BERT's [CLS] dense layer runs in the forward pass but never
    reaches a sentence-transformers embedding, so it gets no gradient (DDP would wait for one
    forever)."""
    for name, module in model.named_modules():
        if name.endswith("pooler"):
            module.requires_grad_(False)


def freeze_word_embeddings(model: torch.nn.Module) -> int:
    """Freeze every ``word_embeddings`` table; returns how many were found."""
    frozen = 0
    for module in model.modules():
        word = getattr(module, "word_embeddings", None)
        if isinstance(word, torch.nn.Embedding):
            word.weight.requires_grad_(False)
            frozen += 1
    return frozen


def adamw_with_warmup(
    model: torch.nn.Module,
    *,
    learning_rate: float,
    weight_decay: float,
    warmup_steps: int,
    total_steps: int,
    fused: bool | None = None,
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the trainable parameters and a linear warm-up then decay to 0.

    As in BERT fine-tuning, biases and LayerNorm weights get no weight decay.
    """
    from transformers import get_linear_schedule_with_warmup

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=learning_rate,
        fused=fused,
    )
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
