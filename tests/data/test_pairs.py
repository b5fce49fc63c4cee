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


def test_three_way_split_is_disjoint_by_article_and_recorded(
    data_dir: Path, mlqa_pairs: ParallelPairs
):
    parts = mlqa_pairs.partition(validation_fraction=0.1, test_fraction=0.2, seed=0)
    sides = {"train": parts.train, "validation": parts.validation, "test": parts.test}
    assert sum(len(p) for p in sides.values()) == len(mlqa_pairs)
    ds = load_lareqa("mlqa-r", data_dir=data_dir)
    articles: dict[str, set] = {}
    for q in ds.queries:
        articles.setdefault(q.parallel_id, set()).add((q.language, q.article))
    seen = {name: set().union(*(articles[i] for i in p.by_id)) for name, p in sides.items()}
    for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
        assert not set(sides[a].by_id) & set(sides[b].by_id), (a, b)
        assert not parts.groups(a) & parts.groups(b), (a, b)
        assert not seen[a] & seen[b], (a, b)  # no article, in any language, on two sides
    assert 0.12 < len(parts.test) / len(mlqa_pairs) < 0.28
    # The digest names each part's groups: equal for the same split, different otherwise.
    digest = parts.digest()
    assert digest == mlqa_pairs.partition(0.1, 0.2, seed=0).digest()
    assert digest["test"] != mlqa_pairs.partition(0.1, 0.2, seed=1).digest()["test"]
    assert digest["test_groups"] == len(parts.groups("test"))
    # The trainer's two-way split is the three-way one without the test part.
    train, validation = mlqa_pairs.split(0.1, seed=0, test_fraction=0.2)
    assert train.pairs == parts.train.pairs and validation.pairs == parts.validation.pairs
    # Without a test part the split is the one studies used before (validation first).
    old_train, old_validation = mlqa_pairs.split(0.1, seed=0)
    assert not set(old_train.by_id) & set(old_validation.by_id)
    assert len(old_train) + len(old_validation) == len(mlqa_pairs)


@pytest.mark.parametrize(
    ("validation", "test", "message"),
    [(0.0, 0.2, "validation_fraction"), (0.1, 1.0, "test_fraction"), (0.6, 0.5, "too few")],
)
def test_bad_split_fractions(mlqa_pairs: ParallelPairs, validation, test, message):
    with pytest.raises(ValueError, match=message):
        mlqa_pairs.partition(validation, test)


def test_split_version_2_test_part_never_validated(mlqa_pairs: ParallelPairs):
    """Version 2's test groups are disjoint from every group that chose checkpoints in any
    design: the validation part without a test part (the first design) and version 1's."""
    first_design = mlqa_pairs.partition(0.1, 0.0, seed=0)
    v1 = mlqa_pairs.partition(0.1, 0.2, seed=0)
    v2 = mlqa_pairs.partition(0.1, 0.2, seed=0, version=2)
    earlier_validation = first_design.groups("validation") | v1.groups("validation")
    assert v2.groups("test").isdisjoint(earlier_validation)
    # The measured overlap that made version 2 necessary: all of the first design's
    # validation groups were in version 1's test part.
    assert first_design.groups("validation") <= v1.groups("test")
    assert v2.groups("retired") == first_design.groups("validation")
    assert v2.groups("test") == v1.groups("test") - first_design.groups("validation")
    # Train and validation are version 1's, so students distilled on its train part and
    # earlier training runs saw exactly what they see under version 2.
    assert v2.groups("train") == v1.groups("train")
    assert v2.groups("validation") == v1.groups("validation")
    parts = [v2.groups(p) for p in ("train", "validation", "test", "retired")]
    assert sum(map(len, parts)) == len({p.group for p in mlqa_pairs.pairs})
    assert len(set().union(*parts)) == sum(map(len, parts))
    assert (v2.digest()["version"], v2.digest()["test_groups"]) == (2, 52)
    # Version 1's digest is what earlier results recorded: no new keys.
    assert set(v1.digest()) == {
        "train", "train_groups", "validation", "validation_groups", "test", "test_groups"
    }  # fmt: skip


def test_split_version_2_needs_a_larger_test_part(mlqa_pairs: ParallelPairs):
    with pytest.raises(ValueError, match="must exceed validation_fraction"):
        mlqa_pairs.partition(0.2, 0.1, seed=0, version=2)
    with pytest.raises(ValueError, match="split version"):
        mlqa_pairs.partition(0.1, 0.2, seed=0, version=3)
