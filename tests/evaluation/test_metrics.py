"""LAReQA metrics cross-checked against independent implementations.

Embeddings are drawn on a dyadic grid so every dot product is exact in float32 whatever
the summation order: numpy (reference) and torch (kernel) scores are then bit-identical
and exact ties are real ties, so rank-based numbers can be asserted for equality.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import pytrec_eval
import torch
from sklearn.metrics import average_precision_score

from langmix.evaluation.metrics import (
    LareqaResult,
    aggregate_lareqa,
    evaluate_lareqa,
    relevant_ranks,
)


@dataclass
class Pool:
    q: np.ndarray
    c: np.ndarray
    ql: np.ndarray
    cl: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    languages: list[str]

    @property
    def scores(self) -> np.ndarray:
        return self.q @ self.c.T

    def relevant(self, qi: int) -> np.ndarray:
        return self.indices[self.indptr[qi] : self.indptr[qi + 1]]


def make_pool(seed: int, kind: str, n_lang: int = 4, nq: int = 50, nc: int = 160) -> Pool:
    """Random pool; ``kind`` is "fine" (few ties), "coarse" (many ties) or "dup"."""
    rng = np.random.default_rng(seed)
    # Integer / 2^k entries with small d keep every dot product exact in float32.
    if kind == "coarse":
        d, scale, hi = 6, 4.0, 2
    else:
        d, scale, hi = 16, 128.0, 127
    q = (rng.integers(-hi, hi + 1, (nq, d)) / scale).astype(np.float32)
    c = (rng.integers(-hi, hi + 1, (nc, d)) / scale).astype(np.float32)
    cl = rng.integers(0, n_lang, nc)
    cl[rng.permutation(nc)[:n_lang]] = np.arange(n_lang)  # every language has candidates
    ql = rng.integers(0, n_lang, nq)
    rows = []
    for qi in range(nq):
        langs = [y for y in range(n_lang) if rng.random() < (0.9 if y == ql[qi] else 0.6)]
        if not langs:
            langs = [int(rng.integers(n_lang))]
        rows.append([int(rng.choice(np.flatnonzero(cl == y))) for y in langs])
        rng.shuffle(rows[-1])
    if kind == "dup":
        # Identical embeddings (duplicate sentences) tie with relevant candidates for
        # every query, in the same language and across languages.
        for qi in range(0, nq, 3):
            j = rows[qi][0]
            for other in rng.choice(nc, 3, replace=False):
                if other not in (j,):
                    c[other] = c[j]
    indptr = np.r_[0, np.cumsum([len(r) for r in rows])]
    indices = np.concatenate(rows).astype(np.int64)
    return Pool(q, c, ql, cl, indptr, indices, [f"l{i}" for i in range(n_lang)])


def evaluate(pool: Pool, **kw) -> LareqaResult:
    return evaluate_lareqa(
        pool.q, pool.c, pool.ql, pool.cl, pool.indptr, pool.indices, pool.languages, **kw
    )


def naive_ranks(pool: Pool) -> tuple[np.ndarray, np.ndarray]:
    """Full sort per query: score descending, then candidate index ascending."""
    s = pool.scores
    nc = s.shape[1]
    in_lang, pooled = [], []
    for qi in range(s.shape[0]):
        order = np.lexsort((np.arange(nc), -s[qi]))
        rank = np.empty(nc, dtype=np.int64)
        rank[order] = np.arange(1, nc + 1)
        for j in pool.relevant(qi):
            same = pool.cl == pool.cl[j]
            in_lang.append(int(((rank < rank[j]) & same).sum()) + 1)
            pooled.append(int(rank[j]))
    return np.array(in_lang), np.array(pooled)


def docid(nc: int, j: int) -> str:
    # trec_eval breaks score ties by docid descending; reversing the index makes that
    # equal to our "smaller candidate index first" rule.
    return f"c{nc - 1 - j:06d}"


def trec_reference(pool: Pool) -> dict[str, np.ndarray]:
    """Per-query mono/cross/multi numbers from pytrec_eval on the same score matrix."""
    s = pool.scores
    nq, nc = s.shape
    n_lang = len(pool.languages)
    ap = np.full((nq, n_lang), np.nan)
    r1 = np.full((nq, n_lang), np.nan)
    for y in range(n_lang):
        cands = np.flatnonzero(pool.cl == y)
        qrels, run = {}, {}
        for qi in range(nq):
            rel = [j for j in pool.relevant(qi) if pool.cl[j] == y]
            if rel:
                qrels[str(qi)] = {docid(nc, rel[0]): 1}
                run[str(qi)] = {docid(nc, j): float(s[qi, j]) for j in cands}
        out = pytrec_eval.RelevanceEvaluator(qrels, {"map", "P_1"}).evaluate(run)
        for qid, m in out.items():
            ap[int(qid), y] = m["map"]
            r1[int(qid), y] = m["P_1"]
    qrels = {str(qi): {docid(nc, j): 1 for j in pool.relevant(qi)} for qi in range(nq)}
    run = {str(qi): {docid(nc, j): float(s[qi, j]) for j in range(nc)} for qi in range(nq)}
    out = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recall_10"}).evaluate(run)
    return {
        "ap": ap,
        "r1": r1,
        "multi_ap": np.array([out[str(qi)]["map"] for qi in range(nq)]),
        "multi_r10": np.array([out[str(qi)]["recall_10"] for qi in range(nq)]),
    }


def split_mono_cross(pool: Pool, by_lang: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(by_lang.shape[0])
    mono = by_lang[rows, pool.ql]
    cross = by_lang.copy()
    cross[rows, pool.ql] = np.nan
    return mono, cross


CASES = [(seed, kind) for seed in range(3) for kind in ("fine", "coarse", "dup")]


@pytest.mark.parametrize(("seed", "kind"), CASES)
def test_ranks_match_full_sort(seed: int, kind: str) -> None:
    pool = make_pool(seed, kind)
    ranks = relevant_ranks(pool.q, pool.c, pool.cl, pool.indptr, pool.indices, chunk_size=7)
    exp_in, exp_pooled = naive_ranks(pool)
    np.testing.assert_array_equal(ranks.in_lang, exp_in)
    np.testing.assert_array_equal(ranks.pooled, exp_pooled)


def test_tie_fixture_really_has_ties() -> None:
    # Guards the tie tests against silently testing nothing.
    for kind in ("coarse", "dup"):
        pool = make_pool(0, kind)
        s = pool.scores
        rq = np.repeat(np.arange(len(pool.ql)), np.diff(pool.indptr))
        ties = (s[rq] == s[rq, pool.indices][:, None]).sum(axis=1) - 1
        assert (ties > 0).mean() > 0.2, kind


@pytest.mark.parametrize(("seed", "kind"), CASES)
def test_per_query_matches_pytrec_eval(seed: int, kind: str) -> None:
    pool = make_pool(seed, kind)
    res = evaluate(pool)
    ref = trec_reference(pool)
    pq = res.per_query
    mono_ap, cross_ap = split_mono_cross(pool, ref["ap"])
    mono_r1, cross_r1 = split_mono_cross(pool, ref["r1"])
    np.testing.assert_allclose(pq.mono_ap, mono_ap, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pq.cross_ap, cross_ap, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pq.mono_recall1, mono_r1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pq.cross_recall1, cross_r1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pq.multi_ap, ref["multi_ap"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(pq.multi_recall10, ref["multi_r10"], rtol=0, atol=1e-12)
    # Some queries lack their own language or a target language: NaN, not zero.
    assert np.isnan(pq.mono_ap).any() and np.isnan(pq.cross_ap[:, 0]).any()


@pytest.mark.parametrize("seed", range(3))
def test_ap_matches_sklearn_without_ties(seed: int) -> None:
    pool = make_pool(seed, "fine")
    s = pool.scores
    pq = evaluate(pool).per_query
    checked = 0
    for qi in range(len(pool.ql)):
        rel = pool.relevant(qi)
        if np.isin(s[qi], s[qi, rel]).sum() != len(rel):
            continue  # sklearn averages over tied scores; compare only tie-free rows
        y_true = np.isin(np.arange(s.shape[1]), rel)
        assert pq.multi_ap[qi] == pytest.approx(average_precision_score(y_true, s[qi]), abs=1e-12)
        for j in rel:
            lang = pool.cl[j]
            pool_y = pool.cl == lang
            want = average_precision_score(y_true[pool_y], s[qi, pool_y])
            got = pq.mono_ap[qi] if lang == pool.ql[qi] else pq.cross_ap[qi, lang]
            assert got == pytest.approx(want, abs=1e-12)
        checked += 1
    assert checked >= 40


@pytest.mark.parametrize(("seed", "kind"), CASES)
def test_rank_distance_matches_naive(seed: int, kind: str) -> None:
    pool = make_pool(seed, kind)
    res = evaluate(pool)
    _, pooled = naive_ranks(pool)
    want = []
    for qi in range(len(pool.ql)):
        r = pooled[pool.indptr[qi] : pool.indptr[qi + 1]]
        want.append(float(r.max() - r.min()) if r.size >= 2 else np.nan)
    np.testing.assert_array_equal(res.per_query.rank_distance, np.array(want))
    assert np.nanmax(want) > 0


def reference_aggregate(pool: Pool, ref: dict[str, np.ndarray], rd: np.ndarray) -> dict:
    """The paper's aggregation, written as plain loops over the reference numbers."""
    langs = range(len(pool.languages))
    pair_ap, pair_r1 = {}, {}
    for x in langs:
        for y in langs:
            qs = [qi for qi in range(len(pool.ql)) if pool.ql[qi] == x]
            vals = [(ref["ap"][qi, y], ref["r1"][qi, y]) for qi in qs]
            vals = [v for v in vals if not np.isnan(v[0])]
            if vals:
                pair_ap[x, y] = sum(v[0] for v in vals) / len(vals)
                pair_r1[x, y] = sum(v[1] for v in vals) / len(vals)
    mono = [k for k in pair_ap if k[0] == k[1]]
    cross = [k for k in pair_ap if k[0] != k[1]]
    per_lang = {}
    for x in langs:
        qs = [qi for qi in range(len(pool.ql)) if pool.ql[qi] == x]
        if qs:
            d = [rd[qi] for qi in qs if not np.isnan(rd[qi])]
            per_lang[x] = (
                np.mean([ref["multi_ap"][qi] for qi in qs]),
                np.mean([ref["multi_r10"][qi] for qi in qs]),
                np.mean(d) if d else np.nan,
            )
    return {
        "pair_ap": pair_ap,
        "pair_r1": pair_r1,
        "map": {
            "mono": np.mean([pair_ap[k] for k in mono]),
            "cross": np.mean([pair_ap[k] for k in cross]),
            "multi": np.mean([v[0] for v in per_lang.values()]),
        },
        "recall": {
            "mono@1": np.mean([pair_r1[k] for k in mono]),
            "cross@1": np.mean([pair_r1[k] for k in cross]),
            "multi@10": np.mean([v[1] for v in per_lang.values()]),
        },
        "rank_distance": np.nanmean([v[2] for v in per_lang.values()]),
        "per_lang": per_lang,
    }


