"""The embedding cache on disk: every stored text is found again, also by a new process."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from langmix.evaluation.encoding import EmbeddingCache


def test_every_stored_text_is_found_after_reload(tmp_path: Path):
    texts = [f"passage: text number {i}" for i in range(3000)]
    # about 1 in 256 digests ends in a NUL byte; make sure such keys are among them
    assert any(EmbeddingCache.key(t).endswith(b"\x00") for t in texts)
    rows = np.random.default_rng(0).standard_normal((3000, 8)).astype(np.float32)
    EmbeddingCache(tmp_path, "m").store(texts[:1500], rows[:1500])
    EmbeddingCache(tmp_path, "m").store(texts[1500:], rows[1500:])
    found = EmbeddingCache(tmp_path, "m").lookup(texts)
    assert len(found) == 3000
    assert np.array_equal(np.stack([found[t] for t in texts]), rows)
    assert EmbeddingCache(tmp_path, "other-model").lookup(texts) == {}


def test_a_corrupt_shard_is_ignored_not_fatal(tmp_path: Path):
    cache = EmbeddingCache(tmp_path, "m")
    cache.store(["a"], np.ones((1, 4), np.float32))
    (tmp_path / "m" / "shard-99999-1.npz").write_bytes(b"truncated")
    assert list(EmbeddingCache(tmp_path, "m").lookup(["a", "b"])) == ["a"]
