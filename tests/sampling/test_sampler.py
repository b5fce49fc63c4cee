"""Sampler invariants on real MLQA-R pairs, over thousands of batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
from torch.utils.data import DataLoader

from langmix.data.lareqa import load_lareqa
from langmix.data.pairs import Pair, ParallelPairs
from langmix.sampling import ExampleTable, LanguageBatchSampler

STEPS = 2000
BATCH = 32


@pytest.fixture(scope="module")
def mlqa_train(data_dir) -> ParallelPairs:
    train, _ = ParallelPairs.from_lareqa(load_lareqa("mlqa-r", data_dir=data_dir)).split(0.1, 0)
    return train


def _languages_of(pairs: ParallelPairs) -> dict[str, set[str]]:
    return {pid: set(langs) for pid, langs in pairs.by_id.items()}


def _check_common(batches, pairs: ParallelPairs) -> None:
    available = _languages_of(pairs)
    table = ExampleTable([pairs])
    tset = table.sets[0]
    for batch in batches:
        assert len(batch.items) == BATCH
        # No parallel item twice in a batch: a translation of a positive is never a negative.
        assert len(set(batch.items.tolist())) == BATCH
        for item, q, p in zip(
            batch.items, batch.query_languages, batch.passage_languages, strict=True
        ):
            pid = tset.item_ids[item]
            assert {tset.languages[q], tset.languages[p]} <= available[pid]


def test_mono_batches_are_one_language(mlqa_train):
    sampler = LanguageBatchSampler([mlqa_train], BATCH, "mono", seed=3)
    batches = list(sampler.batches(0, STEPS))
    _check_common(batches, mlqa_train)
    used = set()
    for batch in batches:
        assert batch.batch_type == "mono"
        assert len(set(batch.query_languages.tolist())) == 1
        assert (batch.query_languages == batch.passage_languages).all()
        used.add(int(batch.query_languages[0]))
    assert used == set(range(len(mlqa_train.languages)))  # every language gets batches


def test_mono_language_draw_is_uniform_or_by_size(mlqa_train):
    n_lang = len(mlqa_train.languages)
    for weighting in ("uniform", "size"):
        sampler = LanguageBatchSampler(
            [mlqa_train], BATCH, "mono", seed=1, language_weighting=weighting
        )
        counts = np.bincount(
            [int(b.query_languages[0]) for b in sampler.batches(0, STEPS)], minlength=n_lang
        )
        sizes = (sampler.table.sets[0].pair_index >= 0).sum(axis=0)
        expected = np.full(n_lang, 1 / n_lang) if weighting == "uniform" else sizes / sizes.sum()
        # Each language's count within 4.5 binomial standard deviations.
        sd = np.sqrt(STEPS * expected * (1 - expected))
        assert (np.abs(counts - STEPS * expected) < 4.5 * sd).all(), (weighting, counts)


def test_cross_batches_pair_different_languages(mlqa_train):
    sampler = LanguageBatchSampler([mlqa_train], BATCH, "cross", seed=5)
    batches = list(sampler.batches(0, STEPS))
    _check_common(batches, mlqa_train)
    pair_counts: dict[tuple[int, int], int] = {}
    for batch in batches:
        assert batch.batch_type == "cross"
        assert (batch.query_languages != batch.passage_languages).all()
        assert len(set(batch.query_languages.tolist())) > 1  # a batch mixes languages
        for q, p in zip(batch.query_languages, batch.passage_languages, strict=True):
            pair_counts[(int(q), int(p))] = pair_counts.get((int(q), int(p)), 0) + 1
    n = len(mlqa_train.languages)
    assert len(pair_counts) == n * (n - 1)  # every ordered pair of different languages occurs


def test_cross_pair_choice_is_uniform_within_an_item(mlqa_train):
    # An item available in k languages: each ordered pair (q, p), q != p, has chance 1/(k(k-1)).
    sampler = LanguageBatchSampler([mlqa_train], BATCH, "cross", seed=11)
    tset = sampler.table.sets[0]
    counts: dict[int, dict[tuple[int, int], int]] = {}
    for batch in sampler.batches(0, STEPS):
        for item, q, p in zip(
            batch.items, batch.query_languages, batch.passage_languages, strict=True
        ):
            counts.setdefault(int(item), {}).setdefault((int(q), int(p)), 0)
            counts[int(item)][(int(q), int(p))] += 1
    # Pool all items with exactly 3 languages: 6 ordered pairs, each expected 1/6.
    observed = []
    for item, per_pair in counts.items():
        if (tset.pair_index[item] >= 0).sum() == 3:
            total = sum(per_pair.values())
            assert len(per_pair) <= 6
            observed.extend(c / total for c in per_pair.values())
    assert observed
    assert abs(np.mean(observed) - 1 / 6) < 0.02


def test_hybrid_alpha_within_binomial_bound(mlqa_train):
    for alpha in (0.5, 0.2, 0.9):
        sampler = LanguageBatchSampler([mlqa_train], BATCH, "hybrid", alpha=alpha, seed=7)
        batches = list(sampler.batches(0, STEPS))
        _check_common(batches, mlqa_train)
        n_mono = sum(b.batch_type == "mono" for b in batches)
        assert {b.batch_type for b in batches} == {"mono", "cross"}
        sd = math.sqrt(STEPS * alpha * (1 - alpha))
        assert abs(n_mono - STEPS * alpha) < 4.5 * sd, (alpha, n_mono)
        for b in batches:
            if b.batch_type == "mono":
                assert len(set(b.query_languages.tolist())) == 1
                assert (b.query_languages == b.passage_languages).all()
            else:
                assert (b.query_languages != b.passage_languages).all()


def test_hybrid_extremes_are_the_pure_strategies(mlqa_train):
    assert {
        b.batch_type
        for b in LanguageBatchSampler([mlqa_train], BATCH, "hybrid", alpha=1.0).batches(0, 200)
    } == {"mono"}
    assert {
        b.batch_type
        for b in LanguageBatchSampler([mlqa_train], BATCH, "hybrid", alpha=0.0).batches(0, 200)
    } == {"cross"}


def test_random_batches_pool_monolingual_pairs(mlqa_train):
    sampler = LanguageBatchSampler([mlqa_train], BATCH, "random", seed=2)
    batches = list(sampler.batches(0, STEPS))
    _check_common(batches, mlqa_train)
    n_lang = len(mlqa_train.languages)
    counts = np.zeros(n_lang)
    for batch in batches:
        assert batch.batch_type == "random"
        assert (batch.query_languages == batch.passage_languages).all()
        counts += np.bincount(batch.query_languages, minlength=n_lang)
    # Languages appear in proportion to their number of pairs (the pooled data).
    sizes = (sampler.table.sets[0].pair_index >= 0).sum(axis=0)
    share = counts / counts.sum()
    assert np.abs(share - sizes / sizes.sum()).max() < 0.01
    assert np.mean([len(set(b.query_languages.tolist())) for b in batches]) > 4


def test_epoch_draws_without_replacement(mlqa_train):
    # Within one epoch the pooled pairs are drawn without replacement: an epoch of random
    # batches uses (steps_per_epoch * batch) distinct pairs.
    sampler = LanguageBatchSampler([mlqa_train], BATCH, "random", seed=4)
    assert sampler.steps_per_epoch == len(mlqa_train) // BATCH
    codes = np.concatenate([b.codes for b in sampler.batches(0, sampler.steps_per_epoch)])
    assert len(np.unique(codes)) == len(codes)


def test_same_seed_same_batches_and_resume_replays(mlqa_train):
    a = list(LanguageBatchSampler([mlqa_train], BATCH, "hybrid", seed=9).batches(0, 300))
    b = list(LanguageBatchSampler([mlqa_train], BATCH, "hybrid", seed=9).batches(0, 300))
    c = list(LanguageBatchSampler([mlqa_train], BATCH, "hybrid", seed=10).batches(0, 300))
    assert all(
        (x.codes == y.codes).all() and x.batch_type == y.batch_type
        for x, y in zip(a, b, strict=True)
    )
    assert any((x.codes != y.codes).any() for x, y in zip(a, c, strict=True))
    # Starting at step 187 (mid second epoch) yields exactly the uninterrupted batches.
    resumed = list(LanguageBatchSampler([mlqa_train], BATCH, "hybrid", seed=9).batches(187, 300))
    assert [r.step for r in resumed] == list(range(187, 300))
    assert all((x.codes == y.codes).all() for x, y in zip(a[187:], resumed, strict=True))


def test_ranks_agree_on_type_and_never_share_items(mlqa_train):
    world = 4
    samplers = [
        LanguageBatchSampler([mlqa_train], BATCH, "hybrid", seed=6, rank=r, world_size=world)
        for r in range(world)
    ]
    streams = [list(s.batches(0, 500)) for s in samplers]
    for step_batches in zip(*streams, strict=True):
        assert len({b.batch_type for b in step_batches}) == 1
        shards = [b.shard(r, world) for r, b in enumerate(step_batches)]
        assert all(len(s) == BATCH // world for s in shards)
        joined = np.concatenate(shards)
        items = [samplers[0].table.decode(int(c))[1] for c in joined]
        assert len(set(items)) == BATCH
        if step_batches[0].batch_type == "mono":
            assert len({samplers[0].table.decode(int(c))[2] for c in joined}) == 1


def test_works_as_a_plain_dataloader_batch_sampler(mlqa_train):
    sampler = LanguageBatchSampler([mlqa_train], 8, "cross", seed=0)
    loader = DataLoader(sampler.table, batch_sampler=sampler, collate_fn=list)
    assert len(loader) == sampler.steps_per_epoch
    first = next(iter(loader))
    assert len(first) == 8
    assert all(e.query_language != e.passage_language for e in first)
    assert len({e.parallel_id for e in first}) == 8
    # set_epoch changes the order, as DistributedSampler.set_epoch does.
    sampler.set_epoch(1)
    assert [e.code for e in next(iter(loader))] != [e.code for e in first]


def test_several_sets_one_set_per_batch_in_proportion(mlqa_train):
    small = mlqa_train.select(["en", "de"])
    sampler = LanguageBatchSampler([mlqa_train, small], BATCH, "hybrid", seed=0)
    batches = list(sampler.batches(0, STEPS))
    share = np.mean([b.set_index == 1 for b in batches])
    expected = len(small) / (len(small) + len(mlqa_train))
    assert abs(share - expected) < 4.5 * math.sqrt(expected * (1 - expected) / STEPS)
    for b in batches:
        decoded = {sampler.table.decode(int(c))[0] for c in b.codes}
        assert decoded == {b.set_index}
    # A high temperature flattens the draw towards equal shares.
    flat = LanguageBatchSampler([mlqa_train, small], BATCH, "hybrid", seed=0, set_temperature=100)
    assert abs(np.mean([b.set_index == 1 for b in flat.batches(0, STEPS)]) - 0.5) < 0.05


def test_table_decodes_texts(mlqa_train):
    table = ExampleTable([mlqa_train])
    tset = table.sets[0]
    item = int(tset.multilingual_items()[0])
    q, p = np.flatnonzero(tset.pair_index[item] >= 0)[:2]
    example = table.example(int(table.encode(0, item, q, p)))
    query_pair = mlqa_train.pairs[tset.pair_index[item, q]]
    passage_pair = mlqa_train.pairs[tset.pair_index[item, p]]
    assert example.query == query_pair.query and example.positive == passage_pair.positive
    assert example.query_language != example.passage_language
    missing = np.flatnonzero(tset.pair_index[item] < 0)
    if len(missing):
        with pytest.raises(KeyError, match="has no"):
            table.example(int(table.encode(0, item, q, missing[0])))


def _toy(n_items: int, languages: tuple[str, ...]) -> ParallelPairs:
    pairs = [
        Pair(f"i{i}", lang, f"q{i}{lang}", f"p{i}{lang}", f"g{i}")
        for i in range(n_items)
        for lang in languages
    ]
    return ParallelPairs("toy", languages, pairs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "bilingual"}, "unknown sampling strategy"),
        ({"strategy": "hybrid", "alpha": 1.5}, "alpha"),
        ({"strategy": "mono", "batch_size": 1}, "at least 2"),
        ({"strategy": "mono", "batch_size": 6, "world_size": 4}, "not divisible"),
        ({"strategy": "mono", "batch_size": 64}, "monolingual batch"),
    ],
)
def test_bad_settings_are_refused_up_front(kwargs, message):
    settings = {"batch_size": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        LanguageBatchSampler([_toy(20, ("en", "de"))], **settings)


def test_cross_needs_parallel_data():
    monolingual = ParallelPairs(
        "mono-only",
        ("en", "de"),
        [Pair(f"i{i}", "en" if i % 2 else "de", "q", "p", "g") for i in range(40)],
    )
    with pytest.raises(ValueError, match="parallel data"):
        LanguageBatchSampler([monolingual], 8, "cross")
    # mono and random are fine on the same data
    LanguageBatchSampler([monolingual], 8, "mono")
    LanguageBatchSampler([monolingual], 8, "random")


def test_languages_too_small_for_a_mono_batch_are_reported(mlqa_train):
    # German cut to 5 items: mono batches of 16 cannot use it, cross batches can.
    german = [p for p in mlqa_train.pairs if p.language == "de"][:5]
    pairs = ParallelPairs(
        "cut", mlqa_train.languages, [p for p in mlqa_train.pairs if p.language != "de"] + german
    )
    with pytest.warns(UserWarning, match=r"cut: de"):
        mono = LanguageBatchSampler([pairs], 16, "mono")
    assert mono.dropped_languages() == {"cut": ["de"]}
    assert all(b.query_languages[0] != pairs.languages.index("de") for b in mono.batches(0, 50))
    assert LanguageBatchSampler([pairs], 16, "cross").dropped_languages() == {}
    assert LanguageBatchSampler([pairs], 16, "hybrid", alpha=0.0).dropped_languages() == {}
    assert LanguageBatchSampler([mlqa_train], 16, "mono").dropped_languages() == {}