@pytest.mark.parametrize(("seed", "kind"), [(0, "fine"), (1, "dup"), (2, "coarse")])
def test_aggregation_matches_reference(seed: int, kind: str) -> None:
    pool = make_pool(seed, kind, n_lang=5, nq=80)
    res = evaluate(pool)
    want = reference_aggregate(pool, trec_reference(pool), res.per_query.rank_distance)
    for key in ("mono", "cross", "multi"):
        assert res.map[key] == pytest.approx(want["map"][key], abs=1e-12)
    for key in ("mono@1", "cross@1", "multi@10"):
        assert res.recall[key] == pytest.approx(want["recall"][key], abs=1e-12)
    assert res.rank_distance == pytest.approx(want["rank_distance"], abs=1e-9)
    names = pool.languages
    assert set(res.per_pair) == {f"{names[x]}-{names[y]}" for x, y in want["pair_ap"]}
    for (x, y), v in want["pair_ap"].items():
        got = res.per_pair[f"{names[x]}-{names[y]}"]
        assert got["map"] == pytest.approx(v, abs=1e-12)
        assert got["recall@1"] == pytest.approx(want["pair_r1"][x, y], abs=1e-12)
    for x, (m, r10, rd) in want["per_lang"].items():
        got = res.per_language[names[x]]
        assert got["map_multi"] == pytest.approx(m, abs=1e-12)
        assert got["recall@10"] == pytest.approx(r10, abs=1e-12)
        assert got["rank_distance"] == pytest.approx(rd, abs=1e-9)
        assert got["n_queries"] == int((pool.ql == x).sum())


