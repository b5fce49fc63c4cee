"""The sentence-transformers integration: lazy rows, seeded batches, prompts, masked InfoNCE.

One real ``SentenceTransformerTrainer`` run (a 2-layer cut of the offline E5, real MLQA-R
pairs, 4 steps) checks that the trainer consumes the sampler's batches, with E5 prompts and
item ids reaching the loss; the rest runs without training.
"""

from __future__ import annotations

import math
import pickle
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pyarrow as pa  # datasets (a dependency) brings it
import pytest
import torch

from langmix.data.lareqa import load_lareqa
from langmix.data.pairs import Pair, ParallelPairs
from langmix.integrations.sentence_transformers import (
    SentenceTransformersAdapter,
    training_prompts,
)
from langmix.integrations.sentence_transformers_loss import (
    SentenceTransformersInfoNCELoss,
    token_keys,
)
from langmix.sampling import LanguageBatchSampler

MODEL = "offline:multilingual-e5-small@L2"
LANGUAGES = ["en", "de", "es"]
BATCH = 8
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}


@pytest.fixture(scope="module")
def pairs(data_dir) -> ParallelPairs:
    return ParallelPairs.from_lareqa(load_lareqa("mlqa-r", LANGUAGES, data_dir=data_dir))


@pytest.fixture(scope="module")
def model(model_cache):
    from langmix.models import load_model

    model = load_model(MODEL, cache_dir=model_cache, max_seq_length=32, device="cpu")
    # The embedding tables are 96M of the cut's 100M parameters; AdamW over them would be
    # most of each step's time on 2 cores and is not what these tests are about.
    model[0].auto_model.embeddings.requires_grad_(False)
    return model


def _args(adapter, model, tmp_path, **overrides):
    settings = {
        "max_steps": 3,
        "report_to": "none",
        "use_cpu": True,
        "save_strategy": "no",
        "disable_tqdm": True,
        "learning_rate": 1e-4,
    }
    settings.update(overrides)
    return adapter.training_arguments(model, str(tmp_path / "st"), **settings)


