"""trec_eval measures (pytrec_eval is the engine) cross-checked against a plain-Python
reference written from trec_eval's conventions, so the two share no code."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from langmix.evaluation.trec import (
    TopKRun,
    TrecFormatError,
    combine_coverage,
    evaluate_trec,
    judged_relevant_coverage,
    read_run,
    write_run,
)

MEASURES = (
    "ndcg_cut_10",
    "recall_100",
    "map_cut_100",
    "ndcg_cut_3",
    "ndcg",
    "recall_5",
    "map_cut_5",
    "map",
    "P_5",
    "recip_rank",
)


def random_case(seed: int) -> tuple[dict, dict]:
    """Graded qrels (with 0 and negative grades) and a run with many score ties."""
    rng = np.random.default_rng(seed)
    alphabet = list("aAbB0_#z")
    docs: set[str] = set()
    while len(docs) < 400:
        docs.add("".join(rng.choice(alphabet, rng.integers(1, 6))))
    universe = np.array(sorted(docs))
    qrels, run = {}, {}
    for qi in range(40):
        qid = f"q{qi}"
        role = rng.random()
        if role > 0.1:  # 10% only in the run
            judged = rng.choice(universe, rng.integers(0, 30), replace=False)
            grades = rng.choice([-1, 0, 0, 1, 2, 3], judged.size)
            if qi % 9 == 0:
                grades[:] = 0  # judged, nothing relevant
            qrels[qid] = {str(d): int(g) for d, g in zip(judged, grades, strict=True)}
        if role < 0.9 or role > 0.95:  # 5% only in the qrels
            n = 0 if qi % 13 == 0 else int(rng.integers(1, 150))
            retrieved = rng.choice(universe, n, replace=False)
            # Relevant docs are promoted so the measures are not all near zero.
            if qid in qrels and qrels[qid] and rng.random() < 0.7:
                retrieved = np.unique(np.r_[retrieved, list(qrels[qid])[:10]])
            coarse = rng.random() < 0.5
            scores = (
                rng.integers(0, 5, retrieved.size) / 4 if coarse else rng.random(retrieved.size)
            )
            judged_docs = qrels.get(qid, {})
            boost = np.array([0.5 * (judged_docs.get(str(d), 0) > 0) for d in retrieved])
            run[qid] = {str(d): float(s) for d, s in zip(retrieved, scores + boost, strict=True)}
    return qrels, run


def reference_query(judged: dict[str, int], row: dict[str, float]) -> dict[str, float]:
    """trec_eval's measures for one query, one rank at a time.

    Ranking: score descending, equal scores by docid descending (trec_eval's ``strcmp``);
    relevant means grade >= 1; nDCG gains are the grades (negatives count 0) over
    ``log2(rank + 1)``, ideal from every positive judgment.
    """
    ranked = [d for d, _ in sorted(row.items(), key=lambda x: (x[1], x[0]), reverse=True)]
    grades = [judged.get(d, 0) for d in ranked]
    n_rel = sum(g >= 1 for g in judged.values())
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)

    def dcg(gains: list[int]) -> float:
        return sum(max(g, 0) / math.log2(rank + 2) for rank, g in enumerate(gains))

    def ndcg(cut: int | None) -> float:
        best = dcg(ideal[:cut])
        return dcg(grades[:cut]) / best if best > 0 else 0.0

    def average_precision(cut: int | None) -> float:
        hits, total = 0, 0.0
        for rank, g in enumerate(grades[:cut], start=1):
            if g >= 1:
                hits += 1
                total += hits / rank
        return total / n_rel if n_rel else 0.0

    def found(cut: int) -> int:
        return sum(g >= 1 for g in grades[:cut])

    first = next((rank for rank, g in enumerate(grades, start=1) if g >= 1), None)
    return {
        "ndcg_cut_10": ndcg(10),
        "recall_100": found(100) / n_rel if n_rel else 0.0,
        "map_cut_100": average_precision(100),
        "ndcg_cut_3": ndcg(3),
        "ndcg": ndcg(None),
        "recall_5": found(5) / n_rel if n_rel else 0.0,
        "map_cut_5": average_precision(5),
        "map": average_precision(None),
        "P_5": found(5) / 5,
        "recip_rank": 1 / first if first else 0.0,
    }


def reference(qrels: dict, run: dict) -> dict:
    """Per-query reference values for the queries trec_eval evaluates (in the run, judged)."""
    return {q: reference_query(qrels[q], row) for q, row in run.items() if qrels.get(q)}


def test_reference_on_a_hand_computed_query() -> None:
    # The reference itself, checked by hand: relevant (grade 2, 1) at ranks 2 and 3.
    got = reference_query({"a": 2, "b": 1, "c": 0}, {"x": 0.9, "a": 0.8, "b": 0.8, "c": 0.1})
    # "b" and "a" tie; docid descending puts "b" first.
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    assert got["ndcg"] == pytest.approx(dcg / (2 + 1 / math.log2(3)))
    assert got["map"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert got["recip_rank"] == 0.5 and got["P_5"] == pytest.approx(2 / 5)


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference(seed: int) -> None:
    qrels, run = random_case(seed)
    want = reference(qrels, run)
    mean, per_query = evaluate_trec(qrels, run, MEASURES)
    assert set(per_query) == set(want)  # same queries evaluated (run AND judged)
    for qid, vals in want.items():
        for m in MEASURES:
            assert per_query[qid][m] == pytest.approx(vals[m], abs=1e-12), (qid, m)
    for m in MEASURES:
        assert mean[m] == pytest.approx(np.mean([v[m] for v in want.values()]), abs=1e-12)
    assert mean["ndcg_cut_10"] > 0.2  # the case is not degenerate


def test_tie_order_is_docid_descending() -> None:
    qrels = {"q": {"B": 1}}
    # strcmp: "b" > "aa" > "B"; equal scores, so "b" ranks first, then "aa", then "B".
    run = {"q": {"aa": 1.0, "B": 1.0, "b": 1.0}}
    _, per_query = evaluate_trec(qrels, run, ["recip_rank", "P_1"])
    assert per_query["q"] == {"recip_rank": pytest.approx(1 / 3), "P_1": 0.0}
    assert reference(qrels, run)["q"]["recip_rank"] == pytest.approx(1 / 3)


def test_query_selection_rules() -> None:
    qrels = {"both": {"a": 1}, "qrels_only": {"a": 1}, "no_judgments": {}, "empty_run": {"a": 1}}
    run = {"both": {"a": 1.0}, "run_only": {"a": 1.0}, "no_judgments": {"a": 1.0}, "empty_run": {}}
    mean, per_query = evaluate_trec(qrels, run, ["recall_100"])
    assert list(per_query) == ["both", "empty_run"]
    assert mean == {"recall_100": 0.5}
    assert set(reference(qrels, run)) == set(per_query)


def test_nothing_evaluated_gives_nan() -> None:
    mean, per_query = evaluate_trec({"a": {"d": 1}}, {"b": {"d": 1.0}})
    assert per_query == {}
    assert set(mean) == {"ndcg_cut_10", "recall_100", "map_cut_100"}
    assert all(math.isnan(v) for v in mean.values())


def test_hand_computed_miracl_measures() -> None:
    qrels = {"q": {"r1": 1, "r2": 1, "n": 0}}
    run = {"q": {"n": 0.9, "r1": 0.8, "x": 0.7, "r2": 0.1}}
    mean, _ = evaluate_trec(qrels, run)
    # Relevant at ranks 2 and 4 of 4; two relevant in total.
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert mean == pytest.approx(
        {"ndcg_cut_10": dcg / idcg, "recall_100": 1.0, "map_cut_100": (1 / 2 + 2 / 4) / 2}
    )


def to_topk(run: dict, k: int, seed: int) -> TopKRun:
    rng = np.random.default_rng(seed)
    qids = list(run)
    docids = np.full((len(qids), k), "pad", dtype=object)
    scores = np.full((len(qids), k), 123.0)  # padding must be ignored whatever its score
    mask = np.zeros((len(qids), k), bool)
    for i, q in enumerate(qids):
        items = list(run[q].items())
        cols = rng.permutation(k)[: len(items)]  # arbitrary column order
        for col, (d, s) in zip(cols, items, strict=True):
            docids[i, col], scores[i, col], mask[i, col] = d, s, True
    return TopKRun(qids, docids, scores, mask)


@pytest.mark.parametrize("seed", range(3))
def test_topk_arrays_equal_dict_run(seed: int) -> None:
    qrels, run = random_case(seed)
    k = max(len(v) for v in run.values())
    topk = to_topk(run, k + 3, seed)
    assert topk.to_dict() == run
    assert evaluate_trec(qrels, topk, MEASURES) == evaluate_trec(qrels, run, MEASURES)


def test_topk_integer_docids() -> None:
    run = TopKRun(["q1"], np.array([[7, 3, 5]]), np.array([[0.2, 0.9, 0.5]], np.float32))
    mean, _ = evaluate_trec({"q1": {"5": 1}}, run, ["recip_rank"])
    assert mean == {"recip_rank": 0.5}


@pytest.mark.parametrize(
    ("run", "match"),
    [
        (TopKRun(["q"], np.array([["a", "a"]]), np.array([[1.0, 0.5]])), "twice"),
        (TopKRun(["q"], np.array([["a", "b"]]), np.array([[1.0, np.nan]])), "NaN"),
        (TopKRun(["q"], np.array([["a", "b"]]), np.array([1.0, 0.5])), "shape"),
        (TopKRun(["q", "q"], np.array([["a"], ["b"]]), np.array([[1.0], [2.0]])), "duplicate"),
        ({"q": {"a": math.inf}}, "NaN or infinite"),
    ],
)
def test_bad_runs(run: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate_trec({"q": {"a": 1}}, run, ["P_1"])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["ndcg@10", "recall", "P_0", "map_cut_x", "bpref"])
def test_unsupported_measure(name: str) -> None:
    with pytest.raises(ValueError, match="unsupported measure"):
        evaluate_trec({"q": {"a": 1}}, {"q": {"a": 1.0}}, [name])


def test_judged_relevant_coverage_counts_relevant_pairs() -> None:
    qrels = {"q1": {"a": 1, "b": 2, "n": 0, "x": -1}, "q2": {"a": 1, "c": 1}, "q3": {"n": 0}}
    # "a" is relevant for two queries, so it counts twice; grades <= 0 never count.
    assert judged_relevant_coverage(qrels, ["a", "n", "x"]) == {
        "judged_relevant": 4,
        "in_corpus": 2,
        "share": 0.5,
    }
    assert judged_relevant_coverage(qrels, iter(["a", "b", "c"]))["share"] == 1.0
    assert judged_relevant_coverage({"q": {"n": 0}}, ["n"]) == {
        "judged_relevant": 0,
        "in_corpus": 0,
        "share": None,  # nothing to cover; None keeps metrics.json strict JSON
    }


def test_combine_coverage_pools_counts_not_shares() -> None:
    parts = [
        {"judged_relevant": 90, "in_corpus": 90, "share": 1.0},
        {"judged_relevant": 10, "in_corpus": 0, "share": 0.0},
    ]
    assert combine_coverage(parts) == {"judged_relevant": 100, "in_corpus": 90, "share": 0.9}
    assert combine_coverage([])["share"] is None


# ------------------------------------------------------------------------------ files


def test_run_file_round_trip(tmp_path: Path) -> None:
    qrels, run = random_case(1)
    path = tmp_path / "run.trec"
    write_run(path, run, tag="e5-small")
    assert read_run(path) == {q: docs for q, docs in run.items() if docs}
    lines = [line.split() for line in path.read_text().splitlines()]
    assert {f[5] for f in lines} == {"e5-small"} and {f[1] for f in lines} == {"Q0"}
    # Lines are in trec_eval order, so the rank column agrees with trec_eval.
    for q in {f[0] for f in lines}:
        rows = [f for f in lines if f[0] == q]
        assert [int(f[3]) for f in rows] == list(range(1, len(rows) + 1))
        for a, b in itertools.pairwise(rows):
            assert float(a[4]) > float(b[4]) or (float(a[4]) == float(b[4]) and a[2] > b[2])
    want = reference(qrels, read_run(path))
    _, got = evaluate_trec(qrels, read_run(path), MEASURES)
    assert got.keys() == want.keys()
    for q in got:
        assert got[q] == pytest.approx(want[q], abs=1e-12)


def test_write_run_rejects_whitespace(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="whitespace"):
        write_run(tmp_path / "r", {"q": {"a b": 1.0}})
    with pytest.raises(ValueError, match="tag"):
        write_run(tmp_path / "r", {"q": {"a": 1.0}}, tag="my run")


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("q1 Q0 d2 2 0.5", "expected 6 fields"),
        ("q1 Q0 d2 two 0.5 tag", "rank 'two' is not an integer"),
        ("q1 Q0 d2 2 high tag", "score 'high' is not a number"),
        ("q1 Q0 d2 2 nan tag", "not finite"),
        ("q1 Q0 d1 2 0.5 tag", "repeated"),
    ],
)
def test_read_run_errors_name_file_and_line(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "bad.trec"
    path.write_text(f"q1 Q0 d1 1 0.9 tag\n\n{line}\n")
    with pytest.raises(TrecFormatError, match=match) as info:
        read_run(path)
    assert f"{path}:3:" in str(info.value)
