"""Encoding texts with a sentence-transformers model, each distinct text at most once.

:func:`encode` wraps ``SentenceTransformer.encode`` (which already sorts by length and
batches) and adds what a study needs on top: an on-disk cache keyed by the model's
*fingerprint* and the text, so the same text is never encoded twice for the same model, across
evaluation sets, settings and reruns. Duplicate texts within one call are encoded once too.

The cache stores float32 rows in append-only shards (``.npz`` written atomically), so a crash
while writing loses at most the shard being written and never corrupts earlier ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from langmix.outputs import atomic_path

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

QUERY = "query"
PASSAGE = "passage"


def model_fingerprint(model: SentenceTransformer) -> str:
    """A key that changes whenever the model's embeddings could change.

    It covers the module configuration (architecture, pooling, normalisation, prompts,
    maximum length) and a strided sample of every parameter. Fine-tuning moves all weights,
    so a sample detects it while costing milliseconds instead of hashing ~0.5 GB.

    Example:
        >>> model_fingerprint(model)  # doctest: +SKIP
        '3f1c...'
    """
    import torch

    digest = hashlib.sha256()
    digest.update(repr(model).encode())
    digest.update(json.dumps(getattr(model, "prompts", {}), sort_keys=True).encode())
    digest.update(str(model.max_seq_length).encode())
    with torch.no_grad():
        for name, param in model.named_parameters():
            flat = param.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 4096)].float().cpu().numpy()
            digest.update(name.encode())
            digest.update(str(tuple(param.shape)).encode())
            digest.update(sample.tobytes())
    return digest.hexdigest()[:24]


class EmbeddingCache:
    """Per-model store of text embeddings on disk.

    Args:
        root: Cache directory; one sub-directory per model fingerprint.
        fingerprint: The model's :func:`model_fingerprint`.

    Example:
        >>> cache = EmbeddingCache(Path("~/.cache/langmix/embeddings"), "3f1c")  # doctest: +SKIP
        >>> found, missing = cache.lookup(["query: hello"])  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike[str], fingerprint: str) -> None:
        self.directory = Path(root).expanduser() / fingerprint
        self._rows: dict[bytes, np.ndarray] = {}
        self._loaded = False

    @staticmethod
    def key(text: str) -> bytes:
        """The stored key of a (prompt-prefixed) text."""
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if not self.directory.is_dir():
            return
        for shard in sorted(self.directory.glob("shard-*.npz")):
            try:
                with np.load(shard) as data:
                    keys, embeddings = data["keys"], data["embeddings"]
            except (OSError, ValueError, KeyError):
                continue  # a shard from a killed write is ignored; its texts are re-encoded
            for k, row in zip(keys, embeddings, strict=True):
                self._rows[k.tobytes()] = row

    def lookup(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached embeddings of those texts that have one."""
        self._load()
        found = {}
        for text in texts:
            row = self._rows.get(self.key(text))
            if row is not None:
                found[text] = row
        return found

    def store(self, texts: Sequence[str], embeddings: np.ndarray) -> None:
        """Add embeddings as a new shard (atomically)."""
        if not len(texts):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        # uint8 rows, not numpy "S16": fixed-width bytes strings drop trailing NUL bytes, which
        # would make about one digest in 256 unfindable.
        keys = np.frombuffer(b"".join(self.key(t) for t in texts), dtype=np.uint8).reshape(-1, 16)
        # The pid keeps names of processes sharing the cache apart; the temporary file starts
        # with a dot, so _load's "shard-*.npz" never sees a half-written one.
        index = len(list(self.directory.glob("shard-*.npz")))
        with atomic_path(self.directory / f"shard-{index:05d}-{os.getpid()}.npz") as tmp:
            np.savez(tmp, keys=keys, embeddings=embeddings.astype(np.float32))
        for k, row in zip(keys, embeddings, strict=True):
            self._rows[k.tobytes()] = row


def _prompt(model: SentenceTransformer, kind: str) -> str:
    prompts = getattr(model, "prompts", None) or {}
    return prompts.get(kind, "")


def encode(
    model: SentenceTransformer,
    texts: Sequence[str],
    kind: str,
    *,
    batch_size: int = 64,
    max_seq_length: int | None = None,
    cache: EmbeddingCache | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """Encode texts as queries or passages, L2-normalised float32.

    Args:
        model: A sentence-transformers model (see :func:`langmix.models.load_model`).
        texts: The texts, without prompts; the model's ``query``/``passage`` prompt is added.
        kind: ``"query"`` or ``"passage"``.
        batch_size: Encoding batch size.
        max_seq_length: Truncation length for this call (the model's default if ``None``).
        cache: Where to look up and store embeddings.
        show_progress: Show a progress bar.

    Returns:
        ``[len(texts), dim]`` float32, rows unit-length.

    Example:
        >>> q = encode(model, ["Who wrote Faust?"], "query")  # doctest: +SKIP
        >>> q.shape  # doctest: +SKIP
        (1, 384)
    """
    if kind not in (QUERY, PASSAGE):
        raise ValueError(f"kind must be 'query' or 'passage', got {kind!r}")
    empty = [i for i, t in enumerate(texts) if not t or not t.strip()]
    if empty:
        raise ValueError(f"{len(empty)} empty text(s) to encode, first at position {empty[0]}")
    prompt = _prompt(model, kind)
    length = max_seq_length or model.max_seq_length
    # The cache key includes prompt and truncation length, since both change the embedding.
    keyed = [f"{length}\x00{prompt}{t}" for t in texts]
    unique = list(dict.fromkeys(keyed))
    found = cache.lookup(unique) if cache is not None else {}
    missing = [k for k in unique if k not in found]
    if missing:
        previous = model.max_seq_length
        # A model without a token window (e.g. static embeddings) has nothing to truncate.
        with contextlib.suppress(AttributeError):
            model.max_seq_length = length
        try:
            fresh = _encode_in_chunks(
                model, [k.split("\x00", 1)[1] for k in missing], kind, batch_size, show_progress
            )
        finally:
            with contextlib.suppress(AttributeError):
                model.max_seq_length = previous
        if cache is not None:
            cache.store(missing, fresh)
        found.update(zip(missing, fresh, strict=True))
    return np.stack([found[k] for k in keyed]).astype(np.float32, copy=False)


def _encode_in_chunks(
    model: SentenceTransformer, texts: list[str], kind: str, batch_size: int, show: bool
) -> np.ndarray:
    # One langmix bar counting texts, not sentence-transformers' "Batches" bar: the libraries'
    # bars are silenced in langmix's commands, and this one says what is being encoded. Chunks
    # of many batches keep the model's length-sorted batching nearly as efficient as one call.
    from tqdm.auto import tqdm

    chunk = batch_size * 32
    parts = []
    label = "queries" if kind == QUERY else "passages"
    with tqdm(total=len(texts), desc=f"encode {label}", unit="text", disable=not show) as bar:
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            parts.append(
                model.encode(
                    part,
                    batch_size=batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                    prompt="",  # the prompt is already in the text (it is part of the cache key)
                ).astype(np.float32)
            )
            bar.update(len(part))
    return np.concatenate(parts)
