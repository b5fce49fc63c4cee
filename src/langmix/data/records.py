"""Typed records for LAReQA-style retrieval data, and the id contract.

Ids are a contract that every later stage relies on (embeddings files, per-query scores,
statistics that pair the same query across models):

* candidate id ``{lang}/{article_index}/{paragraph_index}/{sentence_index}`` (0-based, file order);
* query id ``{lang}/{question_id}``; the question id alone is the *parallel id* shared by
  the translations of one question.

A candidate is identified by position, never by text: a few sentence strings repeat within
one language.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


def candidate_id(language: str, article: int, paragraph: int, sentence: int) -> str:
    """Build a candidate id following the id contract.

    Example:
        >>> candidate_id("de", 0, 3, 1)
        'de/0/3/1'
    """
    return f"{language}/{article}/{paragraph}/{sentence}"


def query_id(language: str, question_id: str) -> str:
    """Build a query id following the id contract.

    Example:
        >>> query_id("de", "56beb4343aeaaa14008c925b")
        'de/56beb4343aeaaa14008c925b'
    """
    return f"{language}/{question_id}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate answer sentence, with its paragraph as context.

    Example:
        >>> c = Candidate("en/0/0/1", "en", "It rained.", "Sun. It rained.", 0, 0, 1)
        >>> c.passage(with_context=False)
        'It rained.'
    """

    id: str
    language: str
    text: str
    context: str
    article: int
    paragraph: int
    sentence: int

    def passage(self, with_context: bool = True) -> str:
        """The text a retriever encodes for this candidate.

        With context, the sentence comes first so that truncation to the model's maximum
        length cuts the paragraph, never the sentence being judged (the LAReQA setup encodes
        the answer sentence together with its paragraph).
        """
        if not with_context:
            return self.text
        return f"{self.text}\n{self.context}"


@dataclass(frozen=True, slots=True)
class Query:
    """One question in one language.

    Attributes:
        id: ``{lang}/{question_id}``.
        parallel_id: The question id, shared by all translations of the question.
        answer_id: Candidate id of the sentence holding the answer in the query's language.
    """

    id: str
    language: str
    text: str
    parallel_id: str
    answer_id: str
    article: int
    paragraph: int


