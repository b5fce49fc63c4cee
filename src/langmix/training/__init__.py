"""Contrastive fine-tuning: the InfoNCE loss, the trainer and its arguments."""

from __future__ import annotations

from langmix.training.arguments import TrainArguments
from langmix.training.loss import InfoNCELoss
from langmix.training.reporting import ProgressCallback, TrainEvent
from langmix.training.trainer import OutputDirError, Trainer, train

__all__ = [
    "InfoNCELoss",
    "OutputDirError",
    "ProgressCallback",
    "TrainArguments",
    "TrainEvent",
    "Trainer",
    "train",
]
