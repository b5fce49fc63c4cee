"""MIRACL: topics and qrels (TSV, as shipped with Pyserini/Anserini) and a passage corpus.

Topics are ``qid<TAB>query``; qrels are TREC ``qid<TAB>Q0<TAB>docid<TAB>rel`` with rel 1
(relevant) or 0 (judged non-relevant). The corpus is JSONL with ``docid``, ``title``, ``text``
per line, read from a local file; online it can come from the Hugging Face dataset
``miracl/miracl-corpus`` instead (millions of passages per language, so it is streamed to a
local JSONL once and read from there).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from langmix.data.errors import DataError, DataUnavailableError, no_records, repeated
from langmix.data.jsonl import json_object, text_lines
from langmix.data.sources import cache_dir, resolve_file
from langmix.outputs import atomic_path

MIRACL_LANGUAGES: tuple[str, ...] = (
    "ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te",
    "th", "yo", "zh",
)  # fmt: skip
MIRACL_SPLITS = ("dev", "train")
_NO_TRAIN = {"de", "yo"}  # MIRACL's "surprise" languages have dev only


@dataclass(frozen=True, slots=True)
class Passage:
    """One corpus passage."""

    docid: str
    title: str
    text: str

    def passage(self) -> str:
        """The text a retriever encodes (title, then passage, as in MIRACL baselines)."""
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass
class MiraclLanguage:
    """Topics, qrels and (optionally) the corpus of one MIRACL language and split.

    Example:
        >>> ml = load_miracl("de", data_dir="../shared/data")  # doctest: +SKIP
        >>> len(ml.topics), sum(len(v) for v in ml.qrels.values())  # doctest: +SKIP
        (305, 3144)
    """

    language: str
    split: str
    topics: dict[str, str]
    qrels: dict[str, dict[str, int]]
    corpus: list[Passage] = field(default_factory=list)


def read_topics(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a ``qid<TAB>query`` topics file.

    Raises:
        DataError: Naming the file and line for a malformed line, an empty query or a
            repeated qid.

    Example:
        >>> path = "../shared/data/miracl/topics/topics.miracl-v1.0-de-dev.tsv"
        >>> topics = read_topics(path)  # doctest: +SKIP
    """
    path = Path(path)
    topics: dict[str, str] = {}
    for number, line in text_lines(path):
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataError(
                path, f"expected 'qid<TAB>query', got {len(parts)} fields", record=f"line {number}"
            )
        qid, query = parts[0].strip(), parts[1].strip()
        if not qid or not query:
            raise DataError(path, "empty qid or query", record=f"line {number}")
        if qid in topics:
            raise repeated(path, f"qid {qid!r}", record=f"line {number}")
        topics[qid] = query
    if not topics:
        raise no_records(path, "topics")
    return topics


def read_qrels(path: str | os.PathLike[str]) -> dict[str, dict[str, int]]:
    """Read TREC qrels (``qid Q0 docid rel``, tab- or space-separated).

    Raises:
        DataError: Naming the file and line for a malformed line or a non-integer grade.
    """
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for number, line in text_lines(path):
        parts = line.split()
        if len(parts) != 4:
            raise DataError(
                path,
                f"expected 'qid Q0 docid rel', got {len(parts)} fields",
                record=f"line {number}",
            )
        qid, _, docid, rel = parts
        try:
            grade = int(rel)
        except ValueError:
            raise DataError(
                path, f"relevance {rel!r} is not an integer", record=f"line {number}"
            ) from None
        judged = qrels.setdefault(qid, {})
        if docid in judged:
            raise repeated(path, f"the judgment of {docid!r} for {qid!r}", record=f"line {number}")
        judged[docid] = grade
    if not qrels:
        raise no_records(path, "judgments")
    return qrels


def parse_corpus_line(path: Path, where: str, line: str) -> Passage:
    """One corpus line as a :class:`Passage`; a DataError names ``path`` and ``where``."""
    row = json_object(path, where, line)
    for key in ("docid", "text"):
        if not isinstance(row.get(key), str):
            raise DataError(path, f"missing or non-string field {key!r}", record=where)
    docid, text = row["docid"], row["text"]
    if not text.strip():
        raise DataError(path, f"empty text for docid {docid!r}", record=where)
    if "\n" in docid:  # docids are written one per line (run files, id maps)
        raise DataError(path, f"docid {docid!r} contains a newline", record=where)
    return Passage(docid, str(row.get("title") or ""), text)


def read_corpus(path: str | os.PathLike[str]) -> list[Passage]:
    """Read a JSONL corpus, one ``{"docid", "title", "text"}`` object per line.

    Raises:
        DataError: Naming the file and line for bad JSON, a missing field, an empty text or
            a repeated docid.

    Example:
        >>> passages = read_corpus("miracl-de.jsonl")  # doctest: +SKIP
    """
    path = Path(path)
    passages: list[Passage] = []
    seen: set[str] = set()
    for number, line in text_lines(path):
        where = f"line {number}"
        passage = parse_corpus_line(path, where, line)
        if passage.docid in seen:
            raise repeated(path, f"docid {passage.docid!r}", record=where)
        seen.add(passage.docid)
        passages.append(passage)
    if not passages:
        raise no_records(path, "passages")
    return passages


