"""``load_model`` dispatch, defaults, overrides and errors, without any network.

The Hugging Face path is exercised with a tiny random ``BertModel`` saved as a plain HF
directory next to the offline tokenizer, so no hub access is needed.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from langmix.models import (
    MODEL_DEFAULTS,
    OFFLINE_MODEL,
    ModelDefaults,
    ModelUnavailableError,
    check_model,
    count_parameters,
    describe_model,
    load_model,
    offline_model_path,
)
from langmix.models.loading import model_defaults

TINY_HIDDEN = 16
TINY_POSITIONS = 64
TEXTS = ["Wie hoch ist die Zugspitze?", "Bangkok is the capital of Thailand.", "ok"]


@pytest.fixture(scope="module")
def tiny_dir(model_cache, tmp_path_factory):
    """A plain Hugging Face directory: random 2-layer BERT + the offline tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    directory = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(str(offline_model_path(model_cache)))
    tokenizer.save_pretrained(str(directory))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=TINY_POSITIONS,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    BertModel(config).eval().save_pretrained(str(directory))
    assert not (directory / "modules.json").exists()
    return directory


@pytest.fixture(scope="module")
def tiny_hidden(tiny_dir):
    """Reference last hidden states of :data:`TEXTS` from plain ``transformers``."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir))
    model = AutoModel.from_pretrained(str(tiny_dir)).eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    return hidden, batch["attention_mask"].unsqueeze(-1).float()


def test_plain_hf_directory_with_cls_pooling(tiny_dir, tiny_hidden):
    model = load_model(tiny_dir, pooling="cls", device="cpu")
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Normalize"]
    info = describe_model(model)
    assert (info["pooling"], info["normalize"], info["layers"]) == ("cls", True, 2)
    assert info["prefixes"] == {"query": "", "passage": ""}
    hidden, _ = tiny_hidden
    expected = torch.nn.functional.normalize(hidden[:, 0], dim=-1).numpy()
    np.testing.assert_allclose(model.encode(TEXTS), expected, atol=1e-5)


def test_plain_hf_directory_defaults_to_mean_and_normalize(tiny_dir, tiny_hidden):
    model = load_model(tiny_dir, device="cpu")
    hidden, mask = tiny_hidden
    mean = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    got = model.encode(TEXTS)
    np.testing.assert_allclose(got, mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-5)

    raw = load_model(tiny_dir, normalize=False, device="cpu").encode(TEXTS)
    np.testing.assert_allclose(raw, mean, atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_prefixes_become_prompts_and_max_seq_length_truncates(tiny_dir):
    model = load_model(
        tiny_dir, query_prefix="search: ", passage_prefix="doc: ", max_seq_length=8, device="cpu"
    )
    assert model.prompts["query"] == "search: "
    assert model.prompts["passage"] == "doc: "
    with_prompt = model.encode(TEXTS, prompt_name="query")
    by_hand = model.encode(["search: " + t for t in TEXTS])
    np.testing.assert_allclose(with_prompt, by_hand, atol=1e-6)
    assert not np.allclose(with_prompt, model.encode(TEXTS), atol=1e-3)

    assert model.max_seq_length == 8
    assert model.tokenize(["word " * 50])["input_ids"].shape[1] == 8
    with pytest.raises(ValueError, match=f"limit {TINY_POSITIONS}"):
        load_model(tiny_dir, max_seq_length=TINY_POSITIONS + 1, device="cpu")


def test_saved_sentence_transformer_round_trip(tiny_dir, tmp_path):
    model = load_model(tiny_dir, pooling="cls", query_prefix="q: ", device="cpu")
    model.save(str(tmp_path / "st"))
    again = load_model(tmp_path / "st", device="cpu")
    info = describe_model(again)
    assert (info["pooling"], info["normalize"], info["prefixes"]["query"]) == ("cls", True, "q: ")
    np.testing.assert_allclose(
        again.encode(TEXTS, prompt_name="query"),
        model.encode(TEXTS, prompt_name="query"),
        atol=1e-6,
    )


def test_own_modules_are_kept_and_overrides_touch_only_what_is_asked(tiny_dir, tmp_path):
    """A LaBSE-shaped model (CLS pooling + Dense + Normalize) keeps its own pipeline."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Dense,
        Normalize,
        Pooling,
        Transformer,
    )

    transformer = Transformer(str(tiny_dir))
    torch.manual_seed(1)
    modules = [transformer, Pooling(TINY_HIDDEN, "cls"), Dense(TINY_HIDDEN, 8), Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(tmp_path / "labse-like"))

    kept = load_model(tmp_path / "labse-like", device="cpu")
    assert [type(m).__name__ for m in kept] == ["Transformer", "Pooling", "Dense", "Normalize"]
    assert describe_model(kept)["pooling"] == "cls"
    embeddings = kept.encode(TEXTS)
    assert embeddings.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)

    changed = load_model(tmp_path / "labse-like", pooling="mean", normalize=False, device="cpu")
    assert [type(m).__name__ for m in changed] == ["Transformer", "Pooling", "Dense"]
    assert describe_model(changed)["pooling"] == "mean"
    assert not np.allclose(np.linalg.norm(changed.encode(TEXTS), axis=1), 1.0)


