"""Publish a study: the reduced results a report needs, copied where they can be committed.

A study directory holds gigabytes of training state and a few megabytes of results. What a
reader needs to check the published report, and to rebuild it byte for byte with ``langmix
report``, is much less: ``results.jsonl`` (every row, with its metrics, training record and
split hashes), ``study.toml`` (the description) and, per row, the per-query arrays of the
metrics the report *tests* (the two-level bootstrap resamples them) with the ids that define
its clusters and groups. :func:`publish_study` copies exactly that and builds the report
there, so ``docs/results/NAME/`` is both the published report and the data behind it.

Example:
    >>> publish_study("runs/cpu-full", "docs/results/cpu-full")  # doctest: +SKIP
    PosixPath('docs/results/cpu-full/report.md')
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np

from langmix.data.errors import DataError
from langmix.outputs import RUN_RECORD, OutputDirError, atomic_path, write_text_atomic
from langmix.study.claims import CLAIMS
from langmix.study.comparisons import TESTED
from langmix.study.results import REPORT, RESULTS, load_rows
from langmix.study.statistics import _ARRAYS, PER_QUESTION, question_level

__all__ = ["KEPT_ARRAYS", "PUBLICATION_OUTPUTS", "publish_study", "reduce_per_query"]

#: Arrays that define the units of a metric (clusters, groups, rows), always kept.
_IDENTITY = ("languages", "parallel_ids", "article_groups", "query_lang", "query_ids", PER_QUESTION)
#: Every array a published report reads: the identities and the tested metrics' values.
KEPT_ARRAYS = frozenset(
    _IDENTITY + tuple(_ARRAYS[m] for metrics in TESTED.values() for m in metrics)
)


def reduce_per_query(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> int:
    """Copy the arrays of :data:`KEPT_ARRAYS` from one per-query file, scores as float32
    (compressed, atomic); a fully parallel LAReQA file becomes one value per question
    (:func:`~langmix.study.statistics.question_level`). Reducing a reduced file changes
    nothing.

    Returns:
        The size of the written file in bytes.

    Example:
        >>> reduce_per_query("runs/x/cells/L2/mono-s0/xquad-r/per_query.npz", "out.npz")  # doctest: +SKIP
        148212
    """
    with np.load(source) as npz:
        kept = {name: npz[name] for name in npz.files if name in KEPT_ARRAYS}
    if "parallel_ids" in kept:
        # LAReQA: clusters come from parallel_ids alone, and the string ids cost more than
        # the scores; integer codes (in sorted id order, the same in every file of an
        # evaluation set) define the same clusters. MIRACL keeps its query ids.
        kept.pop("query_ids", None)
        for name in ("parallel_ids", "article_groups"):
            if name in kept:
                codes = np.unique(kept[name], return_inverse=True)[1]
                kept[name] = codes.astype(np.int32)
    kept = question_level(kept) or kept
    for name, array in kept.items():
        # float32 halves the published size; the rows keep the exact headlines, and what
        # float32 rounding (~1e-7 relative) moves is far below the report's 4 decimals.
        if array.dtype == np.float64:
            kept[name] = array.astype(np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **kept)
    with atomic_path(target) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return len(buffer.getvalue())


#: What a publication holds: publish writes, and replaces, these and nothing else.
PUBLICATION_OUTPUTS = (RESULTS, "study.toml", REPORT, CLAIMS, "plots", "cells")
#: Files only a study that ran (not a publication) has: a target holding one is the run.
_RUN_ONLY = ("study.log", "timing.jsonl", "failures.jsonl")


def _check_target(source: Path, target: Path, study_name: str, overwrite: bool) -> None:
    """Refuse a target that publishing would damage (see :func:`publish_study`)."""
    src, dst = source.resolve(), target.resolve()
    if src == dst or src in dst.parents or dst in src.parents:
        raise OutputDirError(
            f"{target} is {'the study itself' if src == dst else 'inside the study or holds it'}"
            f" ({source}); publishing there would replace the study's own files (its logs, "
            "training state and full per-query arrays): publish into another folder"
        )
    if not dst.is_dir() or not any(dst.iterdir()):
        return
    if (dst / RUN_RECORD).exists() or any((dst / name).exists() for name in _RUN_ONLY):
        what = (dst / RUN_RECORD).name if (dst / RUN_RECORD).exists() else "a study's logs"
        raise OutputDirError(
            f"{target} holds a langmix run ({what}), not a publication; it is never "
            "replaced: publish into another folder"
        )
    others = sorted(p.name for p in dst.iterdir() if p.name not in PUBLICATION_OUTPUTS)
    names: set[str] = set()
    if (dst / RESULTS).is_file():
        try:
            names = {str(r.get("study")) for r in load_rows(dst / RESULTS).rows}
        except DataError:
            names = {"(unreadable results)"}
    earlier = not others and names <= {study_name}
    if not earlier and not overwrite:
        problem = (
            f"files a publication does not hold ({', '.join(others[:5])})"
            if others
            else f"a publication of another study ({', '.join(sorted(names))})"
        )
        raise OutputDirError(
            f"{target} holds {problem}, so it is not an earlier publication of {study_name}; "
            "publish into another folder, or pass --overwrite to replace its publication "
            "files (results.jsonl, study.toml, report.md, claims.csv, plots/, cells/; nothing "
            "else is touched)"
        )


def publish_study(
    study_dir: str | os.PathLike[str],
    target_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Copy a study's rows, description and reduced per-query arrays, then build its report.

    The target may be new, empty, or an earlier publication of the same study, whose
    publication files are then replaced; anything else (another study's publication, a
    folder with other files) is refused unless ``overwrite``, which replaces only the
    publication files (:data:`PUBLICATION_OUTPUTS`) and keeps everything else. The study
    itself, a folder inside it, and a langmix run (a training, evaluation or study run) are
    refused always.

    Args:
        study_dir: The study directory (``langmix study --output-dir``).
        target_dir: Where to publish, e.g. ``docs/results/cpu-full``.
        overwrite: Replace the publication files of a target that is not an earlier
            publication of this study.

    Returns:
        The path of the built ``report.md``.

    Raises:
        DataError: If ``results.jsonl`` is missing, or a row's per-query file is.
        OutputDirError: For a target refused as above (nothing is written).
    """
    from langmix.study.report import build_report

    source, target = Path(study_dir), Path(target_dir)
    loaded = load_rows(source / RESULTS)
    study_names = sorted({str(r.get("study")) for r in loaded.rows})
    _check_target(source, target, study_names[0] if study_names else "", overwrite)
    missing = [r["per_query"] for r in loaded.rows if not (source / r["per_query"]).is_file()]
    if missing:
        raise DataError(
            source / missing[0],
            f"per-query file missing ({len(missing)} in all); the report's statistics need it",
        )
    staging = target.with_name(f".{target.name}.publishing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # TREC runs stay in the run directory (large, and not what the report reads): their rows
    # must not name files the publication lacks.
    rows = [{k: v for k, v in row.items() if k != "trec_run"} for row in loaded.rows]
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    write_text_atomic(staging / RESULTS, "\n".join(lines) + "\n")
    if (source / "study.toml").is_file():
        shutil.copyfile(source / "study.toml", staging / "study.toml")
    for row in loaded.rows:
        out = staging / row["per_query"]
        out.parent.mkdir(parents=True, exist_ok=True)
        reduce_per_query(source / row["per_query"], out)
    build_report(staging)
    # Swap the publication files in, each whole; whatever else the target holds stays.
    target.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    old.mkdir()
    for name in PUBLICATION_OUTPUTS:
        if (target / name).exists():
            (target / name).rename(old / name)
        if (staging / name).exists():
            (staging / name).rename(target / name)
    shutil.rmtree(old)
    shutil.rmtree(staging)
    return target / REPORT
