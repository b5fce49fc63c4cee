"""Sharded corpus encoding, faiss indexes and MIRACL search from an index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from judged_corpus import judged_passages, relevant_docids

from langmix.data.errors import DataError
from langmix.evaluation.corpus import (
    CorpusDirError,
    CorpusEmbeddings,
    encode_corpus,
    read_shard,
    shard_count,
)
from langmix.evaluation.index import DenseIndex, IndexDirError, build_index
from langmix.outputs import OutputDirError

MODEL = "offline:multilingual-e5-small@L1"


def _write_corpus(path: Path, passages: list[tuple[str, str, str]]) -> Path:
    lines = [
        json.dumps({"docid": d, "title": t, "text": x}, ensure_ascii=False) for d, t, x in passages
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(st.text(min_size=1, max_size=40).filter(str.strip), min_size=1, max_size=40),
    shard_bytes=st.integers(min_value=1, max_value=600),
)
def test_byte_shards_partition_the_corpus_in_order(tmp_path_factory, texts, shard_bytes):
    # Any shard size, any (unicode) text: every passage lands in exactly one shard, in order.
    path = _write_corpus(
        tmp_path_factory.mktemp("c") / "c.jsonl",
        [(f"d{i}", "", t) for i, t in enumerate(texts)],
    )
    found = [
        p.docid
        for shard in range(shard_count(path, shard_bytes))
        for _, p in read_shard(path, shard, shard_bytes)
    ]
    assert found == [f"d{i}" for i in range(len(texts))]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"docid": "x"}', "missing or non-string field 'text'"),
        ('{"docid": "x", "text": "  "}', "empty text for docid 'x'"),
        ('["x", "y"]', "expected a JSON object"),
    ],
)
def test_a_bad_line_names_the_file_and_byte(tmp_path, line, problem):
    good = json.dumps({"docid": "a", "text": "fine"})
    path = tmp_path / "c.jsonl"
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=problem) as info:
        list(read_shard(path, 0, 2**20))
    assert str(path) in str(info.value) and f"byte {len(good) + 1}" in str(info.value)


@pytest.fixture
def corpus(tmp_path: Path, data_dir: Path):
    """Real MIRACL yo dev topics; a corpus where each relevant passage restates its question."""
    from langmix.data.miracl import load_miracl

    yo = load_miracl("yo", "dev", data_dir=data_dir)
    passages = [(r["docid"], r["title"], r["text"]) for r in judged_passages(yo)]
    return yo, _write_corpus(tmp_path / "yo.jsonl", passages)


def test_encode_index_search_resume(tmp_path, corpus, offline_cache):
    from langmix.evaluation.encoding import PASSAGE, encode
    from langmix.evaluation.retrieval import search_miracl
    from langmix.models import load_model

    yo, path = corpus
    model = load_model(MODEL)
    out = tmp_path / "emb"
    shard_bytes = 4096
    n_shards = shard_count(path, shard_bytes)
    assert n_shards >= 4
    # Two "processes" (rank 0 and 1 of 2) share the shards round-robin.
    first = encode_corpus(
        model, path, out, shard_bytes=shard_bytes, max_length=32, rank=0, world_size=2,
        show_progress=False,
    )  # fmt: skip
    with pytest.raises(CorpusDirError, match="not encoded yet"):
        CorpusEmbeddings(out)
    second = encode_corpus(
        model, path, out, shard_bytes=shard_bytes, max_length=32, rank=1, world_size=2,
        show_progress=False,
    )  # fmt: skip
    assert first["shards_encoded"] + second["shards_encoded"] == n_shards

    emb = CorpusEmbeddings(out)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert emb.ids() == [row["docid"] for row in lines]
    direct = encode(model, [row["text"] for row in lines], PASSAGE, max_seq_length=32)
    assert np.abs(emb.matrix() - direct).max() < 2e-3  # float16 storage

    # Resume: a lost shard (marker gone) is the only one encoded again.
    (out / "shard-00002.json").unlink()
    again = encode_corpus(model, path, out, shard_bytes=shard_bytes, max_length=32,
                          show_progress=False)  # fmt: skip
    assert again["shards_encoded"] == 1 and again["shards_skipped"] == n_shards - 1
    # Another truncation into the same directory is refused, naming what differs.
    with pytest.raises(CorpusDirError, match="max_length"):
        encode_corpus(model, path, out, shard_bytes=shard_bytes, max_length=64)
    with pytest.raises(CorpusDirError, match="one process"):
        encode_corpus(model, path, out, shard_bytes=shard_bytes, max_length=64, rank=0,
                      world_size=2, overwrite=True)  # fmt: skip
    # --overwrite replaces every shard (all re-encoded), then the original settings again.
    for length in (64, 32):
        redone = encode_corpus(model, path, out, shard_bytes=shard_bytes, max_length=length,
                               show_progress=False, overwrite=True)  # fmt: skip
        assert redone["shards_encoded"] == n_shards and redone["shards_skipped"] == 0

    flat = build_index(out, tmp_path / "flat", "flat")
    assert flat["rows"] == len(lines)
    # Rebuilding the same index is fine; another kind in the same directory needs overwrite.
    build_index(out, tmp_path / "flat", "flat")
    with pytest.raises(OutputDirError, match=r"other settings \(hnsw_m, kind differ\)"):
        build_index(out, tmp_path / "flat", "hnsw", hnsw_m=16)
    assert build_index(out, tmp_path / "flat", "hnsw", hnsw_m=16, overwrite=True)["kind"] == "hnsw"
    flat = build_index(out, tmp_path / "flat", "flat", overwrite=True)
    exact = DenseIndex(tmp_path / "flat")
    queries = direct[:25]
    _, top = exact.search(queries, 10)
    reference = np.argsort(-(queries @ emb.matrix().T), axis=1, kind="stable")[:, :10]
    ids = emb.ids()
    assert [row[0] for row in top] == [ids[r[0]] for r in reference]

    for kind, params in (("ivfpq", {"nlist": 8, "pq_m": 48}), ("hnsw", {"hnsw_m": 16})):
        document = build_index(out, tmp_path / kind, kind, **params)
        approx = DenseIndex(tmp_path / kind, nprobe=8, ef_search=64)
        _, found = approx.search(queries, 10)
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, top, strict=True)])
        assert overlap > 0.5, (kind, overlap)
        assert document["index_bytes"] > 0

    result = search_miracl(model, MODEL, yo, exact, tmp_path / "run", show_progress=False)
    assert result["n_queries"] == len(yo.qrels)
    assert result["metrics"]["ndcg@10"] > 0.5  # relevant passages restate their question
    assert (tmp_path / "run" / "run.trec").is_file()
    assert result["judged_relevant_coverage"]["share"] == 1.0

    other = load_model("offline:multilingual-e5-small@L2")
    with pytest.raises(IndexDirError, match="another model"):
        search_miracl(other, "L2", yo, exact, tmp_path / "run2", show_progress=False)


def test_judged_relevant_coverage_of_real_miracl_qrels(data_dir):
    import warnings

    from langmix.data.miracl import load_miracl
    from langmix.evaluation.retrieval import JudgedCoverageWarning, check_judged_coverage

    yo = load_miracl("yo", "dev", data_dir=data_dir)
    every = [row["docid"] for row in judged_passages(yo)]
    n_relevant = sum(g > 0 for judged in yo.qrels.values() for g in judged.values())
    with warnings.catch_warnings():
        warnings.simplefilter("error", JudgedCoverageWarning)  # a full corpus stays quiet
        full = check_judged_coverage(yo, every)
    assert full == {"judged_relevant": n_relevant, "in_corpus": n_relevant, "share": 1.0}

    dropped = set(relevant_docids(yo)[::4])
    with pytest.warns(JudgedCoverageWarning, match=r"MIRACL yo dev: 7\d\.\d% of judged-rel"):
        partial = check_judged_coverage(yo, [d for d in every if d not in dropped])
    missing = sum(d in dropped for judged in yo.qrels.values() for d, g in judged.items() if g)
    assert partial["in_corpus"] == n_relevant - missing
    assert partial["share"] == pytest.approx(1 - missing / n_relevant)


def test_miracl_eval_records_judged_relevant_coverage(tmp_path, data_dir, offline_cache):
    from langmix.data.miracl import load_miracl
    from langmix.evaluation import EvalArguments
    from langmix.evaluation.retrieval import JudgedCoverageWarning
    from langmix.evaluation.run import run_eval

    yo = load_miracl("yo", "dev", data_dir=data_dir)
    dropped = set(relevant_docids(yo)[::2])
    passages = [
        (r["docid"], "", r["text"]) for r in judged_passages(yo) if r["docid"] not in dropped
    ]
    (tmp_path / "corpus").mkdir()
    _write_corpus(tmp_path / "corpus" / "yo.jsonl", passages)
    args = EvalArguments(
        model=MODEL, dataset="miracl", output_dir=str(tmp_path / "out"), languages="yo",
        data_dir=str(data_dir), corpus=str(tmp_path / "corpus"), passage_max_length=32,
        query_max_length=32, cache_embeddings=False,
    )  # fmt: skip
    with pytest.warns(JudgedCoverageWarning, match=r"MIRACL yo dev: \d+\.\d% "):
        document = run_eval(args, show_progress=False)
    per_language = json.loads((tmp_path / "out" / "yo" / "metrics.json").read_text())
    coverage = per_language["judged_relevant_coverage"]
    assert 0.4 < coverage["share"] < 0.6 and coverage["in_corpus"] < coverage["judged_relevant"]
    assert document["judged_relevant_coverage"] == {
        "overall": coverage,
        "per_language": {"yo": coverage},
    }
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == document


def test_index_of_unfinished_embeddings_is_refused(tmp_path):
    with pytest.raises(CorpusDirError, match=r"no manifest\.json"):
        build_index(tmp_path / "nothing", tmp_path / "index")
    with pytest.raises(IndexDirError, match=r"no index\.json"):
        DenseIndex(tmp_path)
