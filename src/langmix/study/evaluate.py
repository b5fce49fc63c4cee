"""A study's evaluation sets: each loaded once, and each cell's model evaluated on them.

A row of ``results.jsonl`` comes from here: the headline metrics of one (cell, evaluation set),
the per-query file they are computed from, and ``timing`` (encode, metrics, write seconds).
Encoding goes through the embedding cache keyed by the model's fingerprint, so a text is never
encoded twice for the same model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from langmix.data.lareqa import LAREQA_DATASETS, load_lareqa
from langmix.data.overlap import ArticleOverlap
from langmix.data.records import LareqaDataset
from langmix.models.offline import DISTILLED_MODEL
from langmix.outputs import atomic_path, write_json_atomic
from langmix.study.config import Cell, EvalSpec, StudyConfig


class EvaluationSets:
    """The evaluation sets of a study (:class:`~langmix.study.config.EvalSpec`).

    Args:
        config: The study.
        out: The study directory (per-query paths in rows are relative to it).
        verbose: Let sentence-transformers draw its encoding bars.

    ``phase`` is called with a short description of each step (``encode xquad-r``,
    ``metrics xquad-r``), for the study's display.

    Example:
        >>> sets = EvaluationSets(load_study_config("configs/demo.toml"), Path("runs/demo"))  # doctest: +SKIP
        >>> row = sets.evaluate(cell, sets.config.evals[0], model, Path("runs/demo/x"))  # doctest: +SKIP
    """

    def __init__(self, config: StudyConfig, out: Path, *, verbose: bool = False) -> None:
        self.config = config
        self.out = out
        self.verbose = verbose
        self.phase: Callable[[str], None] = lambda text: None
        self._datasets: dict[str, Any] = {}
        #: Per zero-shot evaluation set, the articles left out because training text
        #: shares them (:mod:`langmix.data.overlap`).
        self.excluded: dict[str, list[ArticleOverlap]] = {}

    def dataset(self, spec: EvalSpec) -> Any:
        """The evaluation data of one set, loaded once per study."""
        if spec.name in self._datasets:
            return self._datasets[spec.name]
        data_dir = self.config.train.get("data_dir")
        if spec.dataset == "miracl":
            from langmix.data.miracl import load_miracl

            corpus = Path(spec.corpus)
            data = []
            for lang in spec.languages or ():
                path = corpus / f"{lang}.jsonl" if corpus.is_dir() else corpus
                data.append(load_miracl(lang, "dev", data_dir=data_dir, corpus=path))
        else:
            data = load_lareqa(
                spec.dataset, list(spec.languages) if spec.languages else None, data_dir=data_dir
            )
            if spec.split != "all":
                data = data.restrict(
                    self._part_ids(spec.dataset, spec.split), f"{spec.dataset}:{spec.split}"
                )
            if spec.articles:
                data = data.first_articles(spec.articles)
            if self.is_zero_shot(spec):
                data = self._without_overlap(spec, data)
        self._datasets[spec.name] = data
        return data

    def is_zero_shot(self, spec: EvalSpec) -> bool:
        """Whether ``spec`` is a zero-shot set: LAReQA data that no cell trains on."""
        return spec.dataset != "miracl" and spec.dataset not in self.config.train["train"]

    def _training_sources(self) -> list[tuple[str, dict, dict]]:
        """``(name, language -> titles, language -> texts)`` of every text any model of the
        study learnt from: the training sets in full (every part, which is stricter than the
        train part alone) and the data the distilled students were distilled on."""
        from langmix.data.overlap import dataset_texts
        from langmix.data.pairs import ParallelPairs
        from langmix.training.data import load_training_pairs

        if "sources" in self._datasets:
            return self._datasets["sources"]
        train = self.config.train
        names = list(dict.fromkeys(train["train"]))
        if any(DISTILLED_MODEL in m.name for m in self.config.models):
            from langmix.distillation.arguments import DistillArguments

            names.append(DistillArguments(layers=1, output_dir="-").dataset)
        sources = []
        for name in dict.fromkeys(names):
            if name.lower() in LAREQA_DATASETS:
                data = load_lareqa(name, data_dir=train.get("data_dir"))
                titles: dict[str, list[str]] = {}
                for (language, _), title in data.titles.items():
                    titles.setdefault(language, []).append(title)
                sources.append((name, titles, dataset_texts(data)))
                continue
            pairs: ParallelPairs = load_training_pairs(
                name, train.get("languages"), data_dir=train.get("data_dir")
            )
            texts: dict[str, list[str]] = {}
            for p in pairs.pairs:
                texts.setdefault(p.language, []).extend([p.query, p.positive, *p.negatives])
            sources.append((name, {}, texts))
        self._datasets["sources"] = sources
        return sources

    def _without_overlap(self, spec: EvalSpec, data: LareqaDataset) -> LareqaDataset:
        """``data`` without the articles any training text shares (title or near-duplicate)."""
        from langmix.data.overlap import overlapping_articles

        full = load_lareqa(spec.dataset, data_dir=self.config.train.get("data_dir"))
        present = {q.article for q in data.queries}
        found = [
            o
            # Judged on the article in every language, whatever languages this set keeps.
            for o in overlapping_articles(full, full.article_titles(), self._training_sources())
            if o.article in present
        ]
        self.excluded[spec.name] = found
        if not found:
            return data
        return data.without_articles([o.article for o in found], data.name)

    def exclusion_messages(self) -> list[str]:
        """One line per article left out of a zero-shot set, for the study log."""
        return [
            f"{name}: not zero-shot, left out: {overlap.describe()}"
            for name, overlaps in self.excluded.items()
            for overlap in overlaps
        ]

    def zero_shot_record(self, spec: EvalSpec) -> dict[str, Any] | None:
        """What a zero-shot row records: the sources checked and every excluded article."""
        if not self.is_zero_shot(spec):
            return None
        self.dataset(spec)
        return {
            "checked_against": [name for name, _, _ in self._training_sources()],
            "excluded_articles": [
                {"article": o.article, "title": o.title, "reason": o.reason, "detail": o.detail}
                for o in self.excluded.get(spec.name, [])
            ],
        }

    def split_parts(self, dataset: str) -> Any:
        """The trainer's own three-way split of a training set (same loader, languages,
        fractions and split seed), so ``heldout`` is exactly the groups no cell trained or
        validated on."""
        from langmix.training.data import load_training_pairs

        key = f"parts:{dataset}"
        if key not in self._datasets:
            train = self.config.train
            pairs = load_training_pairs(
                dataset, train.get("languages"), data_dir=train.get("data_dir")
            )
            self._datasets[key] = pairs.partition(
                train.get("validation_fraction", 0.1),
                train.get("test_fraction", 0.0),
                train.get("split_seed", 0),
                version=train.get("split_version", 1),
            )
        return self._datasets[key]

    def _part_ids(self, dataset: str, split: str) -> set[str]:
        parts = self.split_parts(dataset)
        return set((parts.test if split == "heldout" else parts.validation).by_id)

    def evaluate(self, cell: Cell, spec: EvalSpec, model: Any, target: Path) -> dict[str, Any]:
        """Evaluate ``model`` (``cell``'s) on ``spec``, writing into ``target``; the row."""
        from langmix.data.sources import cache_dir
        from langmix.evaluation.encoding import EmbeddingCache, model_fingerprint

        target.mkdir(parents=True, exist_ok=True)
        cache = EmbeddingCache(cache_dir() / "embeddings", model_fingerprint(model))
        started = time.perf_counter()
        row: dict[str, Any] = {
            "study": self.config.name,
            "cell": cell.key,
            "model": cell.model.name,
            "model_label": cell.model.label,
            "strategy": cell.strategy,
            "alpha": cell.alpha if cell.strategy == "hybrid" else None,
            "seed": cell.seed,
            "train_set": None
            if cell.strategy == "untrained"
            else "+".join(self.config.train["train"]),
            "eval_set": spec.name,
        }
        zero_shot = self.zero_shot_record(spec)
        if zero_shot is not None:
            row["zero_shot"] = zero_shot
        if spec.split != "all":
            # Which groups the evaluated part held (hash and count), beside the training
            # split's, so disjointness can be checked from results.jsonl alone.
            row["split"] = {"part": spec.split, **self.split_parts(spec.dataset).digest()}
        if spec.dataset == "miracl":
            row.update(self._miracl(cell, spec, model, target, cache))
        else:
            row.update(self._lareqa(cell, spec, model, target, cache))
        row["eval_seconds"] = round(time.perf_counter() - started, 3)
        row["timing"]["write_s"] = round(
            row["eval_seconds"] - row["timing"]["encode_s"] - row["timing"]["metrics_s"], 3
        )
        return row

    def _lareqa(self, cell, spec, model, target, cache) -> dict[str, Any]:
        from langmix.evaluation.lareqa import (
            TREC_QRELS,
            TREC_RUN,
            encode_lareqa,
            lareqa_trec,
            metrics_document,
            save_per_query,
            score_lareqa,
        )
        from langmix.evaluation.trec import write_qrels, write_run

        dataset: LareqaDataset = self.dataset(spec)
        started = time.perf_counter()
        self.phase(f"encode {spec.name}")
        embeddings = encode_lareqa(
            model,
            dataset,
            batch_size=spec.batch_size,
            query_max_length=spec.query_max_length,
            passage_max_length=spec.passage_max_length,
            with_context=spec.with_context,
            cache=cache,
            show_progress=self.verbose,
        )
        encoded = time.perf_counter()
        self.phase(f"metrics {spec.name}")
        result = score_lareqa(dataset, embeddings)
        scored = time.perf_counter()
        write_json_atomic(
            target / "metrics.json", metrics_document(result, dataset, cell.model.name)
        )
        save_per_query(result, dataset, target / "per_query.npz")
        trec = {}
        if spec.trec_depth:
            run, qrels = lareqa_trec(dataset, embeddings, spec.trec_depth)
            write_run(target / TREC_RUN, run, tag=cell.key)
            write_qrels(target / TREC_QRELS, qrels)
            trec = {"trec_run": str((target / TREC_RUN).relative_to(self.out))}
        return {
            "eval_kind": "lareqa",
            "metrics": result.headline(),
            "per_pair_map": {pair: values["map"] for pair, values in result.per_pair.items()},
            "per_query": str((target / "per_query.npz").relative_to(self.out)),
            **trec,
            "timing": {
                "encode_s": round(encoded - started, 3),
                "metrics_s": round(scored - encoded, 3),
            },
        }

    def _miracl(self, cell, spec, model, target, cache) -> dict[str, Any]:
        from langmix.evaluation.retrieval import run_miracl_eval

        names = {"ndcg_cut_10": "ndcg@10", "recall_100": "recall@100", "map_cut_100": "map@100"}
        query_ids: list[str] = []
        values: dict[str, list[float]] = {n: [] for n in names.values()}
        per_language: dict[str, dict[str, float]] = {}
        timing = {"encode_s": 0.0, "metrics_s": 0.0}
        for data in self.dataset(spec):
            self.phase(f"evaluate {spec.name} ({data.language})")
            document = run_miracl_eval(
                model,
                cell.model.name,
                data,
                target / data.language,
                top_k=spec.top_k,
                batch_size=spec.batch_size,
                query_max_length=spec.query_max_length,
                passage_max_length=spec.passage_max_length,
                cache=cache,
                show_progress=self.verbose,
            )
            timing["encode_s"] += document["timing"]["encode_s"]
            # Search and trec-style scoring together are this set's metrics cost.
            timing["metrics_s"] += document["timing"]["search_s"] + document["timing"]["metrics_s"]
            for qid, scores in document["per_query"].items():
                query_ids.append(f"{data.language}/{qid}")
                for trec_name, name in names.items():
                    values[name].append(scores[trec_name])
            per_language[data.language] = {
                name: float(document["metrics"][name]) for name in names.values()
            }
        path = target / "per_query.npz"
        with atomic_path(path) as tmp:
            np.savez_compressed(
                tmp,
                query_ids=np.asarray(query_ids),
                **{k: np.asarray(v) for k, v in values.items()},
            )
        return {
            "eval_kind": "miracl",
            # Macro over languages, as MIRACL and `langmix eval` report it (pooling queries
            # would weight each language by its number of topics).
            "metrics": {
                name: float(np.mean([m[name] for m in per_language.values()])) for name in values
            },
            "per_language": per_language,
            "per_query": str(path.relative_to(self.out)),
            "timing": {k: round(v, 3) for k, v in timing.items()},
        }


#: How a model card names each kind of evaluation, and its bold metric.
_CARD_KINDS = {
    "lareqa": ("LAReQA retrieval", "map_multi"),
    "miracl": ("MIRACL retrieval (zero-shot)", "ndcg@10"),
}


def card_evaluations(model: Any, directory: Path, evaluated: list[tuple[EvalSpec, dict]]) -> bool:
    """Add a kept cell model's evaluations to its card and rewrite ``directory/README.md``.

    Only a model trained in this process carries its card's training facts (one loaded back
    from disk has an empty card); for any other the card the trainer wrote stays.

    Returns:
        Whether the card was rewritten.
    """
    from langmix.models.model_card import (
        TRAINED_TAG,
        EvaluationRecord,
        add_evaluation,
        write_model_card,
    )

    if TRAINED_TAG not in model.model_card_data.tags:
        return False
    for spec, row in evaluated:
        description, primary = _CARD_KINDS[row["eval_kind"]]
        settings = {
            "languages": list(spec.languages) if spec.languages else "all",
            "split": spec.split,
            "with_context": spec.with_context,
            "query_max_length": spec.query_max_length,
            "passage_max_length": spec.passage_max_length,
        }
        add_evaluation(
            model, EvaluationRecord(spec.name, description, primary, settings), row["metrics"]
        )
    write_model_card(model, directory)
    return True


__all__ = ["EvaluationSets", "card_evaluations"]