# -- rows of the lazy dataset ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "alpha"),
    [("mono", 0.5), ("cross", 0.5), ("hybrid", 0.5), ("random", 0.5), ("hybrid", 1.0)],
)
def test_rows_are_exactly_the_drawable_examples(pairs, strategy, alpha):
    sets = [pairs, pairs.select(["en", "de"])]
    sampler = LanguageBatchSampler(sets, BATCH, strategy, alpha=alpha, seed=3)
    adapter = SentenceTransformersAdapter(sampler)
    mono = strategy in ("mono", "random") or (strategy == "hybrid" and alpha > 0)
    cross = strategy in ("cross", "hybrid") and alpha < 1.0
    expected = 0
    for tset in sampler.table.sets:
        k = (tset.pair_index >= 0).sum(axis=1)
        expected += int((k * k if mono and cross else k if mono else k * (k - 1)).sum())
    assert adapter.n_rows == expected == len(adapter.dataset())
    rows = np.arange(adapter.n_rows)
    codes = adapter.codes(rows)
    assert len(np.unique(codes)) == len(codes)
    assert np.array_equal(adapter.rows(codes), rows)
    for example in adapter.examples(rows[:: max(1, len(rows) // 500)]):
        assert (example.query_language == example.passage_language) or cross
        assert (example.query_language != example.passage_language) or mono
    for batch in sampler.batches(0, 50):
        assert np.array_equal(adapter.codes(adapter.rows(batch.codes)), batch.codes)


def test_dataset_is_lazy_for_a_large_pool():
    n_items, languages = 5000, [f"l{j:02d}" for j in range(16)]
    synthetic = ParallelPairs(
        "synthetic",
        tuple(languages),
        [
            Pair(f"i{i}", lang, f"q{i}{lang}", f"p{i}{lang}", f"g{i}")
            for i in range(n_items)
            for lang in languages
        ],
    )
    sampler = LanguageBatchSampler([synthetic], BATCH, "hybrid")
    SentenceTransformersAdapter(sampler).dataset()  # import datasets outside the measurement
    arrow_before = pa.total_allocated_bytes()
    tracemalloc.start()
    adapter = SentenceTransformersAdapter(sampler)
    dataset = adapter.dataset()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n_rows = n_items * len(languages) ** 2
    assert len(dataset) == n_rows == 1_280_000
    # Under one byte per row: nothing is materialised per (item, query language, passage
    # language); what is built is a few int64 per item (and transient (item, language) masks).
    assert peak < n_rows / 4, peak
    assert pa.total_allocated_bytes() - arrow_before == 0
    assert adapter._index.item_starts[0].nbytes == 8 * (n_items + 1)
    # Rows are still all there, decoded on access.
    last = dataset[n_rows - 1]
    assert (last["query"], last["passage"], last["label"]) == ("q4999l15", "p4999l15", 4999)
    assert dataset[n_rows // 2]["label"] == n_items // 2


def test_dataset_rows_on_every_kind_of_access(pairs):
    adapter = SentenceTransformersAdapter(LanguageBatchSampler([pairs], BATCH, "cross", seed=0))
    dataset = adapter.dataset()
    assert dataset is adapter.dataset()
    assert dataset.column_names == ["query", "passage", "label"]
    examples = adapter.examples([0, 1, 2, len(dataset) - 1])
    assert dataset[1] == {
        "query": examples[1].query,
        "passage": examples[1].positive,
        "label": examples[1].item,
    }
    assert dataset[-1]["label"] == examples[3].item
    assert dataset[0:3]["query"] == [e.query for e in examples[:3]]
    assert dataset[[2, 0]]["label"] == [examples[2].item, examples[0].item]
    assert [row["passage"] for row in dataset.__getitems__([0, 2])] == [
        examples[0].positive,
        examples[2].positive,
    ]
    assert next(iter(dataset))["query"] == examples[0].query
    subset = dataset.select([2, 0])
    assert [row["label"] for row in subset] == [examples[2].item, examples[0].item]
    shuffled = dataset.shuffle(seed=0)
    assert shuffled[:20]["label"] != dataset[:20]["label"]
    copied = pickle.loads(pickle.dumps(subset))  # as DataLoader workers under spawn get it
    assert copied[0] == subset[0]
    with pytest.raises(TypeError, match="lazy"):
        dataset["query"]
    with pytest.raises(IndexError):
        dataset[len(dataset)]


# -- prompts, loss and checks (no training) ------------------------------------------------


def test_prompts_come_from_the_model_then_langmix_defaults():
    e5 = SimpleNamespace(prompts={"query": "query: ", "passage": "passage: "})
    assert training_prompts(e5) == E5_PROMPTS
    st_style = SimpleNamespace(prompts={"query": "Q: ", "document": "D: "})
    assert training_prompts(st_style) == {"query": "Q: ", "passage": "D: "}
    bare_e5 = SimpleNamespace(
        prompts={}, model_card_data=SimpleNamespace(base_model="intfloat/multilingual-e5-base")
    )
    assert training_prompts(bare_e5) == E5_PROMPTS
    assert training_prompts(SimpleNamespace(prompts={}, langmix_name="xlm-roberta-base")) == {}


class _Fixed(torch.nn.Module):
    """A stand-in model: a column's "features" are its embeddings."""

    def forward(self, features):
        return {"sentence_embedding": features["embedding"]}


def _columns(*matrices):
    return [{"embedding": torch.tensor(m, dtype=torch.float32)} for m in matrices]


def test_loss_wrapper_masks_translations():
    loss = SentenceTransformersInfoNCELoss(_Fixed(), temperature=0.05)
    # Rows 0 and 1 are translations of one item: their passages are identical in embedding
    # space, so without the mask each is a hard "negative" of the other.
    q = p = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    masked = float(loss(_columns(q, p), torch.tensor([7, 7, 3])))
    unmasked = float(loss(_columns(q, p), torch.tensor([7, 8, 3])))
    assert masked == pytest.approx(0.0, abs=1e-6)
    assert unmasked == pytest.approx(2 * math.log(2) / 3, abs=1e-4)
    # A third column is hard negatives, appended to every query's candidates (never masked):
    # one ties with the positive for queries 0 and 1, two for query 2.
    negatives = [[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]
    with_negatives = float(loss(_columns(q, p, negatives), torch.tensor([7, 7, 3])))
    assert with_negatives == pytest.approx((2 * math.log(2) + math.log(3)) / 3, abs=1e-4)
    assert loss.get_config_dict() == {"temperature": 0.05, "symmetric": False}
    with pytest.raises(ValueError, match="item ids"):
        loss(_columns(q, p), None)
    with pytest.raises(ValueError, match="item ids"):
        loss(_columns(q, p), torch.tensor([0.5, 0.2, 0.1]))
    with pytest.raises(ValueError, match="positive column"):
        loss(_columns(q), torch.tensor([0, 1, 2]))


def _tokens(embeddings, ids):
    ids = torch.tensor(ids)
    return {
        "embedding": torch.tensor(embeddings, dtype=torch.float32),
        "input_ids": ids,
        "attention_mask": (ids != 1).long(),  # id 1 is padding, as in XLM-R's vocabulary
    }


def test_loss_wrapper_masks_identical_passages_by_their_tokens():
    loss = SentenceTransformersInfoNCELoss(_Fixed(), temperature=0.05)
    # Rows 0 and 1 are different questions (items 7 and 8) with the same answer passage
    # (same tokens, padded differently): each is relevant to the other, so it is masked.
    q = p = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    passages = _tokens(p, [[0, 55, 66, 2, 1], [0, 55, 66, 2, 1], [0, 77, 2, 1, 1]])
    masked = float(loss([_columns(q)[0], passages], torch.tensor([7, 8, 3])))
    assert masked == pytest.approx(0.0, abs=1e-6)
    assert loss.info_nce.last_masked["same_text"] == 2
    # Same embeddings, different tokens: a true negative, not masked.
    other = _tokens(p, [[0, 55, 66, 2, 1], [0, 55, 67, 2, 1], [0, 77, 2, 1, 1]])
    assert float(loss([_columns(q)[0], other], torch.tensor([7, 8, 3]))) == pytest.approx(
        2 * math.log(2) / 3, abs=1e-4
    )
    # A hard negative with row 2's passage tokens is row 2's positive: masked for row 2 only.
    negatives = _tokens(
        [[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]], [[0, 77, 2, 1, 1], [0, 9, 2, 1, 1], [0, 8, 2, 1, 1]]
    )
    loss([_columns(q)[0], other, negatives], torch.tensor([7, 8, 3]))
    assert loss.info_nce.last_masked["hard_negatives"] == 1
    # Padding does not matter; a token does, and so does the length.
    keys = token_keys(
        {
            "input_ids": torch.tensor([[0, 5, 2, 1], [0, 5, 2, 1], [0, 5, 2, 0]]),
            "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1]]),
        }
    )
    assert keys[0] == keys[1] != keys[2]


def test_constraints_are_checked(pairs, monkeypatch):
    sampler = LanguageBatchSampler([pairs], BATCH, "hybrid")
    adapter = SentenceTransformersAdapter(sampler)
    model = SimpleNamespace(prompts=dict(E5_PROMPTS))
    with pytest.raises(ValueError, match="batch size"):
        adapter.training_arguments(model, "unused", per_device_train_batch_size=16)
    with pytest.raises(ValueError, match="trainer batch size 16"):
        adapter.batch_sampler(adapter.dataset(), 16)
    other = SentenceTransformersAdapter(LanguageBatchSampler([pairs], BATCH, "hybrid"))
    with pytest.raises(ValueError, match="not this adapter's dataset"):
        adapter.batch_sampler(other.dataset(), BATCH)
    with pytest.raises(ValueError, match="single-process"):
        SentenceTransformersAdapter(LanguageBatchSampler([pairs], BATCH, "hybrid", world_size=2))
    # Checkpoints pickle the arguments: the hook goes without the training data, and says so.
    args = adapter.training_arguments(model, "unused", report_to="none", use_cpu=True)
    assert args.prompts == E5_PROMPTS
    restored = pickle.loads(pickle.dumps(args))
    assert len(pickle.dumps(args.batch_sampler)) < 200
    with pytest.raises(RuntimeError, match=r"adapter\.training_arguments"):
        restored.batch_sampler(adapter.dataset(), BATCH)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="langmix train"):
        adapter.batch_sampler(adapter.dataset(), BATCH, seed=0)


# -- the real trainer -------------------------------------------------------------------------


def _trainer(adapter, model, tmp_path, loss=None, evaluator=None, **overrides):
    from sentence_transformers import SentenceTransformerTrainer

    args = _args(adapter, model, tmp_path, **overrides)
    loss = loss if loss is not None else SentenceTransformersInfoNCELoss(model)
    return SentenceTransformerTrainer(
        model, args, train_dataset=adapter.dataset(), loss=loss, evaluator=evaluator
    )


def _first_batches(trainer, count):
    batches = iter(trainer.get_train_dataloader().batch_sampler)
    return [next(batches) for _ in range(count)]


def test_trainer_seed_decides_the_batches(pairs, model, tmp_path):
    adapter = SentenceTransformersAdapter(LanguageBatchSampler([pairs], BATCH, "hybrid", seed=0))
    runs = {
        name: _first_batches(_trainer(adapter, model, tmp_path / name, seed=seed), 3)
        for name, seed in (("a", 11), ("b", 11), ("c", 12))
    }
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]
    expected = LanguageBatchSampler([pairs], BATCH, "hybrid", seed=11).batches(0, 3)
    assert runs["a"] == [adapter.rows(b.codes).tolist() for b in expected]


def test_sentence_transformers_trainer_trains_on_the_sampler_batches(pairs, model, tmp_path):
    seed, steps = 5, 3
    expected = list(LanguageBatchSampler([pairs], BATCH, "hybrid", seed=seed).batches(0, steps))
    # The seed is chosen so that the run holds both batch types.
    assert {b.batch_type for b in expected} == {"mono", "cross"}
    adapter = SentenceTransformersAdapter(LanguageBatchSampler([pairs], BATCH, "hybrid", seed=0))
    seen_labels, seen_inputs, fetched = [], [], []

    class RecordingLoss(SentenceTransformersInfoNCELoss):
        def forward(self, sentence_features, labels):
            features = list(sentence_features)
            seen_labels.append(labels.tolist())
            seen_inputs.append((features[0]["input_ids"][0], features[1]["input_ids"][0]))
            return super().forward(features, labels)

    trainer = _trainer(adapter, model, tmp_path, loss=RecordingLoss(model), seed=seed)
    assert trainer.data_collator.prompts == E5_PROMPTS
    dataset = trainer.train_dataset
    fetch = dataset.__getitems__
    # The DataLoader fetches through the instance attribute: record the rows it asks for.
    dataset.__getitems__ = lambda rows: fetched.append(list(rows)) or fetch(rows)
    result = trainer.train()

    assert result.global_step == steps and math.isfinite(result.training_loss)
    assert fetched[:steps] == [adapter.rows(b.codes).tolist() for b in expected]
    for batch, rows, labels in zip(expected, fetched, seen_labels, strict=False):
        examples = adapter.examples(rows)
        pairs_of_languages = {(e.query_language, e.passage_language) for e in examples}
        if batch.batch_type == "mono":
            assert len(pairs_of_languages) == 1 and len({*next(iter(pairs_of_languages))}) == 1
        else:
            assert all(q != p for q, p in pairs_of_languages)
        assert labels == [e.item for e in examples]
    tokenizer = model.tokenizer
    for query_ids, passage_ids in seen_inputs:
        assert tokenizer.decode(query_ids, skip_special_tokens=True).startswith("query: ")
        assert tokenizer.decode(passage_ids, skip_special_tokens=True).startswith("passage: ")


def test_lareqa_evaluator_reports_langmix_numbers_inside_the_trainer(
    pairs, model, tmp_path, data_dir
):
    """SentenceTransformerTrainer with LAReQAEvaluator: the logged numbers are langmix's, and
    the model's card carries them (issue 24)."""
    from langmix.evaluation import LAReQAEvaluator
    from langmix.evaluation.lareqa import encode_lareqa, score_lareqa

    dataset = load_lareqa("xquad-r", ["en", "de"], data_dir=data_dir).first_articles(1)
    lengths = {"query_max_length": 24, "passage_max_length": 32, "with_context": False}
    evaluator = LAReQAEvaluator(dataset, name="xquad-r", **lengths)
    adapter = SentenceTransformersAdapter(LanguageBatchSampler([pairs], BATCH, "hybrid", seed=0))
    trainer = _trainer(
        adapter, model, tmp_path, evaluator=evaluator, max_steps=2, eval_strategy="steps",
        eval_steps=2, logging_steps=1,
    )  # fmt: skip
    trainer.train()
    (logged,) = [e for e in trainer.state.log_history if "eval_xquad-r_map_multi" in e]
    expected = score_lareqa(dataset, encode_lareqa(model, dataset, show_progress=False, **lengths))
    assert logged["eval_xquad-r_map_multi"] == pytest.approx(expected.map["multi"], abs=1e-6)
    assert logged["eval_xquad-r_r1_cross"] == pytest.approx(expected.recall["cross@1"], abs=1e-6)
    assert evaluator.primary_metric == "xquad-r_map_multi"
    model.save(str(tmp_path / "saved"))
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "#### LAReQA retrieval" in card and "| **map_multi** |" in card
    with pytest.raises(ValueError, match="primary_metric must be one of"):
        LAReQAEvaluator(dataset, primary_metric="ndcg@10")
