"""Take another study's finished cells whose settings equal this study's (``--reuse-from``).

Two studies often share cells: ``cpu-distilled`` trains the same 12-layer cells as
``cpu-full`` (same model, data, settings and seeds), and training is deterministic on CPU, so
running them again would only repeat an hour of work. A cell is taken only when everything
that decides its numbers is equal in both studies; otherwise it runs here as usual:

- the model name, and for a trained cell every training argument except those that name
  where things go (output directory, run name, trackers, data directory, saving the model);
- every evaluation set of this study: the source has an equal :class:`EvalSpec` of that name
  and a row for the cell, and for a ``split`` set the same split (the group hashes the row
  records equal this study's).

A taken row keeps its numbers and timing, gets this study's name and records where it came
from (``reused_from``); its evaluation directory (per-query file, metrics) and training logs
are copied. Why by hand: results reuse across experiment grids is specific to langmix's study
layout; no library knows when two cells are the same experiment.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langmix.data.errors import DataError
from langmix.outputs import append_jsonl
from langmix.study.config import Cell, EvalSpec, StudyConfig, load_study_config

# Training arguments that say where outputs go or who watches, not what is computed.
_NOT_COMPARED = ("output_dir", "run_name", "report_to", "data_dir", "save_model")


@dataclass
class ReusePlan:
    """Which cells of this study a source study can supply.

    Attributes:
        source: The source study's directory.
        source_name: Its study name.
        reusable: Cell keys to take, each with the source rows (one per evaluation set).
        differing: Cell keys the source has but may not supply, each with the first reason.
    """

    source: Path
    source_name: str
    reusable: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    differing: dict[str, str] = field(default_factory=dict)


def _train_settings(config: StudyConfig, cell: Cell) -> dict[str, Any]:
    args = dataclasses.asdict(config.train_arguments(cell, "."))
    return {k: v for k, v in args.items() if k not in _NOT_COMPARED}


def _first_difference(here: dict[str, Any], there: dict[str, Any]) -> str | None:
    for key in sorted(set(here) | set(there)):
        if here.get(key) != there.get(key):
            return f"{key}: {here.get(key)!r} here, {there.get(key)!r} in the source"
    return None


def _eval_problem(
    spec: EvalSpec,
    theirs: EvalSpec | None,
    row: dict[str, Any] | None,
    source: Path,
    split_digest: Any,
) -> str | None:
    """Why the source's row for one evaluation set may not be taken (None: it may)."""
    # The TREC run's depth changes which files a cell writes, not its metrics.
    if theirs is None or dataclasses.replace(theirs, trec_depth=spec.trec_depth) != spec:
        return f"evaluation set {spec.name}: its settings differ in the source"
    if row is None:
        return f"evaluation set {spec.name}: no row in the source"
    if not (source / row["per_query"]).is_file():
        return f"evaluation set {spec.name}: {row['per_query']} is missing"
    if spec.split != "all":
        recorded = {k: v for k, v in row.get("split", {}).items() if k != "part"}
        if recorded != split_digest(spec.dataset):
            return f"evaluation set {spec.name}: another split of {spec.dataset}"
    return None


def plan_reuse(
    config: StudyConfig,
    source: str | Path,
    wanted: list[Cell],
    split_digest: Any,
) -> ReusePlan:
    """Decide which of ``wanted`` the study in ``source`` can supply.

    Args:
        config: This study.
        source: A study directory (``study.toml`` and ``results.jsonl``), a run or a
            publication.
        wanted: The cells this study still lacks.
        split_digest: ``dataset -> digest`` of this study's training split
            (:meth:`ParallelPairs.partition(...).digest`), for the ``split`` sets.

    Raises:
        DataError: ``source`` is not a study directory.

    Example:
        >>> plan = plan_reuse(config, "runs/cpu-full", config.cells(), digest)  # doctest: +SKIP
        >>> sorted(plan.reusable)[:1]  # doctest: +SKIP
        ['L12/cross-s0']
    """
    from langmix.study.results import RESULTS, read_results

    source = Path(source)
    record = source / "study.toml"
    if not record.is_file() or not (source / RESULTS).is_file():
        raise DataError(
            source, f"--reuse-from needs a study directory with study.toml and {RESULTS}"
        )
    other = load_study_config(record)
    plan = ReusePlan(source=source, source_name=other.name)
    their_cells = {c.key: c for c in other.cells()}
    their_evals = {e.name: e for e in other.evals}
    rows = {(r["cell"], r["eval_set"]): r for r in read_results(source / RESULTS)}
    for cell in wanted:
        theirs = their_cells.get(cell.key)
        if theirs is None:
            continue
        reason = None
        if cell.model.name != theirs.model.name:
            reason = f"model: {cell.model.name!r} here, {theirs.model.name!r} in the source"
        elif cell.strategy != "untrained":
            reason = _first_difference(
                _train_settings(config, cell), _train_settings(other, theirs)
            )
        taken: list[dict[str, Any]] = []
        for spec in config.evals:
            if reason:
                break
            row = rows.get((cell.key, spec.name))
            reason = _eval_problem(spec, their_evals.get(spec.name), row, source, split_digest)
            taken.append(row)
        if reason:
            plan.differing[cell.key] = reason
        else:
            plan.reusable[cell.key] = taken
    return plan


def take_cells(plan: ReusePlan, config: StudyConfig, out: Path) -> int:
    """Copy the reusable cells into ``out``: files first, then the rows; the cell count.

    A kill between the two leaves files and no row: the cell is taken again on resume.
    """
    from langmix.study.results import RESULTS

    for key, rows in plan.reusable.items():
        for row in rows:
            evaluated = Path(row["per_query"]).parent
            shutil.copytree(plan.source / evaluated, out / evaluated, dirs_exist_ok=True)
        logs = plan.source / "cells" / key / "train"
        if logs.is_dir():
            shutil.copytree(
                logs,
                out / "cells" / key / "train",
                ignore=shutil.ignore_patterns("checkpoints", "model"),
                dirs_exist_ok=True,
            )
        for row in rows:
            taken = {**row, "study": config.name}
            taken["reused_from"] = {"study": plan.source_name, "dir": str(plan.source)}
            append_jsonl(out / RESULTS, taken)
    return len(plan.reusable)


__all__ = ["ReusePlan", "plan_reuse", "take_cells"]