def test_defaults_table_applies_and_arguments_win(tiny_dir, monkeypatch):
    monkeypatch.setitem(MODEL_DEFAULTS, str(tiny_dir), ModelDefaults("cls", False, "q: ", "p: "))
    model = load_model(str(tiny_dir), device="cpu")
    info = describe_model(model)
    assert (info["pooling"], info["normalize"]) == ("cls", False)
    assert info["prefixes"] == {"query": "q: ", "passage": "p: "}
    model = load_model(str(tiny_dir), pooling="mean", passage_prefix="", device="cpu")
    info = describe_model(model)
    assert (info["pooling"], info["normalize"]) == ("mean", False)
    assert info["prefixes"] == {"query": "q: ", "passage": ""}


def test_model_defaults_table():
    e5 = model_defaults("intfloat/multilingual-e5-large")
    assert (e5.pooling, e5.normalize, e5.query_prefix, e5.passage_prefix) == (
        "mean",
        True,
        "query: ",
        "passage: ",
    )
    for name in ("xlm-roberta-base", "FacebookAI/xlm-roberta-large"):
        xlmr = model_defaults(name)
        assert (xlmr.pooling, xlmr.query_prefix, xlmr.passage_prefix) == ("mean", "", "")
    labse = model_defaults("sentence-transformers/LaBSE")
    assert labse.use_model_modules and labse.pooling is None
    assert (labse.query_prefix, labse.passage_prefix) == ("", "")
    assert model_defaults(f"{OFFLINE_MODEL}@L3").query_prefix == "query: "
    assert model_defaults("someone/unknown-model") == ModelDefaults()


def test_offline_model_through_load_model(model_cache):
    model = load_model(f"{OFFLINE_MODEL}@L2", max_seq_length=128, cache_dir=model_cache)
    info = describe_model(model)
    json.dumps(info)  # loggable as is
    assert info["name"] == f"{OFFLINE_MODEL}@L2"
    assert (info["layers"], info["hidden_size"], info["max_seq_length"]) == (2, 384, 128)
    assert (info["pooling"], info["normalize"]) == ("mean", True)
    assert info["prefixes"] == {"query": "query: ", "passage": "passage: "}
    assert info["parameters"]["embedding"] == 96_211_584
    assert info["parameters"]["total"] == count_parameters(model).total == 99_909_120
    passage = model.encode(TEXTS[:1], prompt_name="passage")
    np.testing.assert_allclose(passage, model.encode(["passage: " + TEXTS[0]]), atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pooling": "max"}, "valid choices: 'mean', 'cls'"),
        ({"normalize": "yes"}, "normalize must be"),
        ({"max_seq_length": 0}, "positive integer"),
        ({"max_seq_length": True}, "positive integer"),
        ({"query_prefix": 3}, "query_prefix must be"),
    ],
)
def test_arguments_are_validated_before_loading(kwargs, message):
    # The name is valid but never loaded: validation happens first.
    with pytest.raises(ValueError, match=message):
        load_model(OFFLINE_MODEL, cache_dir="/nonexistent/never-built", **kwargs)


