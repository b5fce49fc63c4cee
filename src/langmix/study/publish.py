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
from langmix.outputs import atomic_path, write_text_atomic
from langmix.study.comparisons import TESTED
from langmix.study.results import RESULTS, load_rows
from langmix.study.statistics import _ARRAYS, PER_QUESTION, question_level

__all__ = ["KEPT_ARRAYS", "publish_study", "reduce_per_query"]

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


def publish_study(study_dir: str | os.PathLike[str], target_dir: str | os.PathLike[str]) -> Path:
    """Copy a study's rows, description and reduced per-query arrays, then build its report.

    ``target_dir`` is replaced: files a previous publication left there are removed, so the
    published data are exactly this study's.

    Args:
        study_dir: The study directory (``langmix study --output-dir``).
        target_dir: Where to publish, e.g. ``docs/results/cpu-full``.

    Returns:
        The path of the built ``report.md``.

    Raises:
        DataError: If ``results.jsonl`` is missing, or a row's per-query file is.
    """
    from langmix.study.report import build_report

    source, target = Path(study_dir), Path(target_dir)
    loaded = load_rows(source / RESULTS)
    missing = [r["per_query"] for r in loaded.rows if not (source / r["per_query"]).is_file()]
    if missing:
        raise DataError(
            source / missing[0],
            f"per-query file missing ({len(missing)} in all); the report's statistics need it",
        )
    staging = target.with_name(f".{target.name}.publishing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    lines = [json.dumps(row, ensure_ascii=False) for row in loaded.rows]
    write_text_atomic(staging / RESULTS, "\n".join(lines) + "\n")
    if (source / "study.toml").is_file():
        shutil.copyfile(source / "study.toml", staging / "study.toml")
    for row in loaded.rows:
        out = staging / row["per_query"]
        out.parent.mkdir(parents=True, exist_ok=True)
        reduce_per_query(source / row["per_query"], out)
    build_report(staging)
    # Swap the finished publication in whole: a reader never sees half of one.
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target / "report.md"
