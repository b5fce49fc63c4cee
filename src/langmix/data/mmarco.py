"""mMARCO: MS MARCO passage ranking machine-translated into 13 languages, plus English.

Every language shares MS MARCO's query ids and passage ids, so the training data is parallel
by construction: query ``q`` with judged passage ``p`` exists in every language, and
:func:`load_mmarco` returns it as :class:`~langmix.data.pairs.ParallelPairs` keyed by
``mmarco:{q}``.

Files used, with their paths in the Hugging Face dataset repository ``unicamp-dl/mmarco``
(the current Google-Translate release, which the repository's README recommends)::

    data/triples.train.ids.small.tsv                        query id, positive id, negative id
    data/google/queries/train/{name}_queries.train.tsv      query id, query text
    data/google/collections/{name}_collection.tsv           passage id, passage text

where ``{name}`` is the language's name in :data:`MMARCO_LANGUAGES` (``german``, ...). All are
tab-separated with no header. Where this layout comes from: the repository's own loading
script ``mmarco.py`` (its ``_BASE_URLS`` and ``LANGUAGES``, and its reading of every line as
tab-separated ids and text), the hub's file listing of ``data/`` and
``data/google/collections`` on ``main``, and ir_datasets' mMARCO v2 definitions, which
download the same URLs.

The repository has no training qrels file (``data/`` holds only ``qrels.dev.tsv``,
``qrels.dev.small.tsv`` and the triples), so the judged positives are read from the triples
file, whose positives are MS MARCO's judged training passages: a training query is every
query id in the triples, its positive the first one in file order, and its hard negatives
the distinct negatives paired with it, in file order. (The small triples cover about 400k of
MS MARCO's 503k judged training queries.)

A local copy is used first: ``mmarco/`` under ``data_dir``, then under ``$LANGMIX_DATA_DIR``,
then under the cache's ``data/`` folder, laid out exactly like the repository (for example
``DIR/mmarco/data/google/collections/german_collection.tsv``). Otherwise the needed files are
downloaded with ``huggingface_hub`` into the cache's ``hub/`` folder. They are large: about
900 MB of triples, 30-80 MB of queries and 3-8 GB of passages per language.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

import numpy as np

from langmix.data.errors import DataError, DataUnavailableError, not_utf8, repeated
from langmix.data.lareqa import parse_languages
from langmix.data.pairs import Pair, ParallelPairs
from langmix.data.sources import DATA_DIR_ENV, cache_dir, find_local, local_roots

MMARCO_REPO = "unicamp-dl/mmarco"
TRIPLES_FILE = "data/triples.train.ids.small.tsv"

_BLANK = frozenset({b"\n", b"\r\n", b""})

# ISO 639-1 code -> the language name upstream uses in file names, in the README's order.
MMARCO_LANGUAGES: Mapping[str, str] = MappingProxyType(
    {
        "en": "english",
        "zh": "chinese",
        "fr": "french",
        "de": "german",
        "id": "indonesian",
        "it": "italian",
        "pt": "portuguese",
        "ru": "russian",
        "es": "spanish",
        "ar": "arabic",
        "nl": "dutch",
        "hi": "hindi",
        "ja": "japanese",
        "vi": "vietnamese",
    }
)


def queries_file(language: str) -> str:
    """Return the repository path of a language's training queries.

    Example:
        >>> queries_file("de")
        'data/google/queries/train/german_queries.train.tsv'
    """
    return f"data/google/queries/train/{MMARCO_LANGUAGES[language]}_queries.train.tsv"


def collection_file(language: str) -> str:
    """Return the repository path of a language's passage collection.

    Example:
        >>> collection_file("ja")
        'data/google/collections/japanese_collection.tsv'
    """
    return f"data/google/collections/{MMARCO_LANGUAGES[language]}_collection.tsv"


def load_mmarco(
    languages: str | Iterable[str] | None,
    *,
    max_queries: int | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    allow_download: bool = True,
    hard_negatives: int = 0,
) -> ParallelPairs:
    """Load mMARCO training pairs, aligned across languages by query and passage id.

    Args:
        languages: Codes from :data:`MMARCO_LANGUAGES` (an iterable or ``"de,en"``);
            ``None`` for all 14. Pairs come in the canonical order of that mapping.
        max_queries: If given, a random subset of this many training queries, the same in
            every language so the data stays parallel.
        seed: Seed of that subset; the subset depends only on it and the query ids.
        data_dir: A directory holding ``mmarco/`` laid out like the hub repository.
        allow_download: Whether to fetch files missing locally from the hub.
        hard_negatives: Up to this many negatives per pair, from the triples file, each in
            the pair's language.

    Returns:
        One :class:`~langmix.data.pairs.Pair` per selected query and language, with parallel
        id and group ``mmarco:{query id}``.

    Raises:
        ValueError: On an unknown language code, ``max_queries < 1`` or
            ``hard_negatives < 0``.
        DataUnavailableError: If a file is neither local nor downloadable; the message says
            how to point langmix at a local copy.
        DataError: Naming the file and line for a malformed line or empty text, or naming
            the file that lacks a query or passage the triples refer to.

    Example:
        >>> pairs = load_mmarco(["en", "de"], max_queries=10_000, hard_negatives=3)  # doctest: +SKIP
        >>> train, val = pairs.split(validation_fraction=0.05)  # doctest: +SKIP
    """
    chosen = parse_languages(languages, MMARCO_LANGUAGES)
    if max_queries is not None and max_queries < 1:
        raise ValueError(f"max_queries must be at least 1, got {max_queries}")
    if hard_negatives < 0:
        raise ValueError(f"hard_negatives must be 0 or more, got {hard_negatives}")

    # Resolve (and download) every file before reading any, so a missing language fails in
    # seconds rather than after streaming the 900 MB triples file.
    triples = _resolve(TRIPLES_FILE, data_dir, allow_download)
    query_paths = {lang: _resolve(queries_file(lang), data_dir, allow_download) for lang in chosen}
    passage_paths = {
        lang: _resolve(collection_file(lang), data_dir, allow_download) for lang in chosen
    }

    positives = _read_positives(triples)
    qids = _select(positives, max_queries, seed)
    selected = {qid: positives[qid] for qid in qids}
    negatives = _read_negatives(triples, selected, hard_negatives) if hard_negatives else {}

    # Line of the triples file that first needs each id, for errors about a missing one.
    needed_queries = {qid: line for qid, (_, line) in selected.items()}
    needed_passages: dict[bytes, int] = {}
    for qid, (pid, line) in selected.items():
        needed_passages.setdefault(pid, line)
        for neg, neg_line in negatives.get(qid, ()):
            needed_passages.setdefault(neg, neg_line)

    texts = {
        lang: (
            _read_texts(query_paths[lang], needed_queries, "query", triples),
            _read_texts(passage_paths[lang], needed_passages, "passage", triples),
        )
        for lang in chosen
    }
    pairs: list[Pair] = []
    for qid in qids:
        parallel_id = f"mmarco:{qid.decode()}"
        pid = selected[qid][0]
        for lang in chosen:
            queries, passages = texts[lang]
            pairs.append(
                Pair(
                    parallel_id,
                    lang,
                    queries[qid],
                    passages[pid],
                    parallel_id,
                    tuple(passages[neg] for neg, _ in negatives.get(qid, ())),
                )
            )
    return ParallelPairs("mmarco", chosen, pairs)


def _resolve(
    relative_path: str, data_dir: str | os.PathLike[str] | None, allow_download: bool
) -> Path:
    """Find ``mmarco/{relative_path}`` locally, or download it from the hub."""
    local = find_local(f"mmarco/{relative_path}", data_dir)
    if local is not None:
        return local
    roots = local_roots(data_dir)
    if not allow_download:
        raise DataUnavailableError(_missing_message(relative_path, roots, None))
    try:
        return _hub_download(relative_path)
    except Exception as exc:
        # huggingface_hub raises many types (HTTP, connection, offline mode, a missing
        # package); to the user each means the same thing: use a local copy.
        raise DataUnavailableError(_missing_message(relative_path, roots, exc)) from exc


def _hub_download(relative_path: str) -> Path:
    """Download one file of the hub repository into langmix's cache and return its path."""
    # Imported here: only the download path needs it, and reading a local copy must not.
    from huggingface_hub import hf_hub_download

    return Path(
        hf_hub_download(
            repo_id=MMARCO_REPO,
            repo_type="dataset",
            filename=relative_path,
            cache_dir=cache_dir() / "hub",
        )
    )


