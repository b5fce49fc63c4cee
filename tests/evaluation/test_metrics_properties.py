"""Property tests: on any randomly generated pool - any number of languages, queries and
candidates, fine or heavily tied scores, duplicated candidates, 1 to n_lang relevant items per
query, any chunking - langmix's per-query metrics equal pytrec_eval's and sklearn's, and its
ranks equal a full sort's. The fixed-seed versions of these checks are in test_metrics.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score
from test_metrics import evaluate, make_pool, naive_ranks, split_mono_cross, trec_reference

from langmix.evaluation.metrics import relevant_ranks

POOLS = st.builds(
    make_pool,
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["fine", "coarse", "dup"]),
    n_lang=st.integers(1, 6),
    nq=st.integers(1, 30),
    nc=st.integers(6, 90),
)


@settings(max_examples=120, deadline=None)
@given(pool=POOLS, chunk=st.integers(1, 40))
def test_ranks_equal_a_full_sort(pool, chunk):
    ranks = relevant_ranks(pool.q, pool.c, pool.cl, pool.indptr, pool.indices, chunk_size=chunk)
    in_lang, pooled = naive_ranks(pool)
    np.testing.assert_array_equal(ranks.in_lang, in_lang)
    np.testing.assert_array_equal(ranks.pooled, pooled)


@settings(max_examples=120, deadline=None)
@given(pool=POOLS)
def test_per_query_metrics_equal_pytrec_eval(pool):
    pq = evaluate(pool).per_query
    ref = trec_reference(pool)
    for name, by_lang in (("ap", ref["ap"]), ("r1", ref["r1"])):
        mono, cross = split_mono_cross(pool, by_lang)
        got_mono = pq.mono_ap if name == "ap" else pq.mono_recall1
        got_cross = pq.cross_ap if name == "ap" else pq.cross_recall1
        np.testing.assert_allclose(got_mono, mono, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got_cross, cross, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pq.multi_ap, ref["multi_ap"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(pq.multi_recall10, ref["multi_r10"], rtol=0, atol=1e-12)


@settings(max_examples=120, deadline=None)
@given(pool=POOLS)
def test_multilingual_ap_equals_sklearn_on_tie_free_rows(pool):
    s = pool.scores
    pq = evaluate(pool).per_query
    for qi in range(len(pool.ql)):
        rel = pool.relevant(qi)
        tied = np.isin(s[qi], s[qi, rel]).sum() != len(rel)
        if tied or np.unique(s[qi, rel]).size != len(rel):
            continue  # sklearn averages precision over tied scores; trec_eval does not
        y_true = np.isin(np.arange(s.shape[1]), rel)
        if y_true.all():
            continue
        assert pq.multi_ap[qi] == pytest.approx(average_precision_score(y_true, s[qi]), abs=1e-12)
