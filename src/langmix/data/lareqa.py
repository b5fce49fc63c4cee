"""Reader for LAReQA-format data (XQuAD-R, MLQA-R, or any file in that layout).

Each ``{lang}.json`` is SQuAD v1.1 plus two per-paragraph fields, ``sentences`` and
``sentence_breaks`` (``[start, end)`` character offsets into ``context``). Every sentence is a
candidate; a question's answer sentence is the one whose break holds ``answer_start``.

Quirks of the real files that this reader handles on purpose:

* answers that run across a sentence boundary: the sentence holding ``answer_start`` wins;
* repeated sentence strings within a language: candidates are identified by position;
* MLQA-R questions exist in only 2 to 4 of the 7 languages: relevance is per language present;
* a Turkish XQuAD-R paragraph whose last breaks are off by one character, and Thai's coarse
  sentence splits: ``sentences`` is taken as released, breaks are only used to locate answers.

No library reads this layout into a retrieval pool (``datasets`` has SQuAD loaders but no
sentence-level candidates or cross-language relevance), hence this module.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langmix.data.errors import DataError, no_records, not_json, not_utf8, repeated
from langmix.data.records import Candidate, LareqaDataset, Query, candidate_id, query_id
from langmix.data.sources import resolve_file

XQUAD_R_LANGUAGES: tuple[str, ...] = (
    "ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh",
)  # fmt: skip
MLQA_R_LANGUAGES: tuple[str, ...] = ("ar", "de", "en", "es", "hi", "vi", "zh")

LAREQA_DATASETS: dict[str, tuple[str, ...]] = {
    "xquad-r": XQUAD_R_LANGUAGES,
    "mlqa-r": MLQA_R_LANGUAGES,
}


def parse_languages(value: str | Iterable[str] | None, available: Iterable[str]) -> tuple[str, ...]:
    """Validate a language selection against what a dataset offers.

    Args:
        value: ``None`` (all), a comma-separated string, or an iterable of codes.
        available: The dataset's languages, in canonical order.

    Returns:
        The selected languages in the dataset's canonical order.

    Raises:
        ValueError: On an unknown or repeated language, or an empty selection.

    Example:
        >>> parse_languages("de,en", XQUAD_R_LANGUAGES)
        ('de', 'en')
    """
    available = tuple(available)
    if value is None:
        return available
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    items = [v for v in items if v]
    if not items:
        raise ValueError("the language selection is empty")
    unknown = [v for v in items if v not in available]
    if unknown:
        raise ValueError(
            f"unknown language(s) {', '.join(unknown)}; available: {', '.join(available)}"
        )
    if len(set(items)) != len(items):
        raise ValueError(f"a language is repeated in {','.join(items)}")
    return tuple(lang for lang in available if lang in set(items))


def _require(condition: bool, path: Path, problem: str, record: str, fix: str | None = None):
    if not condition:
        raise DataError(path, problem, record=record, fix=fix)


def _answer_sentence(breaks: list[list[int]], answer_start: int) -> int:
    """Index of the sentence holding ``answer_start``.

    Falls back to the next sentence when the offset lies in whitespace between two
    sentences, because the answer text then starts in that next sentence.
    """
    starts = [b[0] for b in breaks]
    i = bisect.bisect_right(starts, answer_start) - 1
    if i >= 0 and answer_start < breaks[i][1]:
        return i
    return min(i + 1, len(breaks) - 1)


def read_lareqa_file(
    path: str | os.PathLike[str], language: str
) -> tuple[list[Query], list[Candidate]]:
    """Read one language file of a LAReQA-format dataset.

    Args:
        path: The ``{lang}.json`` file.
        language: Its language code (used in ids).

    Returns:
        The queries and candidates of the file, in file order.

    Raises:
        DataError: Naming the file and the record for malformed JSON, missing fields, empty
            texts, out-of-range answers and repeated question ids.

    Example:
        >>> path = "../shared/data/xquad-r/de.json"
        >>> queries, candidates = read_lareqa_file(path, "de")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            raw = json.load(handle)
    except json.JSONDecodeError as exc:
        raise not_json(path, exc, record=f"line {exc.lineno} column {exc.colno}") from exc
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from exc

    _require(
        isinstance(raw, dict) and isinstance(raw.get("data"), list),
        path,
        "expected a JSON object with a 'data' list of articles (SQuAD layout)",
        "top level",
    )
    queries: list[Query] = []
    candidates: list[Candidate] = []
    seen_questions: dict[str, str] = {}
    for a, article in enumerate(raw["data"]):
        where = f"data[{a}]"
        _require(isinstance(article, dict), path, "article is not an object", where)
        paragraphs = article.get("paragraphs")
        _require(isinstance(paragraphs, list), path, "missing 'paragraphs' list", where)
        for p, paragraph in enumerate(paragraphs):
            pwhere = f"{where}.paragraphs[{p}]"
            queries_p, candidates_p = _read_paragraph(path, language, a, p, paragraph, pwhere)
            for q in queries_p:
                if q.parallel_id in seen_questions:
                    raise repeated(
                        path,
                        f"question id {q.parallel_id!r}",
                        record=pwhere,
                        first=seen_questions[q.parallel_id],
                    )
                seen_questions[q.parallel_id] = pwhere
            queries.extend(queries_p)
            candidates.extend(candidates_p)
    if not candidates:
        raise no_records(path, "sentences")
    return queries, candidates


