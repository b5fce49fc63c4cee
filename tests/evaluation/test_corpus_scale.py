"""End to end at scale: a 200k-passage corpus encoded by 2 processes, indexed, searched.

The encoder is a real sentence-transformers model, but a static one (the offline model's own
word embeddings, mean-pooled: ``StaticEmbedding``), so 200k passages encode in seconds on
2 cores; the transformer's throughput is what ``bench/`` and docs/scaling.md measure. What this
test guards is the machinery: byte-range shards shared by two torchrun ranks, the float16 shard
files, the id map, faiss indexes built from shards, MIRACL topics searched and scored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from judged_corpus import judged_passages

from langmix.cli import main as langmix

N_PASSAGES = 200_000


@pytest.fixture(scope="module")
def static_model(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

    from langmix.models import load_model

    base = load_model("offline:multilingual-e5-small@L1", cache_dir=model_cache)
    weights = base[0].auto_model.embeddings.word_embeddings.weight.detach().numpy()
    model = SentenceTransformer(
        modules=[StaticEmbedding(base.tokenizer, embedding_weights=weights), Normalize()],
        device="cpu",
    )
    path = tmp_path_factory.mktemp("static") / "model"
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def big_corpus(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """Real yo dev topics and judgements, plus random distractors up to 200k passages."""
    from langmix.data.miracl import load_miracl

    yo = load_miracl("yo", "dev", data_dir=data_dir)
    rows = judged_passages(yo)
    vocabulary = np.array(" ".join(yo.topics.values()).split())
    rng = np.random.default_rng(0)
    words = rng.choice(vocabulary, size=(N_PASSAGES - len(rows), 10))
    rows += [
        {"docid": f"synthetic-{i}", "title": "", "text": " ".join(w)} for i, w in enumerate(words)
    ]
    path = tmp_path_factory.mktemp("corpus") / "yo-200k.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path, len(rows)


def test_200k_corpus_two_processes_index_search(tmp_path, static_model, big_corpus, data_dir):
    from langmix.evaluation.corpus import CorpusEmbeddings

    corpus, n_rows = big_corpus
    emb_dir = tmp_path / "emb"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0",
        "-m", "langmix", "encode-corpus", "--model", str(static_model), "--corpus", str(corpus),
        "--output-dir", str(emb_dir), "--shard-mb", "2", "--batch-size", "2048",
        "--progress", "false",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    # Both ranks did a share of the shards.
    reports = sorted(line for line in done.stdout.splitlines() if line.startswith("rank "))
    assert len(reports) == 2 and all(" 0 shards encoded" not in r for r in reports), reports

    emb = CorpusEmbeddings(emb_dir)
    assert len(emb) == n_rows == N_PASSAGES and emb.manifest["shards"] >= 8
    assert len(set(emb.ids())) == N_PASSAGES

    metrics = {}
    for kind in ("flat", "ivfpq"):
        # 512 lists rather than the default 4 * sqrt(N) = 1788: a quarter of the training.
        assert langmix(["index", "--embeddings", str(emb_dir), "--output-dir",
                        str(tmp_path / kind), "--kind", kind, "--nlist", "512"]) == 0  # fmt: skip
        assert langmix(["search", "--model", str(static_model), "--index", str(tmp_path / kind),
                        "--language", "yo", "--data-dir", str(data_dir), "--output-dir",
                        str(tmp_path / f"run-{kind}")]) == 0  # fmt: skip
        document = json.loads((tmp_path / f"run-{kind}" / "metrics.json").read_text())
        assert document["n_passages"] == N_PASSAGES
        metrics[kind] = document["metrics"]
    # Relevant passages restate their question: exact search finds them among 200k.
    assert metrics["flat"]["ndcg@10"] > 0.6
    # The compressed index loses a little, not the answer.
    assert metrics["ivfpq"]["ndcg@10"] > metrics["flat"]["ndcg@10"] - 0.1