@dataclass
class LareqaDataset:
    """A multilingual answer-retrieval pool in the LAReQA layout.

    The relevant set of a query is the answer sentence in *every* language of the dataset
    that has the query's parallel id, so XQuAD-R queries have 11 relevant candidates and
    MLQA-R queries 2 to 4.

    Example:
        >>> from langmix.data import load_lareqa
        >>> ds = load_lareqa("xquad-r", languages=["en", "de"])  # doctest: +SKIP
        >>> len(ds.queries), len(ds.candidates)  # doctest: +SKIP
        (2380, 2456)
    """

    name: str
    languages: tuple[str, ...]
    queries: list[Query]
    candidates: list[Candidate]
    #: ``(language, article index) -> title``, where the files name their articles.
    titles: dict[tuple[str, int], str] = field(default_factory=dict)
    _cand_index: dict[str, int] = field(init=False, repr=False)
    _answers: dict[str, dict[str, int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._cand_index = {c.id: i for i, c in enumerate(self.candidates)}
        answers: dict[str, dict[str, int]] = {}
        for query in self.queries:
            answers.setdefault(query.parallel_id, {})[query.language] = self._cand_index[
                query.answer_id
            ]
        self._answers = answers

    def candidate_index(self, cand_id: str) -> int:
        """Position of a candidate in :attr:`candidates`."""
        return self._cand_index[cand_id]

    def relevant(self, query: Query) -> list[Candidate]:
        """The query's relevant set: its answer sentence in every language that has it."""
        by_lang = self._answers[query.parallel_id]
        return [self.candidates[by_lang[lang]] for lang in self.languages if lang in by_lang]

    def select(self, languages: Iterable[str]) -> LareqaDataset:
        """Restrict queries *and* the candidate pool to some languages.

        Raises:
            ValueError: If a language is not in the dataset.
        """
        wanted = tuple(languages)
        unknown = [lang for lang in wanted if lang not in self.languages]
        if unknown:
            raise ValueError(
                f"{self.name} has no language(s) {', '.join(unknown)}; "
                f"available: {', '.join(self.languages)}"
            )
        keep = set(wanted)
        ordered = tuple(lang for lang in self.languages if lang in keep)
        return LareqaDataset(
            self.name,
            ordered,
            [q for q in self.queries if q.language in keep],
            [c for c in self.candidates if c.language in keep],
            {k: v for k, v in self.titles.items() if k[0] in keep},
        )

    def restrict(self, parallel_ids: Iterable[str], name: str | None = None) -> LareqaDataset:
        """Keep the questions with these parallel ids, and the articles they come from.

        The pool keeps every sentence of every paragraph of each (language, article) that
        holds a kept question, so the protocol (all sentences are candidates) holds within
        the subset; used for held-out splits and for cheaper subsets of whole articles.

        Raises:
            ValueError: If no question has one of the ids.
        """
        wanted = set(parallel_ids)
        queries = [q for q in self.queries if q.parallel_id in wanted]
        if not queries:
            raise ValueError(f"{self.name}: none of the {len(wanted)} parallel ids is present")
        articles = {(q.language, q.article) for q in queries}
        candidates = [c for c in self.candidates if (c.language, c.article) in articles]
        languages = tuple(
            lang for lang in self.languages if any(q.language == lang for q in queries)
        )
        titles = {k: v for k, v in self.titles.items() if k in articles}
        return LareqaDataset(name or self.name, languages, queries, candidates, titles)

    def without_articles(self, articles: Iterable[int], name: str | None = None) -> LareqaDataset:
        """The questions and pool of every article but these (by index, in every language).

        Example:
            >>> ds.without_articles([31, 40]).titles.get(("en", 40))  # doctest: +SKIP
        """
        drop = set(articles)
        ids = {q.parallel_id for q in self.queries if q.article not in drop}
        return self.restrict(ids, name)

    def article_titles(self) -> dict[int, str]:
        """Article index -> title, from the first language that names it."""
        out: dict[int, str] = {}
        for (_, article), title in sorted(self.titles.items(), key=lambda kv: kv[0][1]):
            out.setdefault(article, title)
        return out

    def first_articles(self, count: int) -> LareqaDataset:
        """The questions of the first ``count`` articles (by index) in any language."""
        if count < 1:
            raise ValueError(f"article count must be positive, got {count}")
        ids = {q.parallel_id for q in self.queries if q.article < count}
        return self.restrict(ids, f"{self.name}[:{count} articles]")

    def relevance_arrays(
        self,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Integer arrays for the metric kernels.

        Returns:
            ``(query_lang, cand_lang, rel_indptr, rel_indices)``: language codes index
            :attr:`languages`; the relevant candidates of query ``i`` are
            ``rel_indices[rel_indptr[i]:rel_indptr[i + 1]]``, in :attr:`languages` order.
        """
        code = {lang: i for i, lang in enumerate(self.languages)}
        query_lang = np.fromiter((code[q.language] for q in self.queries), np.int64)
        cand_lang = np.fromiter((code[c.language] for c in self.candidates), np.int64)
        indptr = np.zeros(len(self.queries) + 1, dtype=np.int64)
        indices: list[int] = []
        for i, query in enumerate(self.queries):
            by_lang = self._answers[query.parallel_id]
            indices.extend(by_lang[lang] for lang in self.languages if lang in by_lang)
            indptr[i + 1] = len(indices)
        return query_lang, cand_lang, indptr, np.asarray(indices, dtype=np.int64)

    def query_texts(self) -> list[str]:
        """Question texts, in :attr:`queries` order."""
        return [q.text for q in self.queries]

    def passage_texts(self, with_context: bool = True) -> list[str]:
        """Candidate texts to encode, in :attr:`candidates` order."""
        return [c.passage(with_context) for c in self.candidates]

    def summary(self) -> dict[str, dict[str, int]]:
        """Per-language counts of queries and candidates."""
        counts = {lang: {"queries": 0, "candidates": 0} for lang in self.languages}
        for q in self.queries:
            counts[q.language]["queries"] += 1
        for c in self.candidates:
            counts[c.language]["candidates"] += 1
        return counts


def languages_of(records: Sequence[Query] | Sequence[Candidate]) -> list[str]:
    """Distinct languages of some records, in first-seen order."""
    return list(dict.fromkeys(r.language for r in records))