def download_corpus(language: str, destination: str | os.PathLike[str] | None = None) -> Path:
    """Stream ``miracl/miracl-corpus`` for one language from the Hugging Face hub to JSONL.

    Needs the ``datasets`` package and network access; the file is written under a temporary
    name and renamed when complete, so an interrupted download is never mistaken for a corpus.

    Example:
        >>> download_corpus("sw")  # doctest: +SKIP
        PosixPath('/root/.cache/langmix/data/miracl/corpus/sw.jsonl')
    """
    _check_language(language)
    target = (
        Path(destination)
        if destination
        else cache_dir() / "data" / "miracl" / "corpus" / f"{language}.jsonl"
    )
    try:
        import datasets
    except ImportError as exc:
        raise DataUnavailableError(
            "downloading the MIRACL corpus needs the 'datasets' package (pip install langmix[hub])"
        ) from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        stream = datasets.load_dataset(
            "miracl/miracl-corpus", language, split="train", streaming=True
        )
        # A broken-off download leaves no file behind: the next attempt starts clean.
        with atomic_path(target) as partial, partial.open("w", encoding="utf-8") as out:
            for row in stream:
                out.write(
                    json.dumps(
                        {"docid": row["docid"], "title": row["title"], "text": row["text"]},
                        ensure_ascii=False,
                    )
                    + "\n"
                )
    except Exception as exc:  # the hub client raises many unrelated types when offline
        raise DataUnavailableError(
            f"could not download the MIRACL {language} corpus from the Hugging Face hub ({exc}); "
            f"pass a local JSONL corpus with --corpus PATH"
        ) from exc
    return target


def _check_language(language: str) -> None:
    if language not in MIRACL_LANGUAGES:
        raise ValueError(
            f"unknown MIRACL language {language!r}; available: {', '.join(MIRACL_LANGUAGES)}"
        )


def load_miracl(
    language: str,
    split: str = "dev",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    corpus: str | os.PathLike[str] | None = None,
    allow_download: bool = True,
) -> MiraclLanguage:
    """Load MIRACL topics and qrels for one language, and a corpus if one is given or cached.

    Args:
        language: A MIRACL language code.
        split: ``"dev"`` or ``"train"`` (``de`` and ``yo`` have dev only).
        data_dir: Local directory holding ``miracl/topics`` and ``miracl/qrels``.
        corpus: A JSONL corpus file. Without it, ``{data_dir or cache}/miracl/corpus/{lang}.jsonl``
            is used when present; otherwise the corpus is left empty (call
            :func:`download_corpus` to fetch it online).
        allow_download: Whether missing topics/qrels may be downloaded.

    Raises:
        ValueError: For an unknown language or split.
        DataError: For malformed files, or qrels naming queries the topics lack.

    Example:
        >>> de = load_miracl("de", data_dir="../shared/data")  # doctest: +SKIP
    """
    _check_language(language)
    if split not in MIRACL_SPLITS:
        raise ValueError(f"unknown split {split!r}; available: {', '.join(MIRACL_SPLITS)}")
    if split == "train" and language in _NO_TRAIN:
        raise ValueError(f"MIRACL {language} has no train split (dev only)")
    stem = f"miracl-v1.0-{language}-{split}.tsv"
    topics_path = resolve_file(
        f"miracl/topics/topics.{stem}", data_dir, allow_download=allow_download
    )
    qrels_path = resolve_file(f"miracl/qrels/qrels.{stem}", data_dir, allow_download=allow_download)
    topics = read_topics(topics_path)
    qrels = read_qrels(qrels_path)
    unknown = sorted(set(qrels) - set(topics))
    if unknown:
        raise DataError(
            qrels_path,
            f"{len(unknown)} judged qid(s) have no topic in {topics_path}, e.g. {unknown[0]!r}",
            fix="topics and qrels must come from the same language and split",
        )
    passages: list[Passage] = []
    corpus_path = Path(corpus) if corpus else _cached_corpus(language, data_dir)
    if corpus_path is not None:
        if not corpus_path.is_file():
            raise DataUnavailableError(f"corpus file {corpus_path} does not exist")
        passages = read_corpus(corpus_path)
    return MiraclLanguage(language, split, topics, qrels, passages)


def _cached_corpus(language: str, data_dir: str | os.PathLike[str] | None) -> Path | None:
    roots: Iterable[Path] = [Path(data_dir)] if data_dir else []
    for root in [*roots, cache_dir() / "data"]:
        path = root / "miracl" / "corpus" / f"{language}.jsonl"
        if path.is_file():
            return path
    return None
