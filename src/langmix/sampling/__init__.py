"""Batch composition for multilingual contrastive training: pure, seeded, no models."""

from __future__ import annotations

from langmix.sampling.examples import Example, ExampleTable, TrainingSet
from langmix.sampling.sampler import STRATEGIES, Batch, LanguageBatchSampler

__all__ = ["STRATEGIES", "Batch", "Example", "ExampleTable", "LanguageBatchSampler", "TrainingSet"]
