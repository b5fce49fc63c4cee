"""Paired statistics of the study: headlines, cluster bootstrap, cluster sign-flip test.

Headlines are checked against ``aggregate_lareqa`` (the numbers the evaluation reports);
the vectorised bootstrap against an obviously correct loop fed the same draws, and its
coverage by simulation; the vectorised randomisation test against exact enumeration.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict

import numpy as np
import pytest

from langmix.evaluation.metrics import LareqaPerQuery, aggregate_lareqa, evaluate_lareqa
from langmix.study import paired
from langmix.study import statistics as st
from langmix.study.paired import compare
from langmix.study.statistics import METRICS, headline, seed_summary, units

LAREQA_METRICS = {
    "map_mono": lambda r: r.map["mono"],
    "map_cross": lambda r: r.map["cross"],
    "map_multi": lambda r: r.map["multi"],
    "r1_mono": lambda r: r.recall["mono@1"],
    "r1_cross": lambda r: r.recall["cross@1"],
    "r10_multi": lambda r: r.recall["multi@10"],
    "rank_distance": lambda r: r.rank_distance,
}


# ----------------------------------------------------------------------------- helpers


def as_mapping(per_query: LareqaPerQuery, parallel_ids: np.ndarray) -> dict[str, np.ndarray]:
    """The per-query ``.npz`` layout, built from a ``LareqaPerQuery``."""
    return {
        "languages": np.asarray(per_query.languages),
        "parallel_ids": np.asarray(parallel_ids),
        "query_lang": per_query.query_lang,
        "n_relevant": per_query.n_relevant,
        "mono_ap": per_query.mono_ap,
        "mono_recall1": per_query.mono_recall1,
        "cross_ap": per_query.cross_ap,
        "cross_recall1": per_query.cross_recall1,
        "multi_ap": per_query.multi_ap,
        "multi_recall10": per_query.multi_recall10,
        "rank_distance": per_query.rank_distance,
    }


def random_lareqa(seed: int, n_lang: int = 5, n_questions: int = 40, d: int = 16):
    """A LAReQA pool with random embeddings: questions missing in some languages, distractors.

    Returns ``(evaluate_lareqa result, parallel_ids)``.
    """
    rng = np.random.default_rng(seed)
    present = rng.random((n_questions, n_lang)) < 0.7
    present[:, 0] |= ~present.any(axis=1)  # every question exists somewhere
    present[0] = False
    present[0, 1] = True  # a single-language question: rank distance undefined
    topic = rng.normal(size=(n_questions, d))
    lang_shift = rng.normal(scale=0.5, size=(n_lang, d))

    cand, cand_lang, answer = [], [], {}
    for y in range(n_lang):
        for p in np.flatnonzero(present[:, y]):
            answer[p, y] = len(cand)
            cand.append(topic[p] + lang_shift[y] + rng.normal(scale=0.8, size=d))
            cand_lang.append(y)
        for _ in range(6):  # distractor sentences
            cand.append(rng.normal(size=d) + lang_shift[y])
            cand_lang.append(y)
    queries, query_lang, parallel_ids, rows = [], [], [], []
    for y in range(n_lang):  # language-major order, as the datasets are
        for p in np.flatnonzero(present[:, y]):
            queries.append(topic[p] + rng.normal(scale=0.8, size=d))
            query_lang.append(y)
            parallel_ids.append(f"question-{p}")
            rows.append([answer[p, z] for z in range(n_lang) if present[p, z]])

    def unit(x: list) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    indptr = np.r_[0, np.cumsum([len(r) for r in rows])]
    result = evaluate_lareqa(
        unit(queries),
        unit(cand),
        np.asarray(query_lang),
        np.asarray(cand_lang),
        indptr,
        np.concatenate(rows).astype(np.int64),
        [f"l{i}" for i in range(n_lang)],
        n_threads=1,
    )
    return result, np.asarray(parallel_ids)


def clustered_runs(
    rng: np.random.Generator,
    n_clusters: int = 60,
    n_lang: int = 3,
    shift: tuple[float, ...] = (0.0, 0.0, 0.0),
    metric_array: str = "multi_ap",
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Two runs on the same queries; a - b = shift[language] + cluster effect + noise.

    The cluster effect is shared by a question's translations, so ignoring clusters would
    understate the uncertainty. The true macro difference is ``mean(shift)``.
    """
    present = rng.random((n_clusters, n_lang)) < 0.8
    present[:, 0] |= ~present.any(axis=1)
    p, q_lang = np.nonzero(present)
    effect = rng.normal(scale=0.1, size=n_clusters)[p]
    diff = np.asarray(shift)[q_lang] + effect + rng.normal(scale=0.1, size=p.size)
    b_values = rng.random(p.size)
    ids = np.asarray([f"q{i}" for i in p])
    a = {"parallel_ids": ids, "query_lang": q_lang, metric_array: b_values + diff}
    b = {"parallel_ids": ids, "query_lang": q_lang, metric_array: b_values}
    return a, b


