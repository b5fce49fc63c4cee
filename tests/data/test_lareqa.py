"""LAReQA reader on the real XQuAD-R and MLQA-R files, and its errors on bad input."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from langmix.data import DataError, load_lareqa, read_lareqa_file
from langmix.data.lareqa import MLQA_R_LANGUAGES, XQUAD_R_LANGUAGES

# Per-language candidate counts published with LAReQA (and rechecked in shared/data/README.md).
XQUAD_R_CANDIDATES = {
    "ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244,
    "ru": 1219, "th": 852, "tr": 1167, "vi": 1209, "zh": 1196,
}  # fmt: skip
MLQA_R_COUNTS = {  # language: (questions, candidates)
    "ar": (517, 2545), "de": (512, 2362), "en": (1148, 6264), "es": (500, 1787),
    "hi": (507, 2426), "vi": (511, 2828), "zh": (504, 2322),
}  # fmt: skip


@pytest.fixture(scope="module")
def xquad(data_dir: Path):
    return load_lareqa("xquad-r", data_dir=data_dir)


@pytest.fixture(scope="module")
def mlqa(data_dir: Path):
    return load_lareqa("mlqa-r", data_dir=data_dir)


def test_xquad_r_counts_and_relevance(xquad):
    assert xquad.languages == XQUAD_R_LANGUAGES
    summary = xquad.summary()
    assert {k: v["candidates"] for k, v in summary.items()} == XQUAD_R_CANDIDATES
    assert all(v["queries"] == 1190 for v in summary.values())
    assert len(xquad.candidates) == 13014 and len(xquad.queries) == 13090
    _, cand_lang, indptr, indices = xquad.relevance_arrays()
    assert set(np.diff(indptr)) == {11}
    # one relevant candidate per language, in language order
    for i in range(0, len(xquad.queries), 997):
        assert list(cand_lang[indices[indptr[i] : indptr[i + 1]]]) == list(range(11))


def test_mlqa_r_counts_and_partial_parallelism(mlqa):
    summary = mlqa.summary()
    assert {k: (v["queries"], v["candidates"]) for k, v in summary.items()} == MLQA_R_COUNTS
    _, _, indptr, _ = mlqa.relevance_arrays()
    # 65 ids in 2 languages, 263 in 3, 820 in 4 (each counted once per language it is in)
    assert Counter(np.diff(indptr).tolist()) == {2: 130, 3: 789, 4: 3280}
    assert len({q.parallel_id for q in mlqa.queries}) == 1148


def test_id_contract(xquad):
    assert all(re.fullmatch(r"[a-z]{2}/\d+/\d+/\d+", c.id) for c in xquad.candidates)
    assert len({c.id for c in xquad.candidates}) == len(xquad.candidates)
    q = xquad.queries[0]
    assert q.id == f"{q.language}/{q.parallel_id}"
    lang, article, paragraph, _ = q.answer_id.split("/")
    assert (lang, int(article), int(paragraph)) == (q.language, q.article, q.paragraph)


def test_answer_sentence_holds_answer_start(data_dir: Path):
    """Every query's answer candidate is the sentence whose break holds answer_start,
    including answers that run across a sentence boundary."""
    path = data_dir / "xquad-r" / "tr.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    queries, candidates = read_lareqa_file(path, "tr")
    by_id = {c.id: c for c in candidates}
    crossing = 0
    qi = 0
    for a, article in enumerate(raw["data"]):
        for p, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                start = qa["answers"][0]["answer_start"]
                end = start + len(qa["answers"][0]["text"])
                cand = by_id[queries[qi].answer_id]
                b, e = paragraph["sentence_breaks"][cand.sentence]
                assert (cand.article, cand.paragraph) == (a, p)
                assert b <= start < e
                crossing += end > e
                qi += 1
    assert qi == len(queries) == 1190
    assert crossing == 20  # Turkish has the most boundary-crossing answers


def test_repeated_sentence_texts_are_distinct_candidates(xquad):
    zh = [c for c in xquad.candidates if c.language == "zh"]
    assert len(zh) == 1196
    assert len({c.text for c in zh}) == 1192
    assert len({c.id for c in zh}) == 1196


def test_select_restricts_pool_and_relevance(xquad):
    sub = xquad.select(["th", "en"])
    assert sub.languages == ("en", "th")
    assert len(sub.candidates) == 1180 + 852
    assert all(len(sub.relevant(q)) == 2 for q in sub.queries[:50])
    with pytest.raises(ValueError, match=r"no language.*xx"):
        xquad.select(["xx"])


def test_unknown_language_is_named(data_dir: Path):
    with pytest.raises(ValueError, match=r"unknown language\(s\) ro; available: ar, de"):
        load_lareqa("xquad-r", "en,ro", data_dir=data_dir)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_lareqa("squad", data_dir=data_dir)


def test_mlqa_languages_load_in_canonical_order(data_dir: Path):
    ds = load_lareqa("mlqa-r", "zh,de", data_dir=data_dir)
    assert ds.languages == ("de", "zh") and set(MLQA_R_LANGUAGES) >= set(ds.languages)


# --- bad input -------------------------------------------------------------------------------

GOOD = {
    "data": [
        {
            "title": "t",
            "paragraphs": [
                {
                    "context": "One two. Three four.",
                    "sentences": ["One two.", "Three four."],
                    "sentence_breaks": [[0, 8], [9, 20]],
                    "qas": [
                        {"id": "q1", "question": "Which?",
                         "answers": [{"answer_start": 9, "text": "Three"}]}
                    ],
                }
            ],
        }
    ]
}  # fmt: skip


def _write(tmp_path: Path, payload, name: str = "en.json") -> Path:
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    return path


def _mutated(edit):
    payload = json.loads(json.dumps(GOOD))
    edit(payload["data"][0]["paragraphs"][0])
    return payload


def test_good_tiny_file(tmp_path: Path):
    queries, candidates = read_lareqa_file(_write(tmp_path, GOOD), "en")
    assert [c.id for c in candidates] == ["en/0/0/0", "en/0/0/1"]
    assert queries[0].answer_id == "en/0/0/1"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.pop("sentences"), r"paragraphs\[0\]: missing field 'sentences'"),
        (lambda p: p["sentences"].__setitem__(1, "  "), r"sentences\[1\]: empty sentence"),
        (lambda p: p["sentence_breaks"].pop(), r"'sentences' \(2\) and 'sentence_breaks' \(1\)"),
        (lambda p: p["qas"][0].__setitem__("question", ""), r"qas\[0\] \(id q1\): empty question"),
        (
            lambda p: p["qas"][0]["answers"][0].__setitem__("answer_start", 99),
            "outside the context",
        ),
        (lambda p: p["qas"][0].pop("answers"), r"qas\[0\]: missing field 'answers'"),
        (lambda p: p["qas"].append(dict(p["qas"][0])), "question id 'q1' appears twice"),
        (lambda p: p["sentence_breaks"].__setitem__(1, [5, 3]), "bad sentence break"),
    ],
)
def test_bad_input_names_file_and_record(tmp_path: Path, edit, message):
    path = _write(tmp_path, _mutated(edit))
    with pytest.raises(DataError, match=message) as info:
        read_lareqa_file(path, "en")
    assert str(path) in str(info.value)


def test_malformed_json_names_line(tmp_path: Path):
    path = _write(tmp_path, '{"data": [\n  {"paragraphs": [}\n]}')
    with pytest.raises(DataError, match=r"en.json, line 2 column \d+: not valid JSON"):
        read_lareqa_file(path, "en")


def test_wrong_top_level(tmp_path: Path):
    with pytest.raises(DataError, match="'data' list"):
        read_lareqa_file(_write(tmp_path, [1, 2]), "en")


def test_ids_that_do_not_line_up(tmp_path: Path):
    _write(tmp_path, GOOD, "en.json")
    other = json.loads(json.dumps(GOOD))
    other["data"][0]["paragraphs"][0]["qas"][0]["id"] = "zz"
    _write(tmp_path, other, "de.json")
    with pytest.raises(DataError, match="no question id is shared"):
        load_lareqa(str(tmp_path))
    # a custom directory of LAReQA files loads when the ids agree
    _write(tmp_path, GOOD, "de.json")
    ds = load_lareqa(str(tmp_path))
    assert ds.languages == ("de", "en")
    assert [c.id for c in ds.relevant(ds.queries[0])] == ["de/0/0/1", "en/0/0/1"]
