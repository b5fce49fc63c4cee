"""What a student is distilled on: the training part's text, and nothing anyone evaluates on.

The text is the training part of MLQA-R under the study's own split (questions, every
sentence of the training articles, and their paragraphs), so the later study's validation
and test parts and all of XQuAD-R stay unseen by the students, exactly as by the cuts.
:func:`check_unseen` checks it on the text itself rather than trusting the split: it drops
(and counts) any text that equals an evaluation question, sentence or paragraph (MLQA-R
shares a few short sentences across articles, such as citation markers), and records the
evaluation-only articles whose normalised title a training article shares (MLQA-R's
"Prime number" is XQuAD-R's ``Prime_number``). Those are not refused here: the fine-tuning
data hold them too, so a study leaves them out of its zero-shot sets
(:mod:`langmix.data.overlap`, which also finds near-duplicate sentences).

Example:
    >>> texts = distillation_texts(DistillArguments(layers=4, output_dir="o"))  # doctest: +SKIP
    >>> sorted(texts.by_language)  # doctest: +SKIP
    ['ar', 'de', 'en', 'es', 'hi', 'vi', 'zh']
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from langmix.data.lareqa import load_lareqa, read_article_titles
from langmix.data.pairs import ParallelPairs
from langmix.data.records import LareqaDataset
from langmix.data.sources import resolve_file
from langmix.distillation.arguments import EVALUATION_ONLY, DistillArguments

#: Prompt kinds: questions are encoded as queries, sentences and paragraphs as passages, as
#: the student will be used.
QUERY, PASSAGE = "query", "passage"


@dataclass
class DistillationTexts:
    """The distillation text of each language, as (prompt kind, text), in data order.

    Attributes:
        by_language: ``language -> [(kind, text), ...]``, unique within a language.
        dropped: Texts left out because they equal evaluation text, per language.
        titles: Article titles the text comes from.
        shared_titles: Evaluation-only article titles that a training article shares after
            normalisation (:func:`langmix.data.overlap.normalise_title`).
    """

    by_language: dict[str, list[tuple[str, str]]]
    dropped: dict[str, int] = field(default_factory=dict)
    titles: set[str] = field(default_factory=set)
    shared_titles: list[str] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        return sorted(self.by_language)

    def counts(self) -> dict[str, int]:
        return {lang: len(self.by_language[lang]) for lang in self.languages}

    def digest(self) -> str:
        """SHA-256 (16 hex digits) of every text in order: the key of the teacher's targets."""
        h = hashlib.sha256()
        for lang in self.languages:
            for kind, text in self.by_language[lang]:
                h.update(f"{lang}\t{kind}\t{text}\n".encode())
        return h.hexdigest()[:16]


def _texts_of(dataset: LareqaDataset) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, dict[tuple[str, str], None]] = {lang: {} for lang in dataset.languages}
    for query in dataset.queries:
        out[query.language][(QUERY, query.text)] = None
    for cand in dataset.candidates:
        out[cand.language][(PASSAGE, cand.text)] = None
        out[cand.language][(PASSAGE, cand.context)] = None
    return {lang: [t for t in texts if t[1].strip()] for lang, texts in out.items()}


def _titles(dataset: LareqaDataset, name: str, data_dir: str | None) -> set[str]:
    titles: set[str] = set()
    for lang in dataset.languages:
        by_index = read_article_titles(resolve_file(f"{name}/{lang}.json", data_dir))
        titles.update(by_index[c.article] for c in dataset.candidates if c.language == lang)
    titles.discard("")
    return titles


def distillation_texts(args: DistillArguments) -> DistillationTexts:
    """The training part's text under ``args``' split, checked against evaluation text.

    Raises:
        ValueError: For evaluation-only data (XQuAD-R).
    """
    args.validate()
    name = args.dataset.lower()
    dataset = load_lareqa(name, args.languages, data_dir=args.data_dir)
    pairs = ParallelPairs.from_lareqa(dataset, with_context=False)
    parts = pairs.partition(args.validation_fraction, args.test_fraction, args.split_seed)
    train_ids = {p.parallel_id for p in parts.train.pairs}
    held_ids = {p.parallel_id for p in parts.validation.pairs} | {
        p.parallel_id for p in parts.test.pairs
    }
    train = dataset.restrict(train_ids, f"{name}:train")
    texts = DistillationTexts(_texts_of(train), titles=_titles(train, name, args.data_dir))
    evaluation = [load_lareqa(other, data_dir=args.data_dir) for other in EVALUATION_ONLY]
    if held_ids:
        evaluation.append(dataset.restrict(held_ids, f"{name}:validation+test"))
    check_unseen(texts, evaluation, args.data_dir)
    if args.max_texts_per_language is not None:
        for lang, items in texts.by_language.items():
            texts.by_language[lang] = items[: args.max_texts_per_language]
    return texts


def check_unseen(
    texts: DistillationTexts, evaluation: list[LareqaDataset], data_dir: str | None = None
) -> None:
    """Drop every text equal to an evaluation text; record titles shared with evaluation data.

    Args:
        texts: Distillation text; changed in place (``dropped`` counts what was removed,
            ``shared_titles`` lists the evaluation-only titles a training article shares).
        evaluation: Every dataset a student will be evaluated on (XQuAD-R, and the held-out
            parts of the set distilled on).
        data_dir: Where the raw files are, for the titles.
    """
    from langmix.data.overlap import normalise_title

    seen: set[str] = set()
    own = {normalise_title(t) for t in texts.titles}
    for dataset in evaluation:
        for lang_texts in _texts_of(dataset).values():
            seen.update(text for _, text in lang_texts)
        if dataset.name in EVALUATION_ONLY:
            titles = _titles(dataset, dataset.name, data_dir)
            shared = sorted(t for t in titles if normalise_title(t) in own)
            texts.shared_titles = sorted(set(texts.shared_titles) | set(shared))
    for lang, items in texts.by_language.items():
        kept = [item for item in items if item[1] not in seen]
        texts.dropped[lang] = len(items) - len(kept)
        texts.by_language[lang] = kept


__all__ = ["PASSAGE", "QUERY", "DistillationTexts", "check_unseen", "distillation_texts"]