def test_bad_names_and_paths(tmp_path):
    with pytest.raises(ValueError, match="non-empty"):
        load_model("  ")
    with pytest.raises(ValueError, match=r"valid names: offline:multilingual-e5-small"):
        load_model("offline:labse")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="not a model directory"):
        load_model(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"modules\.json.*config\.json"):
        load_model(tmp_path / "empty")


def test_unreachable_hub_fails_fast_with_alternatives(no_hub):
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as info:
        load_model("langmix-tests/no-such-model")
    assert time.perf_counter() - started < 10
    message = str(info.value)
    assert "'langmix-tests/no-such-model'" in message
    assert "unreachable" in message
    assert "offline:multilingual-e5-small" in message
    assert "local model directory" in message
    assert isinstance(info.value, OSError)


def test_hub_offline_mode_without_cached_copy(no_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for check in (load_model, check_model):
        with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE") as info:
            check("langmix-tests/no-such-model")
        assert "offline:multilingual-e5-small" in str(info.value)


def test_check_model_without_loading(no_hub, tmp_path, monkeypatch):
    check_model("offline:multilingual-e5-small@L3")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    check_model(str(tmp_path / "hf"))  # a directory is found; its contents are load_model's
    for name, message in [
        ("offline:multilingual-e5-small@L0", "invalid layer count"),
        ("offline:e5-large", "unknown offline model"),
        (str(tmp_path / "missing"), "does not exist"),
        (str(tmp_path), "neither a sentence-transformers directory"),
        ("", "non-empty string"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_model(name)
    # A relative path that does not exist is a missing directory, not an unreachable hub.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for missing in ("runs/train-x/model", "runs/x", "./model"):
        with pytest.raises(ValueError, match=r"does not exist \(a local path"):
            check_model(missing)
    # A training run's directory: the model it saved is named.
    (tmp_path / "runs" / "train-x" / "model").mkdir(parents=True)
    (tmp_path / "runs" / "train-x" / "model" / "modules.json").write_text("[]")
    with pytest.raises(ValueError, match=r"did you mean 'runs/train-x/model'"):
        check_model("runs/train-x")
    with pytest.raises(ModelUnavailableError, match="unreachable"):
        check_model("langmix-tests/no-such-model")


def test_count_parameters_on_a_plain_module():
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=100,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=10,
        type_vocab_size=2,
    )
    model = BertModel(config, add_pooling_layer=False)
    counts = count_parameters(model)
    assert counts.embedding == 100 * 8 + 10 * 8 + 2 * 8
    per_layer = 4 * (8 * 8 + 8) + 2 * 16 + (8 * 16 + 16) + (16 * 8 + 8)
    assert counts.non_embedding == 16 + per_layer  # embedding LayerNorm + one layer
    assert counts.total == sum(p.numel() for p in model.parameters())


def test_a_saved_model_gives_sentence_transformers_the_passage_prefix(tiny_dir, tmp_path):
    """encode_document (and mteb, which sends documents under "document") must see the
    passage prefix: the saved model's "document" prompt is its "passage" prompt."""
    from sentence_transformers import SentenceTransformer

    model = load_model(tiny_dir, query_prefix="query: ", passage_prefix="passage: ", device="cpu")
    assert model.prompts["document"] == "passage: "
    model.save(str(tmp_path / "saved"))
    plain = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert plain.prompts["document"] == plain.prompts["passage"] == "passage: "
    by_hand = plain.encode(["passage: " + t for t in TEXTS])
    np.testing.assert_allclose(plain.encode_document(TEXTS), by_hand, atol=1e-6)
    np.testing.assert_allclose(
        plain.encode_query(TEXTS), plain.encode(["query: " + t for t in TEXTS]), atol=1e-6
    )
    assert not np.allclose(plain.encode_document(TEXTS), plain.encode(TEXTS), atol=1e-3)
    # A saved model whose config has no "document" prompt (ST fills in "") gets it back.
    config = tmp_path / "saved" / "config_sentence_transformers.json"
    record = json.loads(config.read_text())
    record["prompts"].pop("document")
    config.write_text(json.dumps(record))
    assert SentenceTransformer(str(tmp_path / "saved"), device="cpu").prompts["document"] == ""
    assert load_model(tmp_path / "saved", device="cpu").prompts["document"] == "passage: "
