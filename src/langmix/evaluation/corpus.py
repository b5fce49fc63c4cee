"""Encoding a passage corpus too large for memory: shards, processes, float16 memory maps.

MIRACL corpora run to 33M passages (English). :func:`encode_corpus` cuts the JSONL file into
*byte-range shards* (a passage belongs to the shard its line starts in), so shard ``i`` can
be read by seeking to ``i * shard_bytes`` without scanning the file first, and several
processes (``torchrun --nproc-per-node N``, one per GPU, or CPU processes) take shards
round-robin with no communication at all. Each finished shard is three files, written under
temporary names and renamed, the JSON marker last::

    manifest.json              model, its fingerprint, prompt, truncation, dimension, corpus
    shard-00012.npy            float16 [n, dim], L2-normalised rows (np.load(mmap_mode="r"))
    shard-00012.ids.txt        the docids, one per line, row order
    shard-00012.json           {"rows", "first_byte", "end_byte", "seconds"}: the shard is done

A rerun skips every shard with its marker, so a killed job loses at most the shards in
flight. :class:`CorpusEmbeddings` reads the shards back in corpus order.

Why by hand: sentence-transformers' multi-process pool encodes an in-memory list and keeps
every embedding in RAM; here neither the texts nor the vectors of a whole corpus are ever held
at once, and finished work survives a kill.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from langmix.data.errors import DataError, not_utf8
from langmix.data.miracl import Passage, parse_corpus_line
from langmix.evaluation.encoding import PASSAGE, encode, model_fingerprint
from langmix.outputs import atomic_path, ensure_writable

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MANIFEST = "manifest.json"
DEFAULT_SHARD_BYTES = 64 * 2**20


class CorpusDirError(ValueError):
    """The embedding directory belongs to another model, corpus or setting."""


@dataclass
class EncodeCorpusArguments:
    """Arguments of ``langmix encode-corpus``."""

    model: str = field(metadata={"help": "Model name, offline:NAME[@Lk], hub id or local path."})
    corpus: str = field(metadata={"help": "JSONL corpus: one {docid, title, text} per line."})
    output_dir: str = field(metadata={"help": "Directory for the shards and manifest.json."})
    shard_mb: float = field(default=64.0, metadata={"help": "Corpus megabytes per shard."})
    batch_size: int = field(default=128, metadata={"help": "Encoding batch size."})
    max_length: int = field(default=256, metadata={"help": "Passage truncation (tokens)."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace embeddings of other settings in output_dir (one process)."},
    )


def shard_count(corpus: str | os.PathLike[str], shard_bytes: int) -> int:
    """Number of byte-range shards of a corpus file."""
    size = Path(corpus).stat().st_size
    return max(1, -(-size // shard_bytes))


def read_shard(
    corpus: str | os.PathLike[str], shard: int, shard_bytes: int
) -> Iterator[tuple[int, Passage]]:
    """The passages whose line starts in ``[shard * shard_bytes, (shard + 1) * shard_bytes)``.

    Yields:
        ``(byte offset of the line, passage)``.

    Raises:
        DataError: Naming the file and byte offset for bad JSON, a missing field or an
            empty text.

    Example:
        >>> next(read_shard("miracl-sw.jsonl", 0, 2**26))  # doctest: +SKIP
        (0, Passage(docid='1#0', title='...', text='...'))
    """
    path = Path(corpus)
    start, end = shard * shard_bytes, (shard + 1) * shard_bytes
    with path.open("rb") as handle:
        if start:
            # The line that straddles ``start`` belongs to the previous shard.
            handle.seek(start - 1)
            handle.readline()
        while True:
            offset = handle.tell()
            if offset >= end:
                return
            raw = handle.readline()
            if not raw:
                return
            if not raw.strip():
                continue
            yield offset, _parse(path, offset, raw)


def _parse(path: Path, offset: int, raw: bytes) -> Passage:
    where = f"byte {offset}"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc, record=where) from exc
    return parse_corpus_line(path, where, line)


def _write_atomic(path: Path, payload: bytes) -> None:
    # Synced before the rename: a shard's done-marker must never outlive its vectors in a
    # power cut, or a resumed run would skip a shard whose data never reached the disk.
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# Recorded for people, not compared: a model may be renamed and a corpus moved.
_INFORMATIONAL = {"model_name", "corpus"}


def _manifest(
    model: SentenceTransformer, model_name: str, corpus: Path, shard_bytes: int, max_length: int
) -> dict[str, Any]:
    stat = corpus.stat()
    return {
        "model_name": model_name,
        "model_fingerprint": model_fingerprint(model),
        "prompt": (getattr(model, "prompts", None) or {}).get(PASSAGE, ""),
        "max_length": max_length,
        "dim": _dimension(model),
        "dtype": "float16",
        "corpus": str(corpus.resolve()),
        "corpus_bytes": stat.st_size,
        "shard_bytes": shard_bytes,
        "shards": shard_count(corpus, shard_bytes),
    }


def _dimension(model: SentenceTransformer) -> int:
    # sentence-transformers 6 renamed the method; older releases only have the old name.
    method = (
        getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    )
    return int(method())


def _claim(
    out: Path, manifest: dict[str, Any], rank: int, world_size: int, overwrite: bool
) -> None:
    path = out / MANIFEST
    if path.exists():
        found = json.loads(path.read_text(encoding="utf-8"))
        differs = [k for k in manifest if k not in _INFORMATIONAL and found.get(k) != manifest[k]]
        if not differs:
            return
        if not overwrite:
            raise CorpusDirError(
                f"{out} holds embeddings made with other settings ({', '.join(differs)} "
                "differ); use another output directory or pass --overwrite"
            )
        if world_size > 1:
            # Ranks start unsynchronised: one could keep an old shard another is deleting.
            raise CorpusDirError(
                f"--overwrite {out}: run it as one process (or delete the directory) first"
            )
        path.unlink()  # first: without a manifest the directory no longer claims old shards
        for shard in out.glob("shard-*"):
            shard.unlink()
    if rank == 0:
        ensure_writable(out)
        _write_atomic(path, json.dumps(manifest, indent=2).encode("utf-8"))


def encode_corpus(
    model: SentenceTransformer,
    corpus: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    model_name: str = "",
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    batch_size: int = 128,
    max_length: int = 256,
    rank: int | None = None,
    world_size: int | None = None,
    show_progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Encode this process's share of a corpus into float16 shards, skipping finished ones.

    Under ``torchrun`` the rank and world size come from the environment; each process
    takes shards ``rank, rank + world_size, ...``.

    Args:
        model: The encoder (already on this process's device).
        corpus: JSONL file of ``{"docid", "title", "text"}`` objects.
        output_dir: Where the shards go (see the module docstring).
        model_name: Recorded in the manifest for people; the fingerprint is what is compared.
        shard_bytes: Corpus bytes per shard (the unit of resumption and of parallelism).
        batch_size: Encoding batch size.
        max_length: Passage truncation in tokens.
        rank: This process's index (default: ``$RANK`` or 0).
        world_size: Number of processes (default: ``$WORLD_SIZE`` or 1).
        show_progress: Show a bar of this process's shards.
        overwrite: Replace embeddings of other settings (single process only).

    Returns:
        ``{"shards_encoded", "shards_skipped", "rows", "seconds"}`` for this process.

    Raises:
        CorpusDirError: If ``output_dir`` holds embeddings of another model or setting.
        DataError: For a malformed corpus line (file and byte offset named).

    Example:
        >>> encode_corpus(load_model("offline:multilingual-e5-small"), "sw.jsonl", "emb/sw")  # doctest: +SKIP
        {'shards_encoded': 3, 'shards_skipped': 0, 'rows': 131924, 'seconds': 812.4}
    """
    corpus = Path(corpus)
    out = Path(output_dir)
    if not corpus.is_file():
        raise DataError(corpus, "corpus file does not exist")
    if shard_bytes < 1:
        raise ValueError(f"shard_bytes must be positive, got {shard_bytes}")
    rank = int(os.environ.get("RANK", 0)) if rank is None else rank
    world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not valid for world size {world_size}")
    manifest = _manifest(model, model_name, corpus, shard_bytes, max_length)
    _claim(out, manifest, rank, world_size, overwrite)
    # Other ranks wait for rank 0's manifest rather than racing to write it.
    deadline = time.monotonic() + 600
    while not (out / MANIFEST).exists():
        if time.monotonic() > deadline:
            raise CorpusDirError(f"{out / MANIFEST} did not appear; is rank 0 running?")
        time.sleep(0.2)

    mine = list(range(rank, manifest["shards"], world_size))
    from tqdm.auto import tqdm

    started = time.perf_counter()
    encoded = skipped = rows = 0
    for shard in tqdm(
        mine, desc=f"encode-corpus rank {rank}", unit="shard", disable=not show_progress
    ):
        done_marker = out / f"shard-{shard:05d}.json"
        if done_marker.exists():
            skipped += 1
            continue
        shard_started = time.perf_counter()
        ids, texts, first = [], [], None
        for offset, passage in read_shard(corpus, shard, shard_bytes):
            first = offset if first is None else first
            ids.append(passage.docid)
            texts.append(passage.passage())
        if texts:
            vectors = encode(
                model,
                texts,
                PASSAGE,
                batch_size=batch_size,
                max_seq_length=max_length,
                show_progress=False,
            ).astype(np.float16)
        else:
            vectors = np.zeros((0, manifest["dim"]), dtype=np.float16)
        _write_atomic(out / f"shard-{shard:05d}.npy", _npy_bytes(vectors))
        _write_atomic(
            out / f"shard-{shard:05d}.ids.txt", "".join(f"{i}\n" for i in ids).encode("utf-8")
        )
        record = {
            "rows": len(ids),
            "first_byte": first,
            "seconds": round(time.perf_counter() - shard_started, 3),
        }
        _write_atomic(done_marker, json.dumps(record).encode("utf-8"))
        encoded += 1
        rows += len(ids)
    return {
        "shards_encoded": encoded,
        "shards_skipped": skipped,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 3),
    }


