"""MIRACL topics and qrels on the real files; corpus JSONL on a generated corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langmix.data import DataError
from langmix.data.miracl import MIRACL_LANGUAGES, load_miracl, read_corpus, read_qrels, read_topics

# MIRACL README: dev queries and judgments (relevant / non-relevant) per language.
DEV = {
    "ar": (2896, 5658, 23539), "bn": (411, 863, 3343), "de": (305, 811, 2333),
    "en": (799, 2326, 6024), "es": (648, 2987, 3456), "fa": (632, 1314, 5257),
    "fi": (1271, 2447, 9561), "fr": (343, 731, 2698), "hi": (350, 752, 2742),
    "id": (960, 3088, 6580), "ja": (860, 1790, 6564), "ko": (213, 547, 2510),
    "ru": (1252, 3560, 9540), "sw": (482, 910, 4182), "te": (828, 854, 752),
    "th": (733, 1343, 6230), "yo": (119, 144, 1044), "zh": (393, 994, 2934),
}  # fmt: skip


@pytest.mark.parametrize("language", MIRACL_LANGUAGES)
def test_dev_counts(data_dir: Path, language: str):
    ml = load_miracl(language, "dev", data_dir=data_dir)
    grades = [g for judged in ml.qrels.values() for g in judged.values()]
    assert (len(ml.topics), grades.count(1), grades.count(0)) == DEV[language]
    assert all(any(g > 0 for g in judged.values()) for judged in ml.qrels.values())


def test_train_split_and_surprise_languages(data_dir: Path):
    assert len(load_miracl("sw", "train", data_dir=data_dir).topics) == 1901
    with pytest.raises(ValueError, match="no train split"):
        load_miracl("yo", "train", data_dir=data_dir)
    with pytest.raises(ValueError, match="unknown MIRACL language 'xx'"):
        load_miracl("xx", data_dir=data_dir)


def test_corpus_jsonl(data_dir: Path, tmp_path: Path):
    ml = load_miracl("yo", data_dir=data_dir)
    docids = sorted({d for judged in ml.qrels.values() for d in judged})
    corpus = tmp_path / "yo.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"docid": d, "title": f"T{i}", "text": f"passage {i}"}) + "\n"
            for i, d in enumerate(docids)
        ),
        encoding="utf-8",
    )
    loaded = load_miracl("yo", data_dir=data_dir, corpus=corpus)
    assert [p.docid for p in loaded.corpus] == docids
    assert loaded.corpus[0].passage() == "T0\npassage 0"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"docid": "1", "text": "a"}\n{"docid": "1", "text": "b"}\n',
            "line 2: docid '1' appears twice",
        ),
        ('{"docid": "1"}\n', "line 1: missing or non-string field 'text'"),
        ('{"docid": "1", "text": "  "}\n', "line 1: empty text"),
        ('{"docid": "1", "text": "a"\n', "line 1: not valid JSON"),
        ("", "the file holds no passages"),
    ],
)
def test_bad_corpus(tmp_path: Path, content: str, message: str):
    path = tmp_path / "c.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_corpus(path)


def test_bad_topics_and_qrels(tmp_path: Path):
    topics = tmp_path / "t.tsv"
    topics.write_text("1\tquery one\n2 no tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"t.tsv, line 2: expected 'qid<TAB>query'"):
        read_topics(topics)
    qrels = tmp_path / "q.tsv"
    qrels.write_text("1\tQ0\td1\t1\n1\tQ0\td2\thigh\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"q.tsv, line 2: relevance 'high' is not an integer"):
        read_qrels(qrels)
    binary = tmp_path / "b.tsv"
    binary.write_bytes(b"1\t\xff\xfe\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_topics(binary)


def test_qrels_must_match_topics(data_dir: Path, tmp_path: Path):
    root = tmp_path / "miracl"
    (root / "topics").mkdir(parents=True)
    (root / "qrels").mkdir()
    src = data_dir / "miracl"
    (root / "topics" / "topics.miracl-v1.0-yo-dev.tsv").write_bytes(
        (src / "topics" / "topics.miracl-v1.0-sw-dev.tsv").read_bytes()
    )
    (root / "qrels" / "qrels.miracl-v1.0-yo-dev.tsv").write_bytes(
        (src / "qrels" / "qrels.miracl-v1.0-yo-dev.tsv").read_bytes()
    )
    with pytest.raises(DataError, match="have no topic"):
        load_miracl("yo", data_dir=tmp_path)


def test_qrels_reader_formats_and_repeats(tmp_path: Path):
    path = tmp_path / "qrels.tsv"
    path.write_text("q1\tQ0\td1\t1\nq1\tQ0\td2\t0\nq2 0 d1 2\n", encoding="utf-8")
    assert read_qrels(path) == {"q1": {"d1": 1, "d2": 0}, "q2": {"d1": 2}}
    path.write_text("q1 Q0 d1\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: expected 'qid Q0 docid rel', got 3 fields"):
        read_qrels(path)
    path.write_text("q1 Q0 d1 1\nq1 Q0 d1 0\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: the judgment of 'd1' for 'q1' appears twice"):
        read_qrels(path)
