"""The zero-shot check: evaluation articles that training text shares are found."""

from __future__ import annotations

from pathlib import Path

import pytest

from langmix.data import load_lareqa
from langmix.data.overlap import (
    NearDuplicateIndex,
    dataset_texts,
    normalise_title,
    overlapping_articles,
)
from langmix.data.records import Candidate, LareqaDataset, Query


def _dataset(name: str, language: str, articles: list[tuple[str, list[str]]]) -> LareqaDataset:
    queries, candidates, titles = [], [], {}
    for a, (title, sentences) in enumerate(articles):
        titles[(language, a)] = title
        for s, sentence in enumerate(sentences):
            cid = f"{language}/{a}/0/{s}"
            candidates.append(Candidate(cid, language, sentence, " ".join(sentences), a, 0, s))
        queries.append(
            Query(f"{language}/q{a}", language, "Why?", f"q{a}", f"{language}/{a}/0/0", a, 0)
        )
    return LareqaDataset(name, (language,), queries, candidates, titles)


def test_titles_match_after_normalisation():
    """The regression of issue 23: XQuAD-R's Prime_number is MLQA-R's "Prime number"."""
    assert normalise_title("Prime_number") == normalise_title("Prime number")
    assert normalise_title("Harvard_University") == normalise_title("ＨＡＲＶＡＲＤ  university")
    evaluation = _dataset(
        "xquad-r", "en", [("Prime_number", ["Two is even."]), ("Warsaw", ["A city."])]
    )
    training = _dataset("mlqa-r", "de", [("Prime number", ["Zwei ist gerade."])])
    titles = {"de": [t for t in training.titles.values()]}
    found = overlapping_articles(
        evaluation, evaluation.article_titles(), [("mlqa-r", titles, dataset_texts(training))]
    )
    assert [(o.article, o.reason) for o in found] == [(0, "title")]
    assert "Prime number" in found[0].describe()


def test_near_duplicate_sentences_and_short_ones():
    long = "the quick brown fox jumps over the lazy dog near the river bank today"
    index = NearDuplicateIndex({"en": [long], "zh": ["素数是只有两个正因数的自然数这是定义"]})
    assert index.share("en", long.upper() + "!") == 1.0  # case and punctuation do not hide it
    assert 0.0 < index.share("en", long.replace("today", "yesterday")) < 1.0
    assert index.share("de", long) == 0.0  # other languages are not compared
    assert index.share("en", "the quick brown fox") == 0.0  # shorter than one shingle
    assert index.share("zh", "素数是只有两个正因数的自然数") == 1.0  # character shingles
    evaluation = _dataset("x", "en", [("A", ["Unrelated words that share nothing at all here."]),
                                      ("B", [long])])  # fmt: skip
    found = overlapping_articles(
        evaluation, evaluation.article_titles(), [("t", {}, {"en": [long]})]
    )
    assert [(o.article, o.reason) for o in found] == [(1, "near-duplicate")]


def test_real_xquad_r_against_mlqa_r(data_dir: Path):
    """On the real data, four of XQuAD-R's 48 articles are shared with MLQA-R."""
    xquad = load_lareqa("xquad-r", data_dir=data_dir)
    mlqa = load_lareqa("mlqa-r", data_dir=data_dir)
    titles: dict[str, list[str]] = {}
    for (language, _), title in mlqa.titles.items():
        titles.setdefault(language, []).append(title)
    found = overlapping_articles(
        xquad, xquad.article_titles(), [("mlqa-r", titles, dataset_texts(mlqa))]
    )
    assert {o.article: (o.title, o.reason) for o in found} == {
        15: ("European_Union_law", "near-duplicate"),
        18: ("Fresno,_California", "near-duplicate"),
        31: ("Harvard_University", "title"),
        40: ("Prime_number", "title"),
    }
    kept = xquad.without_articles([o.article for o in found])
    assert {q.article for q in kept.queries}.isdisjoint({15, 18, 31, 40})
    assert len({q.parallel_id for q in kept.queries}) == 1088


def test_threshold_is_checked():
    with pytest.raises(ValueError, match="threshold"):
        overlapping_articles(_dataset("x", "en", [("A", ["a"])]), {}, [], threshold=0)
