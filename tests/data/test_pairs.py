"""Training pairs from LAReQA sets, the leak-free split, and the user JSONL format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langmix.data import DataError, load_lareqa
from langmix.data.pairs import ParallelPairs, read_pairs_jsonl


@pytest.fixture(scope="module")
def mlqa_pairs(data_dir: Path) -> ParallelPairs:
    return ParallelPairs.from_lareqa(load_lareqa("mlqa-r", data_dir=data_dir))


def test_pairs_from_mlqa(mlqa_pairs: ParallelPairs):
    assert len(mlqa_pairs) == 4199
    assert len(mlqa_pairs.by_id) == 1148
    pair = mlqa_pairs.pairs[0]
    assert pair.positive.split("\n", 1)[0] in pair.positive.split("\n", 1)[1]  # sentence, context
    assert all(len(langs) >= 2 for langs in mlqa_pairs.by_id.values())


def test_split_by_article_does_not_leak(data_dir: Path, mlqa_pairs: ParallelPairs):
    train, val = mlqa_pairs.split(validation_fraction=0.1, seed=3)
    assert len(train) + len(val) == len(mlqa_pairs)
    assert not set(train.by_id) & set(val.by_id)
    ds = load_lareqa("mlqa-r", data_dir=data_dir)
    articles = {}
    for q in ds.queries:
        articles.setdefault(q.parallel_id, set()).add((q.language, q.article))
    train_articles = set().union(*(articles[i] for i in train.by_id))
    val_articles = set().union(*(articles[i] for i in val.by_id))
    assert not train_articles & val_articles
    assert 0.05 < len(val) / len(mlqa_pairs) < 0.15
    again, _ = mlqa_pairs.split(validation_fraction=0.1, seed=3)
    assert [p.parallel_id for p in again.pairs] == [p.parallel_id for p in train.pairs]


def test_jsonl_round_trip(mlqa_pairs: ParallelPairs, tmp_path: Path):
    path = tmp_path / "pairs.jsonl"
    mlqa_pairs.select(["de", "en"]).to_jsonl(path)
    back = read_pairs_jsonl(path)
    assert back.languages == ("de", "en")
    assert back.pairs == mlqa_pairs.select(["de", "en"]).pairs
    assert len(read_pairs_jsonl(path, languages=["de"])) == 512
    with pytest.raises(DataError, match="unknown language"):
        read_pairs_jsonl(path, languages=["fr"])


def test_an_interrupted_write_keeps_the_old_file(
    mlqa_pairs: ParallelPairs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "pairs.jsonl"
    mlqa_pairs.select(["de"]).to_jsonl(path)
    before = path.read_bytes()
    rows = iter(range(10))

    def dumps_then_fail(*args, **kwargs):
        if next(rows) == 5:
            raise KeyboardInterrupt  # a kill in the middle of the file
        return json.dumps(*args, **kwargs)

    monkeypatch.setattr("langmix.data.pairs.json.dumps", dumps_then_fail)
    with pytest.raises(KeyboardInterrupt):
        mlqa_pairs.select(["de", "en"]).to_jsonl(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.jsonl"]  # no temporary left


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "1", "language": "en", "query": "q"}, "line 2: missing field 'positive'"),
        (
            {"id": "1", "language": "en", "query": " ", "positive": "p"},
            "field 'query' must be a non-empty",
        ),
        (
            {"id": "0", "language": "en", "query": "q", "positive": "p"},
            "id '0' in language 'en' appears twice",
        ),
        (
            {"id": "1", "language": "en", "query": "q", "positive": "p", "negatives": "x"},
            "'negatives' must be",
        ),
    ],
)
def test_bad_jsonl(tmp_path: Path, row: dict, message: str):
    path = tmp_path / "bad.jsonl"
    first = {"id": "0", "language": "en", "query": "q", "positive": "p"}
    path.write_text(json.dumps(first) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message) as info:
        read_pairs_jsonl(path)
    assert "bad.jsonl" in str(info.value)
