"""faiss indexes over an encoded corpus, and top-k search with them.

:func:`build_index` reads the float16 shards written by
:func:`~langmix.evaluation.corpus.encode_corpus` one at a time (never the whole corpus as
float32 unless the index itself is flat), so building an IVF-PQ index over tens of millions
of passages needs the index's memory, not the corpus's. Three kinds, all inner product on
unit vectors (= cosine):

* ``flat`` - exact; ``4 * dim`` bytes per passage.
* ``ivfpq`` - inverted lists of product-quantised codes; ``pq_m + 8`` bytes per passage
  (codes + id), trained on a sample; approximate, tuned at search time with ``nprobe``.
* ``hnsw`` - graph over full vectors; ``4 * dim + 8 * hnsw_m`` bytes per passage, no
  training, tuned with ``ef_search``.

The index directory holds ``index.faiss``, ``ids.txt`` (row -> docid) and ``index.json``
(kind, parameters, the encoder's fingerprint, build time), each written atomically.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from langmix.evaluation.corpus import CorpusEmbeddings
from langmix.outputs import atomic_path, claim_output_dir, write_json_atomic, write_text_atomic

INDEX_KINDS = ("flat", "ivfpq", "hnsw")


class IndexDirError(ValueError):
    """An index directory is missing, incomplete or made for another encoder."""


_OUTPUTS = ("index.faiss", "ids.txt", "index.json")


@dataclass
class IndexArguments:
    """Arguments of ``langmix index``."""

    embeddings: str = field(metadata={"help": "Directory written by langmix encode-corpus."})
    output_dir: str = field(metadata={"help": "Index directory (index.faiss, ids.txt)."})
    kind: str = field(default="flat", metadata={"help": "flat (exact), ivfpq or hnsw."})
    nlist: int | None = field(
        default=None, metadata={"help": "ivfpq: inverted lists (default: 4 * sqrt(N))."}
    )
    pq_m: int | None = field(
        default=None, metadata={"help": "ivfpq: bytes per code (default: dim / 8)."}
    )
    hnsw_m: int = field(default=32, metadata={"help": "hnsw: graph neighbours per node."})
    train_size: int | None = field(
        default=None, metadata={"help": "ivfpq: training sample (default: 64 * nlist)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the training sample."})
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace results of other settings in output_dir (else refused)."},
    )


def default_nlist(rows: int) -> int:
    """About ``4 * sqrt(N)`` lists (faiss's guidance is 4 to 16 times sqrt(N))."""
    return max(1, min(rows // 39, int(4 * math.sqrt(rows))))


def _factory(kind: str, dim: int, rows: int, nlist: int | None, pq_m: int | None, hnsw_m: int):
    if kind == "flat":
        return "Flat", {}
    if kind == "ivfpq":
        nlist = nlist or default_nlist(rows)
        pq_m = pq_m or max(1, dim // 8)
        if dim % pq_m:
            raise ValueError(f"pq_m={pq_m} must divide the embedding dimension {dim}")
        return f"IVF{nlist},PQ{pq_m}", {"nlist": nlist, "pq_m": pq_m}
    if kind == "hnsw":
        return f"HNSW{hnsw_m}", {"hnsw_m": hnsw_m}
    raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(INDEX_KINDS)}")


def _training_sample(emb: CorpusEmbeddings, size: int, seed: int) -> np.ndarray:
    total = len(emb)
    chosen = np.sort(np.random.default_rng(seed).choice(total, min(size, total), replace=False))
    out = np.empty((chosen.shape[0], emb.dim), dtype=np.float32)
    start = filled = 0
    for vectors in emb.vectors():
        stop = start + vectors.shape[0]
        here = chosen[(chosen >= start) & (chosen < stop)] - start
        out[filled : filled + here.shape[0]] = vectors[here]
        filled += here.shape[0]
        start = stop
    return out


def build_index(
    embeddings: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    kind: str = "flat",
    *,
    nlist: int | None = None,
    pq_m: int | None = None,
    hnsw_m: int = 32,
    train_size: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Build a faiss index from an embedding directory.

    Returns:
        The ``index.json`` document (kind, factory string, rows, dim, parameters, seconds).

    Raises:
        CorpusDirError: If the embeddings are unfinished.
        DataError: If a docid occurs twice in the corpus.
        ValueError: For an unknown kind or parameters that do not fit the dimension.
        OutputDirError: If ``output_dir`` holds an index of other settings and not
            ``overwrite``.

    Example:
        >>> build_index("emb/sw", "index/sw-ivfpq", "ivfpq")  # doctest: +SKIP
        {'kind': 'ivfpq', 'factory': 'IVF1452,PQ48', 'rows': 131924, ...}
    """
    import faiss

    # Before a build that may take hours.
    settings = {
        "embeddings": str(Path(embeddings).resolve()),
        "kind": kind,
        "nlist": nlist,
        "pq_m": pq_m,
        "hnsw_m": hnsw_m,
        "train_size": train_size,
        "seed": seed,
    }
    out = claim_output_dir(output_dir, "index", settings, overwrite=overwrite, outputs=_OUTPUTS)
    emb = CorpusEmbeddings(embeddings)
    ids = emb.ids()
    factory, params = _factory(kind, emb.dim, len(ids), nlist, pq_m, hnsw_m)
    started = time.perf_counter()
    index = faiss.index_factory(emb.dim, factory, faiss.METRIC_INNER_PRODUCT)
    if kind == "ivfpq":
        # Polysemous code reordering only helps Hamming-distance filtering, which search here
        # does not use, and dominates training time (measured 4x on 2 cores).
        index.do_polysemous_training = False
        size = train_size or 64 * params["nlist"]
        index.train(_training_sample(emb, size, seed))
        params["train_size"] = min(size, len(ids))
    # emb.ids() above read every id file and checked it against its shard; only vectors now.
    for vectors in emb.vectors():
        if vectors.shape[0]:
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    seconds = time.perf_counter() - started

    document = {
        "kind": kind,
        "factory": factory,
        "rows": len(ids),
        "dim": emb.dim,
        "parameters": params,
        "model_fingerprint": emb.manifest["model_fingerprint"],
        "model_name": emb.manifest.get("model_name", ""),
        "embeddings": str(Path(embeddings).resolve()),
        "build_seconds": round(seconds, 3),
        "index_bytes": None,
    }
    # Not complete until index.json is back: a kill between the files below must not leave a
    # new index.faiss beside an old index.json and ids.txt.
    (out / "index.json").unlink(missing_ok=True)
    with atomic_path(out / "index.faiss") as tmp:
        faiss.write_index(index, str(tmp))
        document["index_bytes"] = tmp.stat().st_size
    write_text_atomic(out / "ids.txt", "".join(f"{i}\n" for i in ids))
    # index.json last: its presence means the directory is complete.
    write_json_atomic(out / "index.json", document)
    return document


class DenseIndex:
    """A built index directory, ready to search.

    Args:
        directory: Written by :func:`build_index`.
        nprobe: ivfpq lists visited per query (default 32).
        ef_search: hnsw candidate list size (default 128).

    Example:
        >>> index = DenseIndex("index/sw-ivfpq")  # doctest: +SKIP
        >>> scores, docids = index.search(query_emb, 100)  # doctest: +SKIP
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, nprobe: int = 32, ef_search: int = 128
    ) -> None:
        import faiss

        self.directory = Path(directory)
        meta = self.directory / "index.json"
        if not meta.is_file():
            raise IndexDirError(f"{self.directory} has no index.json; run langmix index")
        self.meta = json.loads(meta.read_text(encoding="utf-8"))
        self.index = faiss.read_index(str(self.directory / "index.faiss"))
        self.ids = (self.directory / "ids.txt").read_text(encoding="utf-8").splitlines()
        if len(self.ids) != self.index.ntotal:
            raise IndexDirError(
                f"{self.directory}: {len(self.ids)} ids for {self.index.ntotal} indexed vectors"
            )
        if self.meta["kind"] == "ivfpq":
            faiss.extract_index_ivf(self.index).nprobe = nprobe
        elif self.meta["kind"] == "hnsw":
            self.index.hnsw.efSearch = ef_search

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the model that encoded the passages."""
        return self.meta["model_fingerprint"]

    def search(self, query_emb: np.ndarray, top_k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Top-k passages per query, best first: ``(scores [n, k], docids per query)``."""
        if query_emb.ndim != 2 or query_emb.shape[1] != self.meta["dim"]:
            raise ValueError(
                f"queries have shape {query_emb.shape}; the index holds {self.meta['dim']}-d "
                "vectors"
            )
        k = min(top_k, len(self.ids))
        scores, rows = self.index.search(np.ascontiguousarray(query_emb, dtype=np.float32), k)
        docids = [[self.ids[j] for j in row if j >= 0] for row in rows]
        return scores, docids