class CorpusEmbeddings:
    """A finished embedding directory, read shard by shard in corpus order.

    Raises:
        CorpusDirError: If the directory has no manifest or some shards are not finished.

    Example:
        >>> emb = CorpusEmbeddings("emb/sw")  # doctest: +SKIP
        >>> for ids, vectors in emb.shards(): ...  # doctest: +SKIP
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        path = self.directory / MANIFEST
        if not path.is_file():
            raise CorpusDirError(f"{self.directory} has no {MANIFEST}; run langmix encode-corpus")
        self.manifest = json.loads(path.read_text(encoding="utf-8"))
        missing = [
            i
            for i in range(self.manifest["shards"])
            if not (self.directory / f"shard-{i:05d}.json").exists()
        ]
        if missing:
            raise CorpusDirError(
                f"{self.directory}: {len(missing)} of {self.manifest['shards']} shards are not "
                f"encoded yet (first: {missing[0]}); rerun langmix encode-corpus to finish them"
            )
        self.dim = int(self.manifest["dim"])
        self.rows_per_shard = [
            json.loads((self.directory / f"shard-{i:05d}.json").read_text())["rows"]
            for i in range(self.manifest["shards"])
        ]

    def __len__(self) -> int:
        return sum(self.rows_per_shard)

    def shards(self) -> Iterator[tuple[list[str], np.ndarray]]:
        """``(docids, float16 memory map [rows, dim])`` per shard, in corpus order."""
        for i in range(self.manifest["shards"]):
            ids = (
                (self.directory / f"shard-{i:05d}.ids.txt").read_text(encoding="utf-8").splitlines()
            )
            vectors = np.load(self.directory / f"shard-{i:05d}.npy", mmap_mode="r")
            if len(ids) != vectors.shape[0]:
                raise CorpusDirError(
                    f"{self.directory}: shard {i} has {len(ids)} ids but {vectors.shape[0]} rows"
                )
            yield ids, vectors

    def vectors(self) -> Iterator[np.ndarray]:
        """Each shard's float16 memory map ``[rows, dim]``, in corpus order (no ids read)."""
        for i in range(self.manifest["shards"]):
            yield np.load(self.directory / f"shard-{i:05d}.npy", mmap_mode="r")

    def ids(self) -> list[str]:
        """Every docid in row order; a docid seen twice is an error (file and id named)."""
        out: list[str] = []
        seen: set[str] = set()
        for ids, _ in self.shards():
            for docid in ids:
                if docid in seen:
                    raise DataError(
                        self.manifest["corpus"], f"docid {docid!r} appears more than once"
                    )
                seen.add(docid)
            out.extend(ids)
        return out

    def matrix(self) -> np.ndarray:
        """All vectors as one float32 array (``4 * dim`` bytes per passage)."""
        out = np.empty((len(self), self.dim), dtype=np.float32)
        row = 0
        for vectors in self.vectors():
            out[row : row + vectors.shape[0]] = vectors
            row += vectors.shape[0]
        return out