def _read_paragraph(
    path: Path, language: str, a: int, p: int, paragraph: Any, where: str
) -> tuple[list[Query], list[Candidate]]:
    _require(isinstance(paragraph, dict), path, "paragraph is not an object", where)
    for key in ("context", "sentences", "sentence_breaks", "qas"):
        _require(
            key in paragraph,
            path,
            f"missing field {key!r}",
            where,
            "LAReQA files need sentences and sentence_breaks per paragraph; plain SQuAD "
            "files must be sentence-split first"
            if key.startswith("sentence")
            else None,
        )
    context = paragraph["context"]
    sentences = paragraph["sentences"]
    breaks = paragraph["sentence_breaks"]
    _require(isinstance(context, str) and context.strip() != "", path, "empty context", where)
    _require(
        isinstance(sentences, list) and isinstance(breaks, list) and len(sentences) == len(breaks),
        path,
        f"'sentences' ({_len(sentences)}) and 'sentence_breaks' ({_len(breaks)}) must be "
        "lists of the same length",
        where,
    )
    _require(len(sentences) > 0, path, "paragraph has no sentences", where)
    candidates = []
    previous_start = -1
    for s, (sentence, brk) in enumerate(zip(sentences, breaks, strict=True)):
        swhere = f"{where}.sentences[{s}]"
        _require(
            isinstance(sentence, str) and sentence.strip() != "", path, "empty sentence", swhere
        )
        _require(
            isinstance(brk, list)
            and len(brk) == 2
            and all(isinstance(x, int) for x in brk)
            and previous_start < brk[0] <= brk[1] <= len(context) + 1,
            path,
            f"bad sentence break {brk!r} (want increasing [start, end) within the context)",
            swhere,
        )
        previous_start = brk[0]
        candidates.append(
            Candidate(candidate_id(language, a, p, s), language, sentence, context, a, p, s)
        )
    queries = []
    qas = paragraph["qas"]
    _require(isinstance(qas, list), path, "'qas' is not a list", where)
    for k, qa in enumerate(qas):
        qwhere = f"{where}.qas[{k}]"
        _require(isinstance(qa, dict), path, "question is not an object", qwhere)
        for key in ("id", "question", "answers"):
            _require(key in qa, path, f"missing field {key!r}", qwhere)
        qid, text, answers = qa["id"], qa["question"], qa["answers"]
        _require(isinstance(qid, str) and qid != "", path, "empty question id", qwhere)
        qwhere = f"{qwhere} (id {qid})"
        _require(isinstance(text, str) and text.strip() != "", path, "empty question", qwhere)
        _require(
            isinstance(answers, list) and len(answers) > 0 and isinstance(answers[0], dict),
            path,
            "'answers' must be a non-empty list",
            qwhere,
        )
        start = answers[0].get("answer_start")
        _require(
            isinstance(start, int) and 0 <= start < len(context),
            path,
            f"answer_start {start!r} is outside the context (length {len(context)})",
            qwhere,
        )
        s = _answer_sentence(breaks, start)
        queries.append(
            Query(
                query_id(language, qid), language, text, qid, candidate_id(language, a, p, s), a, p
            )
        )
    return queries, candidates