def test_hand_computed_example() -> None:
    # en: c0=(1,0), c1=(0,1); de: c2=(1,0) duplicates c0, c3=(.5,.5).
    c = np.array([[1, 0], [0, 1], [1, 0], [0.5, 0.5]], dtype=np.float32)
    cl = np.array([0, 0, 1, 1])
    q = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    ql = np.array([0, 1, 1])  # q2 (de) has no German answer: mono skipped
    indptr = np.array([0, 2, 4, 5])
    indices = np.array([0, 3, 2, 1, 1])
    res = evaluate_lareqa(q, c, ql, cl, indptr, indices, ["en", "de"])

    # q0 scores 1,0,1,.5: c0 first (ties with c2, smaller index); c3 is 2nd in de, 3rd
    # pooled. q1: c2 ties c0 and loses the tie -> pooled rank 2; c1 last (4).
    assert res.ranks is not None
    assert res.ranks.in_lang.tolist() == [1, 2, 1, 2, 1]
    assert res.ranks.pooled.tolist() == [1, 3, 2, 4, 1]
    pq = res.per_query
    np.testing.assert_allclose(pq.mono_ap, [1.0, 1.0, np.nan])
    np.testing.assert_allclose(pq.multi_ap, [(1 + 2 / 3) / 2, (1 / 2 + 2 / 4) / 2, 1.0])
    np.testing.assert_allclose(pq.rank_distance, [2.0, 2.0, np.nan])
    np.testing.assert_allclose(
        pq.cross_ap, [[np.nan, 0.5], [0.5, np.nan], [1.0, np.nan]], equal_nan=True
    )
    assert res.per_pair == {
        "en-en": {"map": 1.0, "recall@1": 1.0, "n_queries": 1},
        "en-de": {"map": 0.5, "recall@1": 0.0, "n_queries": 1},
        "de-en": {"map": 0.75, "recall@1": 0.5, "n_queries": 2},
        "de-de": {"map": 1.0, "recall@1": 1.0, "n_queries": 1},
    }
    assert res.map == pytest.approx({"mono": 1.0, "cross": 0.625, "multi": (5 / 6 + 0.75) / 2})
    assert res.recall == pytest.approx({"mono@1": 1.0, "cross@1": 0.25, "multi@10": 1.0})
    assert res.rank_distance == 2.0
    assert res.per_language["de"] == pytest.approx(
        {"map_multi": 0.75, "recall@10": 1.0, "rank_distance": 2.0, "n_queries": 2}
    )


