"""Benchmark 6: a 200k-passage corpus through encode-corpus, index and search (docs/scaling.md).

Two encoders, so that the pipeline and the model are measured apart:

* a static-embedding model (the offline model's word embeddings, mean-pooled) on the whole
  200k-passage synthetic corpus, in 1 and in 2 processes (torchrun): what sharding, JSON
  parsing and float16 writing cost when the model is nearly free;
* the offline multilingual-e5-small (12 layers) on a sample of the same passages: the
  transformer's passages/s, which dominates real runs.

Then faiss indexes (flat, IVF-PQ, HNSW) from the 200k shards: build time, size, and search
time for 1,000 queries. The capacity plan in docs/scaling.md is checked against these figures.

Run: ``python bench/bench_corpus.py`` (about 6 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import data_dir, write_result


def synthetic_corpus(path: Path, n: int) -> None:
    from langmix.data.miracl import load_miracl

    words = " ".join(load_miracl("sw", "dev", data_dir=data_dir()).topics.values()).split()
    rng = np.random.default_rng(0)
    lengths = rng.integers(40, 120, n)  # MIRACL passages are paragraphs of ~100 words
    vocabulary = np.array(words)
    with path.open("w", encoding="utf-8") as out:
        for i, length in enumerate(lengths):
            text = " ".join(vocabulary[rng.integers(0, len(vocabulary), length)])
            out.write(json.dumps({"docid": f"d{i}", "title": f"t{i % 997}", "text": text}) + "\n")


def static_model(path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

    from langmix.models import load_model

    base = load_model("offline:multilingual-e5-small@L1")
    weights = base[0].auto_model.embeddings.word_embeddings.weight.detach().numpy()
    SentenceTransformer(
        modules=[StaticEmbedding(base.tokenizer, embedding_weights=weights), Normalize()],
        device="cpu",
    ).save(str(path))


def encode_run(model: str, corpus: Path, out: Path, processes: int, max_length: int) -> float:
    command = ["-m", "langmix", "encode-corpus", "--model", model, "--corpus", str(corpus)]
    command += ["--output-dir", str(out), "--shard-mb", "8", "--progress", "false"]
    command += ["--max-length", str(max_length), "--batch-size", "64"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node"]
        launcher += [str(processes), "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0"]
        command = launcher + command
    else:
        command = [sys.executable, *command]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"encode-corpus failed ({processes} processes)")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=200_000)
    parser.add_argument("--transformer-sample", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=1_000)
    args = parser.parse_args()

    from langmix.evaluation.corpus import CorpusEmbeddings
    from langmix.evaluation.index import DenseIndex, build_index

    figures: dict = {"passages": args.passages}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus.jsonl"
        synthetic_corpus(corpus, args.passages)
        figures["corpus_mib"] = round(corpus.stat().st_size / 2**20, 1)
        static_model(root / "static")

        for processes in (1, 2):
            took = encode_run(
                str(root / "static"), corpus, root / f"emb{processes}", processes, 256
            )
            figures[f"static_{processes}_processes"] = {
                "seconds": round(took, 1),
                "passages_per_s": round(args.passages / took, 1),
            }
        emb = CorpusEmbeddings(root / "emb2")
        figures["shards"] = emb.manifest["shards"]
        figures["shard_bytes_on_disk"] = sum(
            (root / "emb2" / f"shard-{i:05d}.npy").stat().st_size for i in range(figures["shards"])
        )

        sample = root / "sample.jsonl"
        with corpus.open(encoding="utf-8") as src, sample.open("w", encoding="utf-8") as dst:
            for _, line in zip(range(args.transformer_sample), src, strict=False):
                dst.write(line)
        took = encode_run("offline:multilingual-e5-small", sample, root / "e5", 1, 256)
        figures["e5_small_12_layers"] = {
            "passages": args.transformer_sample,
            "seconds": round(took, 1),
            "passages_per_s": round(args.transformer_sample / took, 2),
            "max_length": 256,
        }

        matrix = emb.matrix()
        rng = np.random.default_rng(1)
        queries = matrix[rng.integers(0, len(matrix), args.queries)]
        for kind in ("flat", "ivfpq", "hnsw"):
            document = build_index(root / "emb2", root / kind, kind)
            index = DenseIndex(root / kind)
            started = time.perf_counter()
            index.search(queries, 100)
            searched = time.perf_counter() - started
            figures[kind] = {
                "factory": document["factory"],
                "build_s": document["build_seconds"],
                "index_mib": round(document["index_bytes"] / 2**20, 1),
                "search_s": round(searched, 3),
                "queries_per_s": round(args.queries / searched, 1),
            }
            print(kind, figures[kind], flush=True)
    write_result(
        "corpus",
        figures,
        {
            "dim": 384,
            "shard_mb": 8,
            "static_model": "offline e5-small word embeddings, mean-pooled",
            "threads": os.cpu_count(),
        },
    )


if __name__ == "__main__":
    main()
