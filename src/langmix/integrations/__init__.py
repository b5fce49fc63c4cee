"""Glue between langmix and other training libraries.

* :mod:`langmix.integrations.sentence_transformers`: language-aware batches, E5 prompts and
  translation-aware InfoNCE inside ``SentenceTransformerTrainer``.

Nothing here is imported by ``import langmix``; each module imports its library on use.
"""

from __future__ import annotations