def test_chunking_and_threads_do_not_change_ranks() -> None:
    pool = make_pool(7, "dup", n_lang=6, nq=300, nc=2000)
    args = (pool.q, pool.c, pool.cl, pool.indptr, pool.indices)
    base = relevant_ranks(*args, chunk_size=1, n_threads=1)
    exp_in, exp_pooled = naive_ranks(pool)
    np.testing.assert_array_equal(base.in_lang, exp_in)
    np.testing.assert_array_equal(base.pooled, exp_pooled)
    for chunk, threads in ((13, 2), (300, 3), (None, None)):
        other = relevant_ranks(*args, chunk_size=chunk, n_threads=threads)
        np.testing.assert_array_equal(other.in_lang, base.in_lang)
        np.testing.assert_array_equal(other.pooled, base.pooled)


def test_resampling_per_query_equals_evaluating_resampled_queries() -> None:
    pool = make_pool(3, "dup")
    res = evaluate(pool)
    again = aggregate_lareqa(res.per_query.take(np.arange(len(pool.ql))))
    assert again.to_dict() == res.to_dict()

    sample = np.random.default_rng(0).integers(0, len(pool.ql), len(pool.ql))
    rows = [pool.relevant(qi) for qi in sample]
    resampled = Pool(
        pool.q[sample],
        pool.c,
        pool.ql[sample],
        pool.cl,
        np.r_[0, np.cumsum([len(r) for r in rows])],
        np.concatenate(rows),
        pool.languages,
    )
    direct = evaluate(resampled).to_dict()
    boot = aggregate_lareqa(res.per_query.take(sample)).to_dict()
    assert json.dumps(boot, sort_keys=True) == json.dumps(direct, sort_keys=True)
    assert boot["map"] != res.to_dict()["map"]


def test_to_dict_is_json_safe() -> None:
    pool = make_pool(0, "fine")
    single = np.arange(len(pool.ql))  # one relevant each -> rank distance undefined
    pool.indices = pool.indices[pool.indptr[:-1]]
    pool.indptr = np.r_[single, len(pool.ql)]
    out = evaluate(pool).to_dict()
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text) == out
    assert out["rank_distance"] is None
    assert set(out) == {"map", "recall", "rank_distance", "per_pair", "per_language"}
    value = next(iter(out["per_pair"].values()))
    assert type(value["map"]) is float and type(value["n_queries"]) is int


