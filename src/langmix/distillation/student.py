"""A student initialised from its teacher: the embeddings and every (L/K)-th layer.

TinyBERT's uniform layer map: student layer ``i`` (0-based) starts as teacher layer
``(i + 1) * L // K - 1``, so the student's last layer is the teacher's last and the kept
layers are spread evenly over the depth. A layer cut (``@L{k}``) instead keeps the first
``k`` layers, whose output the pooling was never trained on; that is why cuts lose most
of their quality before any training.

Example:
    >>> layer_map(12, 4)
    [2, 5, 8, 11]
    >>> layer_map(12, 8)
    [0, 2, 3, 5, 6, 8, 9, 11]
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher layer index (0-based) that initialises each student layer.

    Raises:
        ValueError: Unless ``1 <= student_layers < teacher_layers``.
    """
    if not 1 <= student_layers < teacher_layers:
        raise ValueError(
            f"a student needs 1..{teacher_layers - 1} layers for a {teacher_layers}-layer "
            f"teacher, got {student_layers}"
        )
    return [(i + 1) * teacher_layers // student_layers - 1 for i in range(student_layers)]


def encoder_layers(model: SentenceTransformer) -> torch.nn.ModuleList:
    """The transformer layers of a BERT-like sentence-transformers model.

    Raises:
        ValueError: If the first module has no ``auto_model.encoder.layer``.
    """
    try:
        return model[0].auto_model.encoder.layer
    except AttributeError as exc:
        raise ValueError(
            "distillation needs a BERT-like teacher (first module with auto_model.encoder.layer)"
        ) from exc


def make_student(teacher: SentenceTransformer, layers: int) -> SentenceTransformer:
    """A deep copy of ``teacher`` keeping the layers :func:`layer_map` picks.

    The pooling, normalisation, tokenizer and prompts are the teacher's, so the student is
    used exactly as the teacher is.

    Example:
        >>> student = make_student(load_model("offline:multilingual-e5-small"), 4)  # doctest: +SKIP
        >>> student[0].auto_model.config.num_hidden_layers  # doctest: +SKIP
        4
    """
    source = encoder_layers(teacher)
    chosen = layer_map(len(source), layers)
    # Copy the teacher without its layers (they are the bulk), then copy only the chosen ones.
    encoder = teacher[0].auto_model.encoder
    encoder.layer = torch.nn.ModuleList()
    try:
        student = copy.deepcopy(teacher)
    finally:
        encoder.layer = source
    student[0].auto_model.encoder.layer = torch.nn.ModuleList(
        copy.deepcopy(source[i]) for i in chosen
    )
    student[0].auto_model.config.num_hidden_layers = layers
    return student


__all__ = ["encoder_layers", "layer_map", "make_student"]