def _len(value: Any) -> str:
    return str(len(value)) if isinstance(value, list) else type(value).__name__


def load_lareqa(
    name_or_dir: str,
    languages: str | Iterable[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    allow_download: bool = True,
) -> LareqaDataset:
    """Load XQuAD-R, MLQA-R, or a directory of LAReQA-format ``{lang}.json`` files.

    Args:
        name_or_dir: ``"xquad-r"``, ``"mlqa-r"``, or a directory holding ``{lang}.json``.
        languages: Languages to load (all by default); the pool and the queries are both
            restricted to them.
        data_dir: Local data directory (see :mod:`langmix.data.sources`).
        allow_download: Whether a missing file may be downloaded into the cache.

    Returns:
        The dataset with candidates and queries in language order, then file order.

    Raises:
        ValueError: For an unknown language.
        DataError: For malformed files, or a language sharing no question id with the others.
        DataUnavailableError: If a file is missing and cannot be downloaded.

    Example:
        >>> ds = load_lareqa("xquad-r", "en,de", data_dir="../shared/data")  # doctest: +SKIP
        >>> ds.relevant(ds.queries[0])[1].id  # doctest: +SKIP
        'de/0/0/0'
    """
    name = name_or_dir.lower()
    files: dict[str, Path]
    if name in LAREQA_DATASETS:
        selected = parse_languages(languages, LAREQA_DATASETS[name])
        files = {
            lang: resolve_file(f"{name}/{lang}.json", data_dir, allow_download=allow_download)
            for lang in selected
        }
    else:
        directory = Path(name_or_dir)
        if not directory.is_dir():
            raise ValueError(
                f"unknown dataset {name_or_dir!r}: use one of {', '.join(LAREQA_DATASETS)} "
                "or a directory holding LAReQA-format {lang}.json files"
            )
        found = tuple(sorted(f.stem for f in directory.glob("*.json")))
        if not found:
            raise DataError(directory, "no {lang}.json files found")
        selected = parse_languages(languages, found)
        files = {lang: directory / f"{lang}.json" for lang in selected}
        name = directory.name

    queries: list[Query] = []
    candidates: list[Candidate] = []
    titles: dict[tuple[str, int], str] = {}
    ids_by_language: dict[str, set[str]] = {}
    for lang, path in files.items():
        q, c = read_lareqa_file(path, lang)
        queries.extend(q)
        candidates.extend(c)
        titles.update(((lang, a), t) for a, t in enumerate(read_article_titles(path)) if t)
        ids_by_language[lang] = {x.parallel_id for x in q}
    if len(files) > 1:
        # A language whose question ids match no other language is almost surely a wrong or
        # re-keyed file: its queries would silently get no cross-lingual relevant answers.
        for lang, ids in ids_by_language.items():
            others = set().union(*(v for k, v in ids_by_language.items() if k != lang))
            if ids and not ids & others:
                raise DataError(
                    files[lang],
                    "no question id is shared with the other languages, so the ids do not "
                    "line up across languages",
                    fix="parallel questions must use the same 'id' in every language file",
                )
    return LareqaDataset(name, tuple(files), queries, candidates, titles)


def read_article_titles(path: str | os.PathLike[str]) -> list[str]:
    """The ``title`` of every article of a LAReQA file, by article index ("" where absent).

    Records keep only the article index; the zero-shot checks
    (:mod:`langmix.data.overlap`) compare titles. The file has already been checked by
    :func:`read_lareqa_file`.
    """
    with Path(path).open(encoding="utf-8") as handle:
        raw = json.load(handle)
    titles = [a.get("title", "") for a in raw["data"]]
    return [t if isinstance(t, str) else "" for t in titles]