def loop_macro(values: np.ndarray, group: np.ndarray, cluster: np.ndarray, drawn) -> float:
    """Macro mean over the units of the drawn clusters (repeats count), the slow way."""
    by_cluster = defaultdict(list)
    for v, g, c in zip(values, group, cluster, strict=True):
        by_cluster[int(c)].append((float(v), int(g)))
    by_group = defaultdict(list)
    for c in drawn:
        for v, g in by_cluster[int(c)]:
            by_group[g].append(v)
    return float(np.mean([np.mean(v) for v in by_group.values()]))


def cross_case(seed: int = 3):
    """Units of a small, unbalanced cross-lingual case, with random paired differences."""
    result, pids = random_lareqa(seed, n_lang=4, n_questions=15)
    u = units(as_mapping(result.per_query, pids), "map_cross")
    diff = np.random.default_rng(seed).normal(0.05, 0.2, len(u))
    return u, diff


# --------------------------------------------------------------------------- headlines


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_headline_equals_aggregate_lareqa(seed: int, tmp_path) -> None:
    result, pids = random_lareqa(seed)
    mapping = as_mapping(result.per_query, pids)
    np.savez(tmp_path / "per_query.npz", **mapping)
    with np.load(tmp_path / "per_query.npz") as npz:
        for metric, expected in LAREQA_METRICS.items():
            assert not np.isnan(expected(result))
            assert headline(mapping, metric) == pytest.approx(expected(result), abs=1e-12)
            assert headline(npz, metric) == pytest.approx(expected(result), abs=1e-12)


