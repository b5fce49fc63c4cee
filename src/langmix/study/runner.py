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
    study.log                       every message of every run: cells, training losses,
                                    evaluation results, failures, the libraries' warnings
    cells/{label}/{strategy}[-a{alpha}]-s{seed}/train/   the langmix train run
    cells/{label}/.../{eval set}/per_query.npz, metrics.json
    report.md, plots/               rebuilt from results.jsonl after the grid

Models: each model of the grid is loaded once per invocation (cells run model by model) and kept
in memory while its cells run: the untrained cell evaluates it, every trained cell trains a copy
and evaluates the trained copy in memory (the same numbers as the saved model gives, bit for
bit). ``load_s`` in a row's timing is the time to get the cell's model: loading the base model
for the first cell of a model, copying it for the others. With ``keep_models = false`` trained
models are never written.

Resuming: a (cell, evaluation set) with a row in ``results.jsonl`` is never redone; a cell
whose training was interrupted resumes from its last checkpoint (kept until every evaluation of
the cell is recorded, so a cell killed while evaluating is not trained again); a cut last line
of ``results.jsonl`` (a kill during the write) is dropped on start.

The console shows one display (:class:`~langmix.study.display.StudyDisplay`): cells done
and left, the current cell and its phase, and the time left; messages go to ``study.log``.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import gc
import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langmix.data.errors import DataError
from langmix.outputs import (
    OutputDirError,
    append_jsonl,
    ensure_writable,
    is_disk_error,
    refuse_foreign_run,
    remove_outputs,
    safe_name,
    write_text_atomic,
)
from langmix.study.config import Cell, ModelSpec, StudyConfig, load_study_config
from langmix.study.display import StudyDisplay, cell_kind, estimate_remaining, format_duration
from langmix.study.evaluate import EvaluationSets, card_evaluations

# The results file is langmix.study.results's; re-exported for the runner's callers.
from langmix.study.results import RESULTS, plural, read_results
from langmix.training.reporting import log_evaluation, mlflow_store

FAILURES = "failures.jsonl"
# One line per invocation of the runner: where its wall time went (setup, cells, report).
TIMING = "timing.jsonl"
LOG = "study.log"
STUDY_OUTPUTS = (
    RESULTS,
    FAILURES,
    TIMING,
    LOG,
    "cells",
    "report.md",
    "claims.csv",
    "plots",
    "study.toml",
)

log = logging.getLogger("langmix.study")


class StudyDirError(OutputDirError):
    """The output directory belongs to another study."""


@dataclass
class StudyArguments:
    """Arguments of ``langmix study``."""

    config: str = field(metadata={"help": "Study TOML file (see configs/)."})
    output_dir: str = field(metadata={"help": "Study directory (results.jsonl, report.md)."})
    data_dir: str | None = field(default=None, metadata={"help": "Local data directory."})
    progress: bool = field(
        default=True,
        metadata={"help": "Show the study's display (cells done and left, phase, time left)."},
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace another study's results in output_dir (else refused)."},
    )
    reuse_from: str | None = field(
        default=None,
        metadata={
            "help": "Another study's directory: take its finished cells whose model, training "
            "and evaluation settings equal this study's instead of running them "
            "(langmix.study.reuse)."
        },
    )


@dataclass
class StudySummary:
    cells: int
    finished: int
    skipped: int
    failed: list[str]
    wall_seconds: float
    reused: int = 0


def _repair_results(path: Path) -> list[dict[str, Any]]:
    rows = read_results(path)
    if path.exists():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if text != path.read_text(encoding="utf-8"):
            write_text_atomic(path, text)
    return rows


