"""Glue between langmix and other training libraries.

* :mod:`langmix.integrations.sentence_transformers`: language-aware batches, E5 prompts and
  the dataset and the batches inside ``SentenceTransformerTrainer``.
* :mod:`langmix.integrations.sentence_transformers_loss`: InfoNCE with the
  sentence-transformers loss signature, masking translations and identical passages.

Nothing here is imported by ``import langmix``; each module imports its library on use.
"""

from __future__ import annotations