def test_headline_on_resample_with_missing_groups() -> None:
    # A resample drops whole languages and pairs: headline and aggregate must leave out the
    # same groups.
    result, pids = random_lareqa(4)
    pq = result.per_query
    keep = np.flatnonzero(pq.query_lang != 2)
    idx = np.random.default_rng(0).choice(keep, size=keep.size // 3, replace=True)
    sub = aggregate_lareqa(pq.take(idx))
    mapping = as_mapping(pq.take(idx), pids[idx])
    for metric, expected in LAREQA_METRICS.items():
        assert headline(mapping, metric) == pytest.approx(expected(sub), abs=1e-12)


def test_headline_on_real_mlqa_r(data_dir) -> None:
    from langmix.data import load_lareqa

    ds = load_lareqa("mlqa-r", "de,es,vi", data_dir=data_dir, allow_download=False)
    query_lang, cand_lang, indptr, indices = ds.relevance_arrays()
    rng = np.random.default_rng(0)
    q = rng.normal(size=(len(ds.queries), 8)).astype(np.float32)
    c = rng.normal(size=(len(ds.candidates), 8)).astype(np.float32)
    result = evaluate_lareqa(q, c, query_lang, cand_lang, indptr, indices, list(ds.languages))
    mapping = as_mapping(result.per_query, np.asarray([x.parallel_id for x in ds.queries]))
    for metric, expected in LAREQA_METRICS.items():
        assert headline(mapping, metric) == pytest.approx(expected(result), abs=1e-12)
    languages_of = defaultdict(set)
    for x in ds.queries:
        languages_of[x.parallel_id].add(x.language)
    assert units(mapping, "map_multi").n_clusters == len(languages_of)
    u = units(mapping, "map_cross")
    assert u.n_groups == 6  # every ordered pair of the three languages
    # Only questions asked in two or more of the languages have cross-lingual cells.
    assert u.n_clusters == sum(len(v) >= 2 for v in languages_of.values())


def test_units_structure() -> None:
    pq = {
        "parallel_ids": np.array(["b", "a", "b", "a"]),
        "query_lang": np.array([0, 0, 1, 1]),
        "cross_ap": np.array(
            [[np.nan, 0.5], [np.nan, np.nan], [0.25, 0.9], [1.0, 0.7]]  # [2, 1] is own-lang
        ),
        "rank_distance": np.array([3.0, np.nan, 1.0, 5.0]),
    }
    u = units(pq, "map_cross")
    assert u.keys.tolist() == [[0, 1], [2, 0], [3, 0]]
    assert u.values.tolist() == [0.5, 0.25, 1.0]
    assert u.group.tolist() == [0, 1, 1]  # pairs 0->1 and 1->0 exist
    assert u.cluster.tolist() == [1, 1, 0]  # "a" < "b"
    assert (u.n_groups, u.n_clusters) == (2, 2)
    assert u.macro_mean() == pytest.approx((0.5 + 0.625) / 2)
    r = units(pq, "rank_distance")
    assert r.keys[:, 0].tolist() == [0, 2, 3]
    assert headline(pq, "rank_distance") == pytest.approx((3.0 + 3.0) / 2)


def test_miracl_headline_is_plain_mean() -> None:
    rng = np.random.default_rng(0)
    pq = {"query_ids": np.array([f"q{i}" for i in range(50)])}
    for metric in ("ndcg@10", "recall@100", "map@100"):
        pq[metric] = rng.random(50)
        u = units(pq, metric)
        assert (u.n_groups, u.n_clusters) == (1, 50)
        assert headline(pq, metric) == pytest.approx(pq[metric].mean(), abs=1e-15)


def test_metrics_table() -> None:
    assert set(METRICS) == set(LAREQA_METRICS) | {"ndcg@10", "recall@100", "map@100"}
    assert [m for m, (_, higher) in METRICS.items() if not higher] == ["rank_distance"]


# --------------------------------------------------------------------------- bootstrap


def test_macro_from_weights_equals_loop() -> None:
    u, diff = cross_case()
    sums, counts = st._cluster_table(u, diff)
    rng = np.random.default_rng(1)
    draws = rng.integers(0, u.n_clusters, size=(200, u.n_clusters))
    draws[0] = 0  # a replicate of one cluster: most pairs get no units
    weights = np.stack([np.bincount(d, minlength=u.n_clusters) for d in draws]).astype(float)
    fast = paired._macro_from_weights(sums, counts, weights)
    slow = [loop_macro(diff, u.group, u.cluster, d) for d in draws]
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


@pytest.mark.parametrize("batch_bytes", [None, 4096])
def test_bootstrap_equals_loop_with_same_draws(batch_bytes, monkeypatch) -> None:
    u, diff = cross_case(5)
    if batch_bytes is not None:  # force several batches, to check the batch seams
        monkeypatch.setattr(st, "_BATCH_BYTES", batch_bytes)
    batches = st._batches(150, u.n_clusters, 32)
    assert (len(batches) > 1) == (batch_bytes is not None)
    sums, counts = st._cluster_table(u, diff)
    fast = paired._bootstrap(sums, counts, np.random.default_rng(7), 150)
    rng = np.random.default_rng(7)  # the same stream, drawn batch by batch as _bootstrap does
    draws = np.concatenate(
        [rng.integers(0, u.n_clusters, (i1 - i0, u.n_clusters)) for i0, i1 in batches]
    )
    slow = [loop_macro(diff, u.group, u.cluster, d) for d in draws]
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_compare_interval_matches_loop_bootstrap() -> None:
    # Independent draws: the percentile interval must agree within Monte-Carlo error.
    a, b = clustered_runs(np.random.default_rng(11), n_clusters=30, shift=(0.1, 0.0, -0.05))
    res = compare(a, b, "map_multi", n_resamples=4000, n_permutations=10)
    u = units(a, "map_multi")
    diff = a["multi_ap"] - b["multi_ap"]
    rng = np.random.default_rng(123)
    slow = [
        loop_macro(diff, u.group, u.cluster, rng.integers(0, u.n_clusters, u.n_clusters))
        for _ in range(4000)
    ]
    low, high = np.quantile(slow, [0.025, 0.975])
    width = high - low
    assert res.ci_low == pytest.approx(low, abs=0.1 * width)
    assert res.ci_high == pytest.approx(high, abs=0.1 * width)
    assert res.ci_low < res.difference < res.ci_high


def test_interval_coverage() -> None:
    rng = np.random.default_rng(2024)
    shift = (0.06, 0.0, -0.03)
    truth = float(np.mean(shift))
    covered = []
    for i in range(200):
        a, b = clustered_runs(rng, n_clusters=60, shift=shift)
        res = compare(a, b, "map_multi", n_resamples=500, n_permutations=1, seed=i)
        covered.append(res.ci_low <= truth <= res.ci_high)
    assert 0.88 <= np.mean(covered) <= 0.99


# ------------------------------------------------------------------------ permutation


def test_p_value_equals_exact_enumeration() -> None:
    rng = np.random.default_rng(8)
    a, b = clustered_runs(rng, n_clusters=8, n_lang=2, shift=(0.05, 0.03))
    u = units(a, "map_multi")
    assert u.n_clusters == 8
    diff = a["multi_ap"] - b["multi_ap"]
    observed = loop_macro(diff, u.group, u.cluster, range(8))
    stats = []
    for signs in itertools.product([-1.0, 1.0], repeat=8):
        flipped = diff * np.asarray(signs)[u.cluster]
        stats.append(loop_macro(flipped, u.group, u.cluster, range(8)))
    exact = np.mean(np.abs(stats) >= abs(observed) - 1e-12)
    assert 0.05 < exact < 0.6  # a case where the p-value is not trivially 1/256 or 1
    n = 20000
    res = compare(a, b, "map_multi", n_resamples=10, n_permutations=n)
    se = np.sqrt(exact * (1 - exact) / n)
    assert res.p_value == pytest.approx(exact, abs=5 * se + 1 / n)


def test_p_value_null_and_clear_shift() -> None:
    rng = np.random.default_rng(5)
    a, b = clustered_runs(rng, shift=(0.0, 0.0, 0.0))
    same = compare(a, a, "map_multi", n_resamples=200)
    assert same.difference == 0.0
    assert same.p_value == 1.0
    assert same.ci_low == same.ci_high == 0.0

    shifted = compare(a, b, "map_multi", n_resamples=200)
    shifted_far = dict(a, multi_ap=b["multi_ap"] + 0.2)
    clear = compare(shifted_far, b, "map_multi", n_resamples=200)
    assert clear.p_value < 0.01
    assert clear.ci_low > 0.15
    assert shifted.p_value > 0.01 or abs(shifted.difference) > 0.02

    # Under the null the p-values are roughly uniform.
    p = [
        compare(*clustered_runs(rng, n_clusters=30), "map_multi", n_resamples=1, seed=i).p_value
        for i in range(150)
    ]
    assert 0.4 < np.mean(p) < 0.6
    assert np.mean(np.asarray(p) < 0.05) < 0.12


# ----------------------------------------------------------------------------- seeds


def test_seeds_are_averaged_per_side() -> None:
    result, pids = random_lareqa(6)
    base = as_mapping(result.per_query, pids)
    rng = np.random.default_rng(0)

    def jitter(mapping):
        out = dict(mapping)
        for key in ("cross_ap", "multi_ap"):
            out[key] = mapping[key] + rng.normal(0, 0.05, mapping[key].shape)
        return out

    runs_a = [jitter(base), jitter(base)]
    runs_b = [jitter(base), jitter(base), jitter(base)]
    averaged_a = dict(base, cross_ap=(runs_a[0]["cross_ap"] + runs_a[1]["cross_ap"]) / 2)
    averaged_b = dict(
        base,
        cross_ap=(runs_b[0]["cross_ap"] + runs_b[1]["cross_ap"] + runs_b[2]["cross_ap"]) / 3,
    )
    many = compare(runs_a, runs_b, "map_cross", n_resamples=300, n_permutations=300)
    one = compare(averaged_a, averaged_b, "map_cross", n_resamples=300, n_permutations=300)
    for field in ("mean_a", "mean_b", "difference", "ci_low", "ci_high"):
        assert getattr(many, field) == pytest.approx(getattr(one, field), abs=1e-12)
    assert many.p_value == one.p_value
    assert many.mean_a == pytest.approx(np.mean([headline(r, "map_cross") for r in runs_a]))
    assert many.mean_b == pytest.approx(np.mean([headline(r, "map_cross") for r in runs_b]))
    assert many.n_clusters == units(base, "map_cross").n_clusters

    single = compare(runs_a[0], runs_b[0], "map_multi", n_resamples=50, n_permutations=50)
    listed = compare([runs_a[0]], [runs_b[0]], "map_multi", n_resamples=50, n_permutations=50)
    assert single == listed


def test_seed_summary() -> None:
    assert seed_summary([0.5]) == (0.5, 0.0)
    mean, sd = seed_summary([1.0, 2.0, 3.0])
    assert (mean, sd) == (2.0, 1.0)
    with pytest.raises(ValueError, match="at least one"):
        seed_summary([])


# ---------------------------------------------------------------------------- errors


def test_mismatched_queries_raise() -> None:
    a, b = clustered_runs(np.random.default_rng(0))
    swapped = dict(b, parallel_ids=b["parallel_ids"].copy())
    swapped["parallel_ids"][[3, 4]] = swapped["parallel_ids"][[4, 3]]
    assert swapped["parallel_ids"][3] != b["parallel_ids"][3]
    with pytest.raises(
        ValueError, match=r"b\[0\] and a\[0\].*'parallel_ids' differs at position 3"
    ):
        compare(a, swapped, "map_multi")
    other_lang = dict(b, query_lang=(b["query_lang"] + 1) % 3)
    with pytest.raises(ValueError, match="'query_lang' differs"):
        compare(a, other_lang, "map_multi")
    shorter = {k: v[:-1] for k, v in b.items()}
    with pytest.raises(ValueError, match=r"not the same queries.*shape"):
        compare(a, shorter, "map_multi")
    with pytest.raises(ValueError, match=r"a\[1\] and a\[0\]"):
        compare([a, shorter], b, "map_multi")
    nan_b = dict(b, multi_ap=b["multi_ap"].copy())
    nan_b["multi_ap"][0] = np.nan
    with pytest.raises(ValueError, match=r"different \(query, column\) cells"):
        compare(a, nan_b, "map_multi")

    ids = np.array(["q1", "q2", "q3"])
    m1 = {"query_ids": ids, "ndcg@10": np.array([0.1, 0.2, 0.3])}
    m2 = {"query_ids": ids[::-1], "ndcg@10": np.array([0.1, 0.2, 0.3])}
    with pytest.raises(ValueError, match="'query_ids' differs at position 0"):
        compare(m1, m2, "ndcg@10")


def test_bad_metric_and_arguments_raise() -> None:
    a, b = clustered_runs(np.random.default_rng(0))
    for call in (lambda: compare(a, b, "map"), lambda: headline(a, "map"), lambda: units(a, "map")):
        with pytest.raises(ValueError, match="unknown metric 'map'; valid metrics: map_mono, "):
            call()
    with pytest.raises(ValueError, match=r"no 'ndcg@10'.*parallel_ids"):
        headline(a, "ndcg@10")
    with pytest.raises(ValueError, match="no 'cross_ap'"):
        compare(a, b, "map_cross")
    with pytest.raises(ValueError, match="confidence"):
        compare(a, b, "map_multi", confidence=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        compare(a, b, "map_multi", n_resamples=0)
    with pytest.raises(ValueError, match="empty list"):
        compare([], b, "map_multi")
    with pytest.raises(TypeError, match="per-query mapping"):
        compare("run.npz", b, "map_multi")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ speed


def test_compare_is_fast_at_xquad_r_size() -> None:
    # XQuAD-R: 1190 questions x 11 languages = 13,090 queries; cross has 130,900 units.
    rng = np.random.default_rng(0)
    n_questions, n_lang = 1190, 11
    ids = np.repeat(np.asarray([f"q{i}" for i in range(n_questions)]), n_lang)
    ql = np.tile(np.arange(n_lang), n_questions)
    runs = []
    for shift in (0.01, 0.0):
        cross = np.clip(rng.random((ids.size, n_lang)) + shift, 0, 1)
        cross[np.arange(ids.size), ql] = np.nan
        runs.append({"parallel_ids": ids, "query_lang": ql, "cross_ap": cross})
    started = time.perf_counter()
    res = compare(runs[0], runs[1], "map_cross")
    elapsed = time.perf_counter() - started
    assert len(units(runs[0], "map_cross")) == 130_900
    assert res.n_clusters == 1190 and res.n_resamples == 2000
    assert res.ci_low < res.difference < res.ci_high
    assert elapsed < 5.0, f"compare took {elapsed:.2f} s"


def test_miracl_headline_is_the_macro_mean_over_languages() -> None:
    """A study's MIRACL ids are ``language/qid``: the headline averages the languages, as
    MIRACL and ``langmix eval`` report it, not the pooled queries."""
    pq = {
        "query_ids": np.array(["sw/1", "sw/2", "sw/3", "yo/1"]),
        "ndcg@10": np.array([0.2, 0.4, 0.6, 1.0]),
    }
    u = units(pq, "ndcg@10")
    assert u.n_groups == 2 and u.n_clusters == 4
    assert u.macro_mean() == pytest.approx((0.4 + 1.0) / 2)  # pooled would be 0.55
    plain = units({**pq, "query_ids": np.array(["1", "2", "3", "4"])}, "ndcg@10")
    assert plain.n_groups == 1 and plain.macro_mean() == pytest.approx(0.55)