def _refuse_a_distributed_launch() -> None:
    """Refuse to run as one rank of several (``torchrun``, ``accelerate launch``).

    Every rank would run the whole grid: every row written once per rank.
    """
    world = os.environ.get("WORLD_SIZE", "1")
    if world.isdigit() and int(world) > 1:
        raise ValueError(
            f"langmix study runs as one process, not as one of WORLD_SIZE={world} ranks: "
            "under torchrun or accelerate launch every rank would run the whole grid and write "
            "every row once per rank; run `langmix study` directly"
        )


def _cell_dir(out: Path, cell: Cell) -> Path:
    return out / "cells" / cell.key


class StudyRunner:
    """Runs a :class:`StudyConfig` into an output directory.

    Args:
        config: The study.
        output_dir: The study directory.
        show_progress: Show the study's display (:class:`StudyDisplay`).
        verbose: Let the libraries draw their own bars (encoding batches); silencing their
            logging is the caller's (``langmix study`` does it unless ``--verbose``).
        overwrite: Replace another study's results in ``output_dir``.

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
        verbose: bool = False,
        overwrite: bool = False,
        reuse_from: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config
        self.reuse_from = Path(reuse_from) if reuse_from is not None else None
        self.out = Path(output_dir)
        self.show_progress = show_progress
        self.verbose = verbose
        self.overwrite = overwrite
        self.evals = EvaluationSets(config, self.out, verbose=verbose)
        # (model name, model, parameter counts): one base model at a time, cells run by model.
        self._base: tuple[str, Any, Any] | None = None
        self.display = StudyDisplay(config.name, 0, 0, enabled=False)

    # -- setup -------------------------------------------------------------------------
    def _claim_output_dir(self) -> None:
        ensure_writable(self.out)
        refuse_foreign_run(self.out, "study")
        record = self.out / "study.toml"
        source = self.config.path.read_text(encoding="utf-8") if self.config.path else ""
        if record.exists() and record.read_text(encoding="utf-8") == source:
            return
        # Only work is protected: a study stopped before any cell ran leaves nothing to lose.
        if (self.out / RESULTS).exists() or (self.out / "cells").exists():
            if not self.overwrite:
                raise StudyDirError(
                    f"{self.out} holds a different study ({record} differs from "
                    f"{self.config.path}); use another --output-dir or pass --overwrite"
                )
            remove_outputs(self.out, STUDY_OUTPUTS)  # only what a study writes
        write_text_atomic(record, source)

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
            self.evals.dataset(spec)

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
        _refuse_a_distributed_launch()
        self._preflight()  # reads only: a fixed study file may reuse the directory
        self._claim_output_dir()
        store = contextlib.nullcontext()
        if self.config.report_to == "mlflow":
            store = mlflow_store(self.out, self.config.name)
        with self._study_log(), store:
            return self._run(started)

    @contextlib.contextmanager
    def _study_log(self) -> Iterator[None]:
        """Send this run's messages, and whatever the libraries log, to ``study.log``."""
        handler = logging.FileHandler(self.out / LOG, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root, level = logging.getLogger(), log.level
        root.addHandler(handler)
        log.setLevel(logging.INFO)
        try:
            yield
        finally:
            root.removeHandler(handler)
            log.setLevel(level)
            handler.close()

    def _prepare_student(self, model_name: str) -> None:
        """Distil a student the grid names before its first cell, with the study's data.

        A student is otherwise distilled when a cell first loads it, where the study's
        ``--data-dir`` does not reach (``load_model`` takes no data directory). Each one
        is distilled just before its own first cell, not all before the grid: a study
        stopped among the small models has not paid for the large ones' students.
        """
        from langmix.distillation import distilled_model_dir
        from langmix.models.offline import OFFLINE_PREFIX, parse_offline_name

        if not model_name.startswith(OFFLINE_PREFIX):
            return
        spec = parse_offline_name(model_name)
        if not spec.distilled or spec.layers is None:
            return
        try:
            distilled_model_dir(spec.layers, build=False)
        except FileNotFoundError:
            self._say(f"{spec.name}: distilling the student (first use; cached afterwards)")
            distilled_model_dir(spec.layers, data_dir=self.config.train.get("data_dir"))

    def _run(self, started: float) -> StudySummary:
        results = self.out / RESULTS
        done = {(r["cell"], r["eval_set"]) for r in _repair_results(results)}
        cells = self.config.cells()
        reused = self._reuse(cells, done, results)
        setup_done = time.perf_counter()
        todo = self._unfinished(cells, done)
        skipped = len(cells) - len(todo) - reused
        self.display = StudyDisplay(
            self.config.name, len(cells), skipped, enabled=self.show_progress
        )
        self.evals.phase = self.display.phase
        self._say(
            f"study {self.config.name}: {plural(len(cells), 'cell')} × "
            f"{plural(len(self.config.evals), 'evaluation set')}; {skipped} already done, "
            + (f"{reused} taken from {self.reuse_from}, " if self.reuse_from else "")
            + f"{len(todo)} to run"
        )
        for message in self.evals.exclusion_messages():
            self._say(message)
        failed: list[str] = []
        durations: dict[tuple[str, bool], list[float]] = {}
        try:
            for number, cell in enumerate(todo, start=1):
                if number == 1 or cell.model.name != todo[number - 2].model.name:
                    self._prepare_student(cell.model.name)
                cell_eta, _ = estimate_remaining(durations, [cell])
                rest_eta, exact = estimate_remaining(durations, todo[number - 1 :])
                self.display.start_cell(cell.key, cell_eta, rest_eta - cell_eta, exact=exact)
                log.info("%s: started", cell.key)
                cell_started = time.perf_counter()
                try:
                    self._run_cell(cell, done, results)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # one cell's failure must not cost the others
                    if is_disk_error(exc):
                        raise  # a full or read-only disk fails every cell: stop, nothing lost
                    self._record_failure(cell, exc, failed)
                took = time.perf_counter() - cell_started
                durations.setdefault(cell_kind(cell), []).append(took)
                left = todo[number:]
                eta, exact = estimate_remaining(durations, left)
                self.display.end_cell()
                self._say(
                    f"[{number + skipped}/{len(cells)}] {cell.key} in {took:.0f} s; "
                    f"{len(left)} left, {'about' if exact else 'at least'} "
                    f"{format_duration(eta)}"
                )
        finally:
            self._base = None
            self.display.close()
        cells_done = time.perf_counter()
        self._build_report()
        wall = time.perf_counter() - started
        append_jsonl(
            self.out / TIMING,
            {
                "cells_run": len(todo),
                "setup_s": round(setup_done - started, 3),
                "cells_s": round(cells_done - setup_done, 3),
                "report_s": round(time.perf_counter() - cells_done, 3),
                "wall_s": round(wall, 3),
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
        )
        if failed:
            self._say(
                f"{plural(len(failed), 'cell')} failed (see {self.out / FAILURES}): "
                f"{', '.join(failed)}"
            )
        return StudySummary(len(cells), len(todo) - len(failed), skipped, failed, wall, reused)

    def _unfinished(self, cells: list[Cell], done: set[tuple[str, str]]) -> list[Cell]:
        """The cells that lack a row for at least one evaluation set."""
        return [c for c in cells if any((c.key, e.name) not in done for e in self.config.evals)]

    def _reuse(self, cells: list[Cell], done: set[tuple[str, str]], results: Path) -> int:
        """Take the ``--reuse-from`` study's cells that equal this study's; how many."""
        from langmix.study.reuse import plan_reuse, take_cells

        if self.reuse_from is None:
            return 0
        wanted = self._unfinished(cells, done)
        plan = plan_reuse(
            self.config,
            self.reuse_from,
            wanted,
            lambda dataset: self.evals.split_parts(dataset).digest(),
        )
        for key, reason in plan.differing.items():
            log.info("%s: not taken from %s (%s)", key, self.reuse_from, reason)
        taken = take_cells(plan, self.config, self.out)
        done.update((key, row["eval_set"]) for key, rows in plan.reusable.items() for row in rows)
        log.info(
            "took %d cells from %s (%s); %d of its cells differ and run here",
            taken,
            self.reuse_from,
            plan.source_name,
            len(plan.differing),
        )
        return taken

    def _record_failure(self, cell: Cell, exc: BaseException, failed: list[str]) -> None:
        failed.append(cell.key)
        append_jsonl(
            self.out / FAILURES,
            {
                "cell": cell.key,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
        )
        log.error("%s failed", cell.key, exc_info=exc)
        self.display.write(f"cell {cell.key} FAILED: {type(exc).__name__}: {exc}")

    def _base_model(self, spec: ModelSpec) -> tuple[Any, Any]:
        """The untrained model of ``spec`` and its parameter counts, loaded once per run."""
        from langmix.models import load_model
        from langmix.models.loading import count_parameters

        if self._base is None or self._base[0] != spec.name:
            self._base = None  # the previous model goes before the next one is loaded
            gc.collect()
            self.display.phase("load model")
            model = load_model(spec.name)
            self._base = (spec.name, model, count_parameters(model))
        return self._base[1], self._base[2]

    def _run_cell(self, cell: Cell, done: set[tuple[str, str]], results: Path) -> None:
        cell_dir = _cell_dir(self.out, cell)
        train_summary: dict[str, Any] = {}
        train_wall: float | None = None
        started = time.perf_counter()
        if cell.strategy == "untrained":
            model, counts = self._base_model(cell.model)
            load_s = time.perf_counter() - started
        else:
            model, counts, train_summary, load_s, train_wall = self._trained(cell, cell_dir)
        evaluated_now = []
        for spec in self.config.evals:
            if (cell.key, spec.name) in done:
                continue
            row = self.evals.evaluate(cell, spec, model, cell_dir / safe_name(spec.name))
            evaluated_now.append((spec, row))
            row["timing"].update(
                # Training (steps, validation, saving) is shared by every evaluation row of
                # the cell and repeated on each.
                train_wall_s=round(train_wall, 3) if train_wall is not None else None,
                train_steps_s=train_summary.get("train_seconds"),
                load_s=round(load_s, 3),
            )
            if train_summary:
                # How far training went and why it stopped: the report's validation curves,
                # its steps-used table and its check against the untrained model read these.
                row["training"] = {
                    key: train_summary.get(key)
                    for key in (
                        "steps",
                        "total_steps",
                        "best_step",
                        "stopped_early",
                        "validation_history",
                        "temperature",
                        "learning_rate",
                        "split",
                        "mono_languages_dropped",
                    )
                }
            row.update(
                parameters={"total": counts.total, "non_embedding": counts.non_embedding},
                train_seconds=train_summary.get("train_seconds"),
                examples_per_s=train_summary.get("examples_per_s"),
                finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            )
            append_jsonl(results, row)
            if train_summary:  # the cell's tracker run (mlflow) gets the metrics too
                step = train_summary.get("best_step") or train_summary.get("steps") or 0
                log_evaluation(cell_dir / "train", spec.name, row["metrics"], step)
            done.add((cell.key, spec.name))
            log.info(
                "%s %s: %s",
                cell.key,
                spec.name,
                ", ".join(f"{k} {v:.4f}" for k, v in row["metrics"].items()),
            )
        if cell.strategy != "untrained":
            # Every evaluation of the cell is recorded: the checkpoints (kept so that a cell
            # killed while evaluating need not train again) are done with.
            shutil.rmtree(cell_dir / "train" / "checkpoints", ignore_errors=True)
            if not self.config.keep_models:
                shutil.rmtree(cell_dir / "train" / "model", ignore_errors=True)
            elif len(evaluated_now) == len(self.config.evals):
                # Every evaluation ran now: the kept model's card gets the metrics too.
                card_evaluations(model, cell_dir / "train" / "model", evaluated_now)

    def _trained(self, cell: Cell, cell_dir: Path) -> tuple[Any, Any, dict, float, float]:
        """The cell's trained model: (model, counts, train summary, load s, train s)."""
        from langmix.models import load_model
        from langmix.models.loading import count_parameters
        from langmix.training import Trainer
        from langmix.training.checkpoints import list_checkpoints

        train_dir = cell_dir / "train"
        summary_path = train_dir / "summary.json"
        started = time.perf_counter()
        if summary_path.exists() and (train_dir / "model").is_dir():
            # Trained and saved by an earlier run that stopped before every evaluation.
            self.display.phase("load model")
            model = load_model(str(train_dir / "model"))
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            return model, count_parameters(model), summary, time.perf_counter() - started, 0.0
        if summary_path.exists() and not list_checkpoints(train_dir):
            # Finished once, model deleted (keep_models = false), yet an evaluation is
            # missing: train again; the same seed gives the same model on CPU.
            self._say(f"{cell.key}: model was deleted; training it again")
            shutil.rmtree(train_dir)
        base, counts = self._base_model(cell.model)
        self.display.phase("copy model")
        model = copy.deepcopy(base)
        copied = time.perf_counter()
        args = self.config.train_arguments(cell, train_dir)
        args.resume = (train_dir / "config.json").exists()
        if args.resume:
            self._say(f"{cell.key}: resuming training from its last checkpoint")
        trainer = Trainer(args, progress=self._train_events(cell), base_model=model)
        summary = trainer.train()
        return trainer.model, counts, summary, copied - started, time.perf_counter() - copied

    def _train_events(self, cell: Cell) -> Any:
        """The trainer's progress callback: the display's phase and the study log."""

        def on_event(event: Any) -> None:
            if event.kind == "step":
                self.display.phase(f"train {event.step}/{event.total_steps}")
            elif event.kind == "validate":
                self.display.phase(f"validate at step {event.step}")
            elif event.kind == "save":
                self.display.phase(f"save at step {event.step}")
            elif event.kind == "log":
                details = ", ".join(f"{k} {v}" for k, v in event.record.items() if k != "step")
                log.info("%s: step %d/%d: %s", cell.key, event.step, event.total_steps, details)
            elif event.kind == "message":
                self._say(f"{cell.key}: {event.text}")

        return on_event

    def _build_report(self) -> None:
        from langmix.study.report import build_report

        if read_results(self.out / RESULTS):
            path = build_report(self.out)
            self._say(f"report: {path}")

    def _say(self, message: str) -> None:
        """A message for the console (above the display) and the study log."""
        log.info("%s", message)
        self.display.write(message)


def run_study(
    config: str | os.PathLike[str] | StudyConfig,
    output_dir: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    show_progress: bool = True,
    verbose: bool = False,
    overwrite: bool = False,
    reuse_from: str | os.PathLike[str] | None = None,
) -> StudySummary:
    """Run (or resume) a study; what ``langmix study`` does.

    ``data_dir`` (a local data directory) overrides the config's; it does not change what the
    study computes, so a study may be resumed with another copy of the data. ``show_progress``
    draws the study's display and ``verbose`` lets the libraries draw their bars (see
    :class:`StudyRunner`). ``reuse_from`` names another study's directory whose equal cells are
    taken instead of run (:mod:`langmix.study.reuse`).

    Example:
        >>> summary = run_study("configs/demo.toml", "runs/demo")  # doctest: +SKIP
    """
    if not isinstance(config, StudyConfig):
        config = load_study_config(config)
    if data_dir is not None:
        config.train["data_dir"] = str(data_dir)
    runner = StudyRunner(
        config,
        output_dir,
        show_progress=show_progress,
        verbose=verbose,
        overwrite=overwrite,
        reuse_from=reuse_from,
    )
    return runner.run()
