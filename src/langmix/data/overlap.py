"""Zero-shot checks: which evaluation articles share an article or near-duplicate text with
training text.

A zero-shot evaluation set is only zero-shot if no model saw any of its text. XQuAD-R and
MLQA-R both come from Wikipedia, and a few articles are in both (XQuAD-R's ``Prime_number``
is MLQA-R's ``Prime number``), so a split by dataset is not enough. Two checks, each of
which flags an evaluation article:

* **Title**: its title equals a training article's title after normalisation
  (:func:`normalise_title`: Unicode NFKC, case folded, underscores as spaces, whitespace
  collapsed).
* **Near-duplicate sentence**: one of its sentences (a candidate or a question) has at least
  ``threshold`` of its shingles in the training text of the same language. Shingles are
  8-word windows, or 12-character windows in scripts written without spaces (Chinese,
  Japanese, Thai), over text normalised the same way (NFKC, case folded, punctuation
  dropped); a sentence too short for one shingle is not evidence either way.

No library offers this for LAReQA's layout (datasketch's MinHash estimates the same
overlap, but exact shingle sets over a few hundred thousand sentences are cheap and leave
nothing to chance), hence this module.

Example:
    >>> normalise_title("Prime_number") == normalise_title("Prime number")
    True
    >>> near = NearDuplicateIndex({"en": ["A prime number is a natural number greater than 1 "
    ...                                    "that is not a product of two smaller numbers."]})
    >>> near.share("en", "A prime number is a natural number greater than 1 that is not a "
    ...                  "product of two smaller natural numbers.") >= 0.5
    True
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from langmix.data.records import LareqaDataset

__all__ = [
    "ArticleOverlap",
    "NearDuplicateIndex",
    "dataset_texts",
    "normalise_title",
    "overlapping_articles",
]

#: Words per shingle, and characters per shingle where words are not space-separated.
WORDS, CHARACTERS = 8, 12
#: Share of a sentence's shingles found in training text that makes it a near-duplicate.
THRESHOLD = 0.25
#: Languages written without spaces between words: shingles of characters.
_UNSPACED = {"zh", "ja", "th", "lo", "km", "my"}


def normalise_title(title: str) -> str:
    """A Wikipedia title in one canonical form: NFKC, case folded, ``_`` as space.

    Example:
        >>> normalise_title("Harvard_University"), normalise_title("  harvard   University ")
        ('harvard university', 'harvard university')
    """
    text = unicodedata.normalize("NFKC", title).replace("_", " ").casefold()
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    """Whitespace-separated words without punctuation (not ``\\w+``: that would split
    Devanagari and other scripts at their combining vowel signs)."""
    words = (
        "".join(ch for ch in word if not unicodedata.category(ch).startswith("P"))
        for word in unicodedata.normalize("NFKC", text).casefold().split()
    )
    return [w for w in words if w]


def _shingles(language: str, text: str) -> set[str]:
    """The text's shingles; none for a text shorter than one shingle (a short sentence such
    as a citation marker or "What year did he die?" is no evidence of a shared article)."""
    if language in _UNSPACED:
        chars = "".join(_tokens(text))
        return {chars[i : i + CHARACTERS] for i in range(len(chars) - CHARACTERS + 1)}
    words = _tokens(text)
    return {" ".join(words[i : i + WORDS]) for i in range(len(words) - WORDS + 1)}


class NearDuplicateIndex:
    """The shingles of training text, per language, to test evaluation sentences against.

    Args:
        texts: ``language -> texts`` of the training side.
    """

    def __init__(self, texts: Mapping[str, Iterable[str]]) -> None:
        self._shingles: dict[str, set[str]] = {}
        for language, items in texts.items():
            bucket = self._shingles.setdefault(language, set())
            for text in items:
                bucket |= _shingles(language, text)

    def share(self, language: str, text: str) -> float:
        """Share of ``text``'s shingles that occur in the training text of ``language``."""
        own = _shingles(language, text)
        seen = self._shingles.get(language)
        if not own or not seen:
            return 0.0
        return len(own & seen) / len(own)


@dataclass(frozen=True)
class ArticleOverlap:
    """Why one evaluation article is not zero-shot.

    Attributes:
        article: The article's index (parallel across XQuAD-R's languages).
        title: Its title.
        reason: ``title`` (a training article has the same normalised title) or
            ``near-duplicate`` (a sentence shares at least the threshold of its shingles).
        detail: The training title, or the sentence, its language and its share.
    """

    article: int
    title: str
    reason: str
    detail: str

    def describe(self) -> str:
        """One line for logs and reports.

        Example:
            >>> ArticleOverlap(40, "Prime_number", "title", "mlqa-r en 'Prime number'").describe()
            "article 40 (Prime_number): title, mlqa-r en 'Prime number'"
        """
        return f"article {self.article} ({self.title}): {self.reason}, {self.detail}"


def dataset_texts(dataset: LareqaDataset) -> dict[str, list[str]]:
    """``language -> texts`` (questions and sentences) of a LAReQA set, for the index."""
    out: dict[str, list[str]] = {}
    for query in dataset.queries:
        out.setdefault(query.language, []).append(query.text)
    for cand in dataset.candidates:
        out.setdefault(cand.language, []).append(cand.text)
    return out


def overlapping_articles(
    evaluation: LareqaDataset,
    evaluation_titles: Mapping[int, str],
    training: Iterable[tuple[str, Mapping[str, Iterable[str]], Mapping[str, Iterable[str]]]],
    *,
    threshold: float = THRESHOLD,
) -> list[ArticleOverlap]:
    """The evaluation articles that share a title or a near-duplicate sentence with training.

    Args:
        evaluation: The evaluation set (e.g. all of XQuAD-R).
        evaluation_titles: Article index -> title of the evaluation set.
        training: Per training source, ``(name, language -> titles, language -> texts)``;
            a source without titles (a user's JSONL pairs) gives an empty mapping.
        threshold: Share of a sentence's shingles that makes it a near-duplicate.

    Returns:
        One :class:`ArticleOverlap` per flagged article (the first reason found), by index.

    Example:
        >>> overlapping_articles(xquad, titles, [("mlqa-r", mlqa_titles, mlqa_texts)])  # doctest: +SKIP
        [ArticleOverlap(article=31, title='Harvard_University', reason='title', ...), ...]
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    found: dict[int, ArticleOverlap] = {}
    sources = list(training)
    for name, titles, _ in sources:
        by_title: dict[str, tuple[str, str]] = {}
        for language, items in titles.items():
            for title in items:
                by_title.setdefault(normalise_title(title), (language, title))
        for article, title in sorted(evaluation_titles.items()):
            hit = by_title.get(normalise_title(title))
            if hit is not None and article not in found:
                found[article] = ArticleOverlap(
                    article, title, "title", f"{name} {hit[0]} {hit[1]!r}"
                )
    for name, _, texts in sources:
        index = NearDuplicateIndex(texts)
        records = [(q.article, q.language, q.text) for q in evaluation.queries]
        records += [(c.article, c.language, c.text) for c in evaluation.candidates]
        for article, language, text in records:
            if article in found:
                continue
            share = index.share(language, text)
            if share >= threshold:
                found[article] = ArticleOverlap(
                    article,
                    evaluation_titles.get(article, ""),
                    "near-duplicate",
                    f"{name} {language} {share:.0%} of the shingles of {text[:60]!r}",
                )
    return [found[a] for a in sorted(found)]