def test_xquad_like_pool_smoke() -> None:
    # Normalised continuous embeddings, 11 relevant per query, uneven language blocks.
    rng = np.random.default_rng(0)
    n_lang, n_q, d = 11, 30, 32
    sizes = rng.integers(30, 40, n_lang)
    cl = np.repeat(np.arange(n_lang), sizes)
    perm = rng.permutation(cl.size)
    cl = cl[perm]
    c = rng.standard_normal((cl.size, d)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    answers = np.stack([rng.permutation(np.flatnonzero(cl == y))[:n_q] for y in range(n_lang)])
    ql = np.repeat(np.arange(n_lang), n_q)
    indices = np.concatenate([answers[:, i % n_q] for i in range(ql.size)])
    # Queries close to their answers so the metrics are far from chance.
    q = c[answers[0, np.arange(ql.size) % n_q]] + 0.3 * rng.standard_normal((ql.size, d))
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    res = evaluate_lareqa(
        q,
        c,
        ql,
        cl,
        np.arange(0, ql.size * n_lang + 1, n_lang),
        indices,
        [f"x{i}" for i in range(n_lang)],
    )
    assert len(res.per_pair) == n_lang * n_lang
    assert res.per_query.cross_ap.shape == (ql.size, n_lang)
    assert 0.0 < res.map["multi"] <= 1.0 and res.rank_distance >= 10


def test_reduced_precision_torch_matmul_falls_back_to_float32() -> None:
    pool = make_pool(5, "fine", nq=40, nc=300)
    rng = np.random.default_rng(5)
    for name in ("q", "c"):  # d=128: oneDNN only switches to bf16 for larger products
        x = rng.standard_normal((getattr(pool, name).shape[0], 128)).astype(np.float32)
        setattr(pool, name, x / np.linalg.norm(x, axis=1, keepdims=True))
    args = (pool.q, pool.c, pool.cl, pool.indptr, pool.indices)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        drift = np.abs(
            (torch.from_numpy(pool.q) @ torch.from_numpy(pool.c).T).numpy() - pool.scores
        )
        if drift.max() > 1e-4:  # this CPU really computes float32 matmuls in bf16 now
            with pytest.warns(RuntimeWarning, match="reduced precision"):
                ranks = relevant_ranks(*args)
        else:
            ranks = relevant_ranks(*args)
    finally:
        torch.set_float32_matmul_precision(previous)
    exp_in, exp_pooled = naive_ranks(pool)
    np.testing.assert_array_equal(ranks.in_lang, exp_in)
    np.testing.assert_array_equal(ranks.pooled, exp_pooled)


# ------------------------------------------------------------------------- validation


def _valid_args() -> dict:
    return {
        "query_emb": np.eye(2, dtype=np.float32),
        "cand_emb": np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32),
        "query_lang": np.array([0, 1]),
        "cand_lang": np.array([0, 0, 1]),
        "rel_indptr": np.array([0, 2, 3]),
        "rel_indices": np.array([0, 2, 2]),
        "languages": ["en", "de"],
    }


def test_valid_args_pass() -> None:
    assert evaluate_lareqa(**_valid_args()).map["multi"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"query_emb": np.eye(2)}, TypeError, "query_emb must be float32"),
        ({"cand_emb": [[1.0, 0.0]]}, TypeError, "numpy array"),
        ({"cand_emb": np.ones((3, 3), np.float32)}, ValueError, "dims differ"),
        ({"cand_emb": np.zeros((0, 2), np.float32)}, ValueError, "candidate pool is empty"),
        ({"query_emb": np.full((2, 2), np.nan, np.float32)}, ValueError, "NaN"),
        ({"cand_lang": np.array([0, 0])}, ValueError, "cand_lang has length 2"),
        ({"cand_lang": np.array([0.0, 0.0, 1.0])}, TypeError, "integer dtype"),
        ({"query_lang": np.array([0, 2])}, ValueError, "language code 2"),
        ({"cand_lang": np.array([0, -1, 1])}, ValueError, "negative"),
        ({"languages": ["en", "en"]}, ValueError, "duplicate names"),
        ({"languages": []}, ValueError, "non-empty"),
        ({"rel_indptr": np.array([0, 3])}, ValueError, "expected nq"),
        ({"rel_indptr": np.array([0, 2, 2])}, ValueError, "end at len"),
        ({"rel_indptr": np.array([0, 4, 3])}, ValueError, "non-decreasing"),
        ({"rel_indptr": np.array([0, 3, 3])}, ValueError, "query 1 has no relevant"),
        ({"rel_indices": np.array([0, 5, 2])}, IndexError, "candidate index 5"),
        ({"rel_indices": np.array([0, 1, 2])}, ValueError, "at most one per language"),
    ],
)
def test_validation_errors(change: dict, error: type[Exception], match: str) -> None:
    args = _valid_args()
    args.update(change)
    with pytest.raises(error, match=match):
        evaluate_lareqa(**args)


def test_bad_chunk_size() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        evaluate_lareqa(**_valid_args(), chunk_size=0)


def test_relevant_ranks_validates_too() -> None:
    a = _valid_args()
    with pytest.raises(ValueError, match="at most one per language"):
        relevant_ranks(a["query_emb"], a["cand_emb"], a["cand_lang"], [0, 2, 3], [0, 1, 2])
