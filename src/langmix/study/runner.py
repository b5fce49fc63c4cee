"""The study runner: train and evaluate every cell of the grid, resumably.

Why by hand: no library runs a grid of (model, batch strategy, seed) fine-tunings with a
shared evaluation protocol and per-query outputs for paired statistics; the pieces it calls
(the trainer, the LAReQA evaluation, the MIRACL evaluation) are langmix's own.

Layout of ``OUTPUT``::

    study.toml                      the configuration this directory belongs to
    results.jsonl                   one row per (cell, evaluation set), appended atomically;
                                    ``timing`` in a row splits its cost (train, load, encode,
                                    metrics, write)
    timing.jsonl                    one line per invocation: setup, cells and report seconds
    failures.jsonl                  cells that failed, with the error (the grid goes on)
    cells/{label}/{strategy}[-a{alpha}]-s{seed}/train/   the langmix train run
    cells/{label}/.../{eval set}/per_query.npz, metrics.json
    report.md, plots/               rebuilt from results.jsonl after the grid

Resuming: a (cell, evaluation set) with a row in ``results.jsonl`` is never redone; a cell
whose training was interrupted resumes from its last checkpoint; a cut last line of
``results.jsonl`` (a kill during the write) is dropped on start.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from langmix.data.errors import DataError
from langmix.data.lareqa import load_lareqa
from langmix.data.records import LareqaDataset
from langmix.outputs import OutputDirError, ensure_writable, is_disk_error, remove_outputs
from langmix.study.config import Cell, EvalSpec, StudyConfig, load_study_config

RESULTS = "results.jsonl"
FAILURES = "failures.jsonl"
# One line per invocation of the runner: where its wall time went (setup, cells, report).
TIMING = "timing.jsonl"
STUDY_OUTPUTS = (RESULTS, FAILURES, TIMING, "cells", "report.md", "plots", "study.toml")


class StudyDirError(OutputDirError):
    """The output directory belongs to another study."""


@dataclass
class StudyArguments:
    """Arguments of ``langmix study``."""

    config: str = field(metadata={"help": "Study TOML file (see configs/)."})
    output_dir: str = field(metadata={"help": "Study directory (results.jsonl, report.md)."})
    data_dir: str | None = field(default=None, metadata={"help": "Local data directory."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace another study's results in output_dir (else refused)."},
    )


@dataclass
class StudySummary:
    cells: int
    finished: int
    skipped: int
    failed: list[str]
    wall_seconds: float


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a ``results.jsonl``; a cut last line (an interrupted write) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise
    return rows


def _append_row(path: Path, row: dict[str, Any]) -> None:
    # One write of one line, flushed and synced: a kill leaves either the whole row or a cut
    # last line, which read_results drops and the next run redoes.
    data = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _repair_results(path: Path) -> list[dict[str, Any]]:
    rows = read_results(path)
    if path.exists():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if text != path.read_text(encoding="utf-8"):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
    return rows


def _kind(cell: Cell) -> tuple[str, bool]:
    return cell.model.label, cell.strategy != "untrained"


def estimate_remaining(
    durations: dict[tuple[str, bool], list[float]], cells: list[Cell]
) -> tuple[float, bool]:
    """Seconds left: each cell at the mean time of finished cells of its model and kind.

    A model not reached yet is costed at the last measured model's time, a lower bound when
    the grid runs from small to large models; the flag says whether every cell was measured.

    Example:
        >>> estimate_remaining({}, [])
        (0.0, True)
    """
    total, exact = 0.0, True
    last: dict[bool, float] = {}
    for (_, trained), values in durations.items():
        last[trained] = float(np.mean(values))
    for cell in cells:
        measured = durations.get(_kind(cell))
        if measured:
            total += float(np.mean(measured))
        else:
            exact = False
            total += last.get(_kind(cell)[1], max(last.values(), default=0.0))
    return total, exact


def _cell_dir(out: Path, cell: Cell) -> Path:
    return out / "cells" / cell.key


def _safe(name: str) -> str:
    return name.replace(":", "-").replace("[", "").replace("]", "").replace(",", "+")


class StudyRunner:
    """Runs a :class:`StudyConfig` into an output directory.

    Example:
        >>> runner = StudyRunner(load_study_config("configs/demo.toml"), "runs/demo")  # doctest: +SKIP
        >>> summary = runner.run()  # doctest: +SKIP
    """

    def __init__(
        self,
        config: StudyConfig,
        output_dir: str | os.PathLike[str],
        *,
        show_progress: bool = True,
        overwrite: bool = False,
    ) -> None:
        self.config = config
        self.out = Path(output_dir)
        self.show_progress = show_progress
        self.overwrite = overwrite
        self._datasets: dict[str, Any] = {}

    # -- setup -------------------------------------------------------------------------
    def _claim_output_dir(self) -> None:
        ensure_writable(self.out)
        copy = self.out / "study.toml"
        source = self.config.path.read_text(encoding="utf-8") if self.config.path else ""
        if copy.exists() and copy.read_text(encoding="utf-8") == source:
            return
        # Only work is protected: a study stopped before any cell ran leaves nothing to lose.
        if (self.out / RESULTS).exists() or (self.out / "cells").exists():
            if not self.overwrite:
                raise StudyDirError(
                    f"{self.out} holds a different study ({copy} differs from "
                    f"{self.config.path}); use another --output-dir or pass --overwrite"
                )
            remove_outputs(self.out, STUDY_OUTPUTS)  # only what a study writes
        tmp = copy.with_name("study.toml.tmp")
        tmp.write_text(source, encoding="utf-8")
        os.replace(tmp, copy)

    def eval_dataset(self, spec: EvalSpec) -> Any:
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
            if spec.split == "heldout":
                data = data.restrict(self._heldout_ids(spec.dataset), f"{spec.dataset}:heldout")
            if spec.articles:
                data = data.first_articles(spec.articles)
        self._datasets[spec.name] = data
        return data

    def _heldout_ids(self, dataset: str) -> set[str]:
        # The trainer's own split (same loader, languages, fraction and split seed), so the
        # held-out questions are exactly the ones no cell trained on.
        from langmix.training.data import load_training_pairs, split_training_sets

        train = self.config.train
        pairs = load_training_pairs(dataset, train.get("languages"), data_dir=train.get("data_dir"))
        _, (held_out,) = split_training_sets(
            [pairs], train.get("validation_fraction", 0.1), train.get("split_seed", 0)
        )
        return set(held_out.by_id)

    def _preflight(self) -> None:
        """Fail in seconds on what would otherwise fail every cell of a model hours later.

        Unknown or unreachable models, fp16/bf16 without a GPU, training languages a set lacks
        and bad evaluation data all stop the study here, before any cell runs.
        """
        from langmix.models import check_model
        from langmix.training.data import load_training_sets
        from langmix.training.trainer import check_mixed_precision

        for model in self.config.models:
            with self._blame(f"[[models]] name = {model.name!r}"):
                check_model(model.name)
        trained = [c for c in self.config.cells() if c.strategy != "untrained"]
        if trained:
            args = self.config.train_arguments(trained[0], self.out / "preflight")
            with self._blame("[train] mixed_precision"):
                check_mixed_precision(args.mixed_precision)
            with self._blame(f"[train] train = {args.train}, languages = {args.languages}"):
                load_training_sets(args)
        for spec in self.config.evals:
            self.eval_dataset(spec)

    @contextlib.contextmanager
    def _blame(self, setting: str) -> Iterator[None]:
        """Name the study file and the setting in an error that would otherwise name neither."""
        from langmix.models import ModelUnavailableError

        try:
            yield
        except DataError:
            raise  # already names its own file and record
        except (ValueError, ModelUnavailableError) as exc:
            where = self.config.path or "the study configuration"
            raise DataError(where, str(exc), record=setting) from exc

    # -- the grid ----------------------------------------------------------------------
    def run(self) -> StudySummary:
        """Run every unfinished (cell, evaluation set); then rebuild the report."""
        started = time.perf_counter()
        self._preflight()  # reads only: a fixed study file may reuse the directory
        self._claim_output_dir()
        results = self.out / RESULTS
        done = {(r["cell"], r["eval_set"]) for r in _repair_results(results)}
        setup_done = time.perf_counter()
        cells = self.config.cells()
        todo = [c for c in cells if any((c.key, e.name) not in done for e in self.config.evals)]
        skipped = len(cells) - len(todo)
        self._say(
            f"study {self.config.name}: {len(cells)} cells × {len(self.config.evals)} evaluation "
            f"sets; {skipped} cells already done, {len(todo)} to run"
        )
        failed: list[str] = []
        durations: dict[tuple[str, bool], list[float]] = {}
        for number, cell in enumerate(todo, start=1):
            cell_started = time.perf_counter()
            try:
                self._run_cell(cell, done, results)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one cell's failure must not cost the others
                if is_disk_error(exc):
                    raise  # a full or read-only disk fails every cell: stop, nothing is lost
                self._record_failure(cell, exc, failed)
            took = time.perf_counter() - cell_started
            durations.setdefault(_kind(cell), []).append(took)
            left = todo[number:]
            eta, exact = estimate_remaining(durations, left)
            self._say(
                f"[{number + skipped}/{len(cells)}] {cell.key} in {took:.0f} s; "
                f"{len(left)} left, {'about' if exact else 'at least'} {eta / 60:.1f} min"
            )
        cells_done = time.perf_counter()
        self._build_report()
        wall = time.perf_counter() - started
        _append_row(
            self.out / TIMING,
            {
                "cells_run": len(todo),
                "setup_s": round(setup_done - started, 3),
                "cells_s": round(cells_done - setup_done, 3),
                "report_s": round(time.perf_counter() - cells_done, 3),
                "wall_s": round(wall, 3),
                "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            },
        )
        if failed:
            self._say(
                f"{len(failed)} cell(s) failed (see {self.out / FAILURES}): {', '.join(failed)}"
            )
        return StudySummary(len(cells), len(todo) - len(failed), skipped, failed, wall)

    def _record_failure(self, cell: Cell, exc: BaseException, failed: list[str]) -> None:
        failed.append(cell.key)
        _append_row(
            self.out / FAILURES,
            {
                "cell": cell.key,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
                "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            },
        )
        self._say(f"cell {cell.key} FAILED: {type(exc).__name__}: {exc}")

    def _run_cell(self, cell: Cell, done: set[tuple[str, str]], results: Path) -> None:
        from langmix.models import load_model
        from langmix.models.loading import count_parameters

        cell_dir = _cell_dir(self.out, cell)
        train_summary: dict[str, Any] = {}
        started = time.perf_counter()
        if cell.strategy != "untrained":
            train_summary = self._train(cell, cell_dir / "train")
        trained = time.perf_counter()
        if cell.strategy == "untrained":
            model = load_model(cell.model.name)
        else:
            model = load_model(str(cell_dir / "train" / "model"))
        counts = count_parameters(model)
        loaded = time.perf_counter()
        for spec in self.config.evals:
            if (cell.key, spec.name) in done:
                continue
            row = self._evaluate(cell, spec, model, cell_dir / _safe(spec.name))
            row["timing"].update(
                # Training (model set-up, steps, validation, saving) is shared by every
                # evaluation row of the cell and repeated on each.
                train_wall_s=round(trained - started, 3) if train_summary else None,
                train_steps_s=train_summary.get("train_seconds"),
                load_s=round(loaded - trained, 3),
            )
            row.update(
                parameters={"total": counts.total, "non_embedding": counts.non_embedding},
                train_seconds=train_summary.get("train_seconds"),
                examples_per_s=train_summary.get("examples_per_s"),
                finished_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            )
            _append_row(results, row)
            done.add((cell.key, spec.name))
        if cell.strategy != "untrained" and not self.config.keep_models:
            # Every evaluation of the cell is recorded; a trained model is ~400 MB on disk.
            shutil.rmtree(cell_dir / "train" / "model", ignore_errors=True)

    def _train(self, cell: Cell, train_dir: Path) -> dict[str, Any]:
        from langmix.training import Trainer

        summary_path = train_dir / "summary.json"
        if summary_path.exists():
            if (train_dir / "model").is_dir():
                return json.loads(summary_path.read_text(encoding="utf-8"))
            # Finished once, model since deleted (keep_models = false), yet an evaluation is
            # missing: train again; the same seed gives the same model on CPU.
            self._say(f"{cell.key}: model was deleted; training it again")
            shutil.rmtree(train_dir)
        args = self.config.train_arguments(cell, train_dir)
        args.resume = (train_dir / "config.json").exists()
        if args.resume:
            self._say(f"{cell.key}: resuming training from its last checkpoint")
        summary = Trainer(args, show_progress=self.show_progress).train()
        # Optimizer states are only needed to resume; the trained model is in train/model.
        shutil.rmtree(train_dir / "checkpoints", ignore_errors=True)
        return summary

    def _evaluate(self, cell: Cell, spec: EvalSpec, model: Any, target: Path) -> dict[str, Any]:
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
        if spec.dataset == "miracl":
            row.update(self._evaluate_miracl(cell, spec, model, target, cache))
        else:
            row.update(self._evaluate_lareqa(cell, spec, model, target, cache))
        row["eval_seconds"] = round(time.perf_counter() - started, 3)
        row["timing"]["write_s"] = round(
            row["eval_seconds"] - row["timing"]["encode_s"] - row["timing"]["metrics_s"], 3
        )
        return row

    def _evaluate_lareqa(self, cell, spec, model, target, cache) -> dict[str, Any]:
        from langmix.evaluation.lareqa import (
            encode_lareqa,
            metrics_document,
            save_per_query,
            score_lareqa,
            write_json,
        )

        dataset: LareqaDataset = self.eval_dataset(spec)
        started = time.perf_counter()
        embeddings = encode_lareqa(
            model,
            dataset,
            batch_size=spec.batch_size,
            query_max_length=spec.query_max_length,
            passage_max_length=spec.passage_max_length,
            with_context=spec.with_context,
            cache=cache,
            show_progress=self.show_progress,
        )
        encoded = time.perf_counter()
        result = score_lareqa(dataset, embeddings)
        scored = time.perf_counter()
        write_json(target / "metrics.json", metrics_document(result, dataset, cell.model.name))
        save_per_query(result, dataset, target / "per_query.npz")
        return {
            "eval_kind": "lareqa",
            "metrics": {
                "map_mono": result.map["mono"],
                "map_cross": result.map["cross"],
                "map_multi": result.map["multi"],
                "r1_mono": result.recall["mono@1"],
                "r1_cross": result.recall["cross@1"],
                "r10_multi": result.recall["multi@10"],
                "rank_distance": result.rank_distance,
            },
            "per_pair_map": {pair: values["map"] for pair, values in result.per_pair.items()},
            "per_query": str((target / "per_query.npz").relative_to(self.out)),
            "timing": {
                "encode_s": round(encoded - started, 3),
                "metrics_s": round(scored - encoded, 3),
            },
        }

    def _evaluate_miracl(self, cell, spec, model, target, cache) -> dict[str, Any]:
        from langmix.evaluation.retrieval import run_miracl_eval

        names = {"ndcg_cut_10": "ndcg@10", "recall_100": "recall@100", "map_cut_100": "map@100"}
        query_ids: list[str] = []
        values: dict[str, list[float]] = {n: [] for n in names.values()}
        timing = {"encode_s": 0.0, "metrics_s": 0.0}
        for data in self.eval_dataset(spec):
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
                show_progress=self.show_progress,
            )
            timing["encode_s"] += document["timing"]["encode_s"]
            # Search and trec-style scoring together are this set's metrics cost.
            timing["metrics_s"] += document["timing"]["search_s"] + document["timing"]["metrics_s"]
            for qid, scores in document["per_query"].items():
                query_ids.append(f"{data.language}/{qid}")
                for trec_name, name in names.items():
                    values[name].append(scores[trec_name])
        path = target / "per_query.npz"
        tmp = path.with_name("per_query.tmp.npz")
        np.savez_compressed(
            tmp, query_ids=np.asarray(query_ids), **{k: np.asarray(v) for k, v in values.items()}
        )
        os.replace(tmp, path)
        return {
            "eval_kind": "miracl",
            "metrics": {name: float(np.mean(v)) for name, v in values.items()},
            "per_query": str(path.relative_to(self.out)),
            "timing": {k: round(v, 3) for k, v in timing.items()},
        }

    def _build_report(self) -> None:
        from langmix.study.report import build_report

        if read_results(self.out / RESULTS):
            path = build_report(self.out)
            self._say(f"report: {path}")

    def _say(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)


def run_study(
    config: str | os.PathLike[str] | StudyConfig,
    output_dir: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    show_progress: bool = True,
    overwrite: bool = False,
) -> StudySummary:
    """Run (or resume) a study; what ``langmix study`` does.

    ``data_dir`` (a local data directory) overrides the config's; it does not change what the
    study computes, so a study may be resumed with another copy of the data.

    Example:
        >>> summary = run_study("configs/demo.toml", "runs/demo")  # doctest: +SKIP
    """
    if not isinstance(config, StudyConfig):
        config = load_study_config(config)
    if data_dir is not None:
        config.train["data_dir"] = str(data_dir)
    runner = StudyRunner(config, output_dir, show_progress=show_progress, overwrite=overwrite)
    return runner.run()