def _missing_message(relative_path: str, roots: list[Path], error: Exception | None) -> str:
    looked = ", ".join(str(root / "mmarco") for root in roots)
    reason = (
        f"\n  download from the Hugging Face hub ({MMARCO_REPO}) failed: {error}" if error else ""
    )
    return (
        f"mmarco/{relative_path} is not available locally (looked in: {looked}).{reason}\n"
        f"  Point langmix at a local copy with --data-dir DIR or {DATA_DIR_ENV}=DIR, where "
        f"DIR/mmarco/ holds the files of https://huggingface.co/datasets/{MMARCO_REPO} at their "
        f"repository paths (DIR/mmarco/{relative_path})."
    )


def _fields(path: Path, number: int, raw: bytes, count: int) -> list[bytes]:
    """Split one TSV line into ``count`` fields, or raise naming the file and line."""
    fields = raw.rstrip(b"\r\n").split(b"\t")
    if len(fields) != count:
        raise DataError(
            path,
            f"expected {count} tab-separated columns, found {len(fields)}",
            record=f"line {number}",
        )
    return fields


def _read_positives(path: Path) -> dict[bytes, tuple[bytes, int]]:
    """Map each query id of the triples file to its first positive and that line's number.

    Ids stay bytes: the file has ~40M lines, and decoding them all would double the time.
    """
    positives: dict[bytes, tuple[bytes, int]] = {}
    with _open(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if raw in _BLANK:
                continue
            qid, pos, neg = (f.strip() for f in _fields(path, number, raw, 3))
            if not (qid and pos and neg):
                raise DataError(path, "empty id", record=f"line {number}")
            if qid not in positives:
                positives[qid] = (pos, number)
    if not positives:
        raise DataError(path, "no training triples in file")
    return positives


def _read_negatives(
    path: Path, selected: Mapping[bytes, tuple[bytes, int]], limit: int
) -> dict[bytes, list[tuple[bytes, int]]]:
    """Up to ``limit`` distinct negatives (id, line) per selected query, in file order.

    A second pass over the triples, rather than collecting negatives in the first, because
    holding negatives for all ~400k queries costs far more memory than the few kept.
    """
    negatives: dict[bytes, list[tuple[bytes, int]]] = {qid: [] for qid in selected}
    open_queries = len(selected)
    with _open(path) as handle:
        for number, raw in enumerate(handle, start=1):
            fields = raw.split(b"\t")
            if len(fields) != 3:
                continue  # blank line; the first pass rejected anything else
            qid, neg = fields[0].strip(), fields[2].strip()
            found = negatives.get(qid)
            if found is None or len(found) >= limit or neg == selected[qid][0]:
                continue
            if all(neg != seen for seen, _ in found):
                found.append((neg, number))
                if len(found) == limit:
                    open_queries -= 1
                    if not open_queries:
                        break
    return negatives


def _select(
    positives: Mapping[bytes, tuple[bytes, int]], max_queries: int | None, seed: int
) -> list[bytes]:
    """All query ids in numeric order, or a seeded subset of them (kept in that order)."""
    # Sorting first makes the subset depend on the set of ids, not on the file's order.
    qids = sorted(positives, key=lambda q: (0, int(q), b"") if q.isdigit() else (1, 0, q))
    if max_queries is None or max_queries >= len(qids):
        return qids
    picked = np.random.default_rng(seed).choice(len(qids), size=max_queries, replace=False)
    return [qids[i] for i in sorted(picked.tolist())]


def _read_texts(
    path: Path, needed: Mapping[bytes, int], kind: str, triples: Path
) -> dict[bytes, str]:
    """Stream an ``id<TAB>text`` file once, keeping the texts of the ``needed`` ids only.

    A collection has ~8.8M passages (3-8 GB), so it is never held whole; lines are split as
    bytes and only the kept texts are decoded. Every line's column count is checked (a bad
    one means a damaged or wrong file), but an empty text only where it would be used.

    Args:
        path: The queries or collection file.
        needed: Ids to keep, each with the triples line that needs it.
        kind: ``"query"`` or ``"passage"``, for messages.
        triples: The triples file, for the message about a missing id.
    """
    texts: dict[bytes, str] = {}
    with _open(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if raw in _BLANK:
                continue
            key, text = _fields(path, number, raw, 2)
            key = key.strip()
            if key not in needed:
                continue
            where = f"line {number}"
            if key in texts:
                raise repeated(path, f"{kind} id {key.decode()}", record=where)
            try:
                value = text.decode("utf-8").strip()
            except UnicodeDecodeError:
                # Locate the bad byte within the whole line, not just its text field.
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise not_utf8(path, exc, record=where) from exc
                raise  # unreachable: the line holds the text that failed
            if not value:
                raise DataError(path, f"empty text for {kind} id {key.decode()}", record=where)
            texts[key] = value
    missing = [key for key in needed if key not in texts]
    if missing:
        key = min(missing, key=needed.__getitem__)
        raise DataError(
            path,
            f"no {kind} with id {key.decode()} (needed by {triples}, line {needed[key]}"
            + (f"; {len(missing) - 1} more id(s) missing" if len(missing) > 1 else "")
            + ")",
            fix="is this file complete and from the same mMARCO release as the triples?",
        )
    return texts


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise DataError(path, f"cannot open: {exc.strerror}") from exc
