"""Every tested claim of a report as data: ``claims.csv``, beside ``report.md``.

The report's tables render the same :class:`~langmix.study.comparisons.Test` objects that
become these rows, so a claim reads the same in both (the CSV at full precision). One row per
tested claim: where it was tested, what it compares, the estimate with its unadjusted and
Holm-level intervals, the standard error and its seed and question parts, the degrees of
freedom, the p-values, the Holm family, the MDE, the equivalence test, a slope's lack of fit,
and the verdict. ``pandas.read_csv`` reads it as it is.

Example:
    >>> import pandas as pd  # doctest: +SKIP
    >>> claims = pd.read_csv("docs/results/cpu-distilled/claims.csv")  # doctest: +SKIP
    >>> claims.query("family == 'primary'")[["size", "baseline", "estimate", "verdict"]]
    ... # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from langmix.outputs import write_text_atomic
from langmix.study.comparisons import Comparisons, Test, verdict

__all__ = ["CLAIMS", "COLUMNS", "claim_rows", "write_claims"]

CLAIMS = "claims.csv"

#: The columns of ``claims.csv``, in order.
COLUMNS = (
    "eval_set",
    "metric",
    "kind",
    "size",
    "sizes",
    "arm",
    "baseline",
    "estimate",
    "ci_low",
    "ci_high",
    "holm_low",
    "holm_high",
    "se",
    "se_seed",
    "se_question",
    "df",
    "p",
    "p_holm",
    "family",
    "family_size",
    "mde",
    "margin",
    "p_equivalence",
    "p_equivalence_holm",
    "lack_of_fit_chi2",
    "lack_of_fit_df",
    "lack_of_fit_p",
    "recipe_note",
    "verdict",
)


def _row(test: Test) -> dict[str, Any]:
    e = test.estimate
    fit = test.lack_of_fit
    return {
        "eval_set": test.eval_set,
        "metric": test.metric,
        "kind": test.kind,
        "size": test.size.label if test.size is not None else "",
        "sizes": " ".join(s.label for s in test.sizes),
        "arm": test.arm.label,
        # A synergy margin is hybrid against the interpolation of mono and cross.
        "baseline": test.against,
        "estimate": e.value,
        "ci_low": e.ci_low,
        "ci_high": e.ci_high,
        "holm_low": test.holm_low,
        "holm_high": test.holm_high,
        "se": e.se,
        "se_seed": e.se_seed,
        "se_question": e.se_question,
        "df": e.df,
        "p": e.p_value,
        "p_holm": test.p_holm,
        "family": test.family,
        "family_size": test.family_size,
        "mde": test.mde,
        "margin": test.margin,
        "p_equivalence": test.p_equivalence,
        "p_equivalence_holm": test.p_equivalence_holm,
        "lack_of_fit_chi2": fit.chi2 if fit is not None else "",
        "lack_of_fit_df": fit.df if fit is not None else "",
        "lack_of_fit_p": fit.p_value if fit is not None else "",
        "recipe_note": test.recipe_note,
        "verdict": verdict(test),
    }


def claim_rows(comparisons: Comparisons) -> list[dict[str, Any]]:
    """One dict per tested claim, keyed by :data:`COLUMNS`, in the report's order.

    Example:
        >>> claim_rows(comparisons)[0]["verdict"]  # doctest: +SKIP
        'better'
    """
    return [_row(test) for test in comparisons.tests]


def write_claims(directory: str | os.PathLike[str], comparisons: Comparisons) -> Path:
    """Write ``claims.csv`` into ``directory`` (atomically) and return its path."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(claim_rows(comparisons))
    path = Path(directory) / CLAIMS
    write_text_atomic(path, buffer.getvalue())
    return path
