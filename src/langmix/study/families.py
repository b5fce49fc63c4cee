"""Do two size families give the same answer? Every claim of one study against another's.

Offline, the size axis can be built two ways from one 12-layer model: layer cuts and
distilled students (:mod:`langmix.distillation`). A finding about batch strategies that holds
in both families is about the strategies; one that flips is about how the family was made.
The same pairing serves any two studies that test the same claims, e.g. a budget-sensitivity
run (``configs/cpu-budget.toml``: one size at three times the steps) against the study it
checks: a claim that differs is one the budget changes.
:func:`compare_families` pairs every claim two studies both test (an effect, a synergy
margin or a slope, on the same evaluation set, metric, arm and size label) and estimates
the difference *this − other* with the same two-level bootstrap as the claims themselves,
drawn jointly over both studies: one draw of the question clusters serves every cell of
both (they answered the same questions), and each cell's training seeds are resampled on
their own, except where both studies hold the very same runs (a cell taken with
``--reuse-from``, or a deterministic rerun: every per-seed value equal): such a cell is one
cell of the draw, so it cancels from a difference exactly instead of adding its seed noise
twice. Differences are Holm-corrected as one family.

Written here because no library compares bootstrap contrasts across two experiments; the
resampling itself is :mod:`langmix.study.inference`'s.

Example:
    >>> ours, theirs = load_study("runs/cpu-distilled"), load_study("runs/cpu-full")  # doctest: +SKIP
    >>> found = compare_families(ours, theirs)  # doctest: +SKIP
    >>> found.agreeing, len(found.rows)  # doctest: +SKIP
    (31, 36)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from langmix.study.comparisons import (
    CONFIDENCE,
    Comparisons,
    Test,
    compute_comparisons,
    is_test_set,
    verdict,
)
from langmix.study.inference import Estimate, draw_headlines, estimate, holm, slope_weights
from langmix.study.results import Arm, Study
from langmix.study.statistics import units

__all__ = [
    "FamilyComparison",
    "FamilyDifference",
    "answer_sentence",
    "claim_text",
    "compare_families",
    "section_families",
]

_Key = tuple[str, str, Arm]  # (family, model, arm)


@dataclass(frozen=True)
class FamilyDifference:
    """One claim tested in both studies, and how far apart the two answers are.

    Attributes:
        ours: The claim in this study (Holm-adjusted within this study).
        theirs: The same claim in the other study (Holm-adjusted within that study).
        difference: ours − theirs, with its interval and unadjusted p-value.
        p_holm: Holm-adjusted p-value of the difference over all paired claims.
    """

    ours: Test
    theirs: Test
    difference: Estimate
    p_holm: float = math.nan

    @property
    def agree(self) -> bool:
        """Whether both studies reach the same verdict (better, worse or n.s.)."""
        return verdict(self.ours) == verdict(self.theirs)

    @property
    def differs(self) -> bool:
        """Whether the two estimates differ after Holm correction."""
        return self.p_holm < 1.0 - CONFIDENCE


@dataclass
class FamilyComparison:
    """Every claim both studies test, paired.

    Attributes:
        ours: Name of this study.
        theirs: Name of the other study.
        rows: The paired claims, in this study's order.
        notes: Claims or evaluation sets that could not be paired, and why.
    """

    ours: str
    theirs: str
    rows: list[FamilyDifference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def agreeing(self) -> int:
        return sum(row.agree for row in self.rows)

    @property
    def differing(self) -> list[FamilyDifference]:
        return [row for row in self.rows if row.differs]


def _test_key(test: Test) -> tuple[Any, ...]:
    size = test.size.label if test.size is not None else None
    sizes = tuple(s.label for s in test.sizes)
    return test.kind, test.eval_set, test.metric, test.arm, test.against, size, sizes


def _cells(study: Study, family: str, eval_set: str, metric: str, keys: np.ndarray | None):
    """Per-seed unit values of every cell of ``study`` on ``eval_set``, keyed by family."""
    cells: dict[_Key, np.ndarray] = {}
    layout = None
    for size in study.sizes:
        for arm in study.arms_for(eval_set):
            rows = study.cell_rows(eval_set, size, arm)
            per_query = [study.per_query(row) for row in rows]
            if not rows or any(p is None for p in per_query):
                continue
            per_seed = [units(p, metric) for p in per_query]  # type: ignore[arg-type]
            if keys is None:
                keys, layout = per_seed[0].keys, per_seed[0]
            if any(not np.array_equal(u.keys, keys) for u in per_seed):
                return None, None
            cells[(family, size.model, arm)] = np.stack([u.values for u in per_seed])
    return cells, layout


def _same_runs(ours: dict[_Key, np.ndarray], theirs: dict[_Key, np.ndarray]) -> dict[_Key, _Key]:
    """Our cells that are their cells (same model and arm, every per-seed value equal)."""
    same = {}
    for (_, model, arm), values in ours.items():
        other = theirs.get(("theirs", model, arm))
        if other is not None and np.array_equal(values, other):
            same[("ours", model, arm)] = ("theirs", model, arm)
    return same


def _weights(study: Study, family: str, test: Test) -> dict[_Key, float]:
    """The cell weights of ``test`` (an effect, a synergy margin or a slope) in ``study``."""

    def contrast(model: str) -> dict[_Key, float]:
        hybrid = (family, model, test.arm)
        if test.against == "interpolation":
            alpha = test.arm.alpha
            assert alpha is not None
            return {
                hybrid: 1.0,
                (family, model, Arm("mono")): -alpha,
                (family, model, Arm("cross")): -(1.0 - alpha),
            }
        return {hybrid: 1.0, (family, model, Arm(test.against)): -1.0}

    if test.size is not None:
        return contrast(test.size.model)
    x = [math.log2(max(size.non_embedding, 1)) for size in test.sizes]
    combined: dict[_Key, float] = {}
    for coefficient, size in zip(slope_weights(x), test.sizes, strict=True):
        for key, w in contrast(size.model).items():
            combined[key] = combined.get(key, 0.0) + coefficient * w
    return combined


def compare_families(
    ours: Study,
    theirs: Study,
    *,
    ours_comparisons: Comparisons | None = None,
    theirs_comparisons: Comparisons | None = None,
    n_resamples: int = 4000,
    seed: int = 0,
) -> FamilyComparison:
    """Pair every claim both studies test and estimate each difference, ours − theirs.

    Args:
        ours: This study.
        theirs: The study to compare with (the same evaluation sets, other models).
        ours_comparisons: ``compute_comparisons(ours)`` if already computed.
        theirs_comparisons: ``compute_comparisons(theirs)`` if already computed.
        n_resamples: Bootstrap replicates of the joint draw.
        seed: Seed of the joint draw.

    Returns:
        The :class:`FamilyComparison`; claims only one study tests are left out, and
        evaluation sets whose questions differ are named in ``notes``.
    """
    mine = ours_comparisons or compute_comparisons(ours, n_resamples=n_resamples, seed=seed)
    other = theirs_comparisons or compute_comparisons(theirs, n_resamples=n_resamples, seed=seed)
    by_key = {_test_key(t): t for t in other.tests}
    out = FamilyComparison(ours.name, theirs.name)
    pending: dict[tuple[str, str], list[tuple[Test, Test]]] = {}
    for test in mine.tests:
        match = by_key.get(_test_key(test))
        if match is not None:
            pending.setdefault((test.eval_set, test.metric), []).append((test, match))
    rows: list[FamilyDifference] = []
    for (eval_set, metric), pairs in pending.items():
        if not is_test_set(eval_set):
            continue
        cells_a, layout = _cells(ours, "ours", eval_set, metric, None)
        cells_b, _ = _cells(
            theirs, "theirs", eval_set, metric, None if layout is None else layout.keys
        )
        if not cells_a or not cells_b or layout is None:
            out.notes.append(
                f"{eval_set}, {metric}: the two studies' per-query files hold different "
                "queries (or are missing), so their claims are not compared"
            )
            continue
        same = _same_runs(cells_a, cells_b)
        for key in same:
            del cells_a[key]
        draws = draw_headlines(layout, {**cells_a, **cells_b}, n_resamples=n_resamples, seed=seed)
        for a, b in pairs:
            weights: dict[_Key, float] = {}
            for key, w in _weights(ours, "ours", a).items():
                shared = same.get(key, key)
                weights[shared] = weights.get(shared, 0.0) + w
            for key, w in _weights(theirs, "theirs", b).items():
                weights[key] = weights.get(key, 0.0) - w
            rows.append(FamilyDifference(a, b, estimate(draws, weights, confidence=CONFIDENCE)))
    adjusted = holm([row.difference.p_value for row in rows])
    out.rows = [replace(row, p_holm=float(p)) for row, p in zip(rows, adjusted, strict=True)]
    return out


# --------------------------------------------------------------------------- the report


def claim_text(test: Test) -> str:
    """A claim in words: ``xquad-r[:12], mAP multi: hybrid α=0.5 − mono at L4``.

    Example:
        >>> from langmix.study.inference import Estimate
        >>> from langmix.study.results import Size
        >>> e = Estimate(0.0, 0.0, 0.0, 0.0, 1.0, 9.0, 0.0, 0.0, 0.95, 10)
        >>> claim_text(Test("slope", "x", "map_multi", Arm("hybrid", 0.5), "mono", None, e))
        'x, mAP multi: slope of hybrid α=0.5 − mono'
    """
    from langmix.study.results import METRIC_NAMES

    what = (
        f"synergy margin of {test.arm.label}"
        if test.against == "interpolation"
        else f"{test.arm.label} − {test.against}"
    )
    where = f"{what} at {test.size.label}" if test.size is not None else f"slope of {what}"
    return f"{test.eval_set}, {METRIC_NAMES.get(test.metric, test.metric)}: {where}"


def answer_sentence(found: FamilyComparison) -> str:
    """The Answer's sentence on the other family (counts only; details in the section)."""
    if not found.rows:
        return f"No claim of this study is also tested by {found.theirs}."
    differing = found.differing
    return (
        f"**Against {found.theirs}** (the sibling study this one names): the verdicts agree on "
        f"{found.agreeing} of the {len(found.rows)} claims both studies test; "
        + (
            f"{len(differing)} difference(s) between the two studies survive Holm correction "
            f"({'; '.join(claim_text(r.ours) for r in differing[:3])}"
            + ("; …" if len(differing) > 3 else "")
            + ")."
            if differing
            else "no difference between the two studies survives Holm correction."
        )
        + f" See 'Agreement with {found.theirs}'."
    )


def section_families(found: FamilyComparison | None, missing: str = "") -> list[str]:
    """``## Agreement with {other}``: every paired claim that disagrees or differs, then the
    headline metric's claims in full.

    Args:
        found: The comparison, or ``None`` when the other study is not there.
        missing: What was looked for, when ``found`` is ``None``.
    """
    from langmix.study.comparisons import diff_text

    if found is None:
        return ["## Agreement with a sibling study", "", missing, ""]
    lines = [
        f"## Agreement with {found.theirs}",
        "",
        f"Every claim this study ({found.ours}) and {found.theirs} both test, paired by "
        "evaluation set, metric, arm, baseline and size label. 'difference' is this study's "
        f"estimate minus {found.theirs}'s, with a {CONFIDENCE:.0%} interval from one two-level "
        "bootstrap over both studies (shared question clusters, each cell's seeds on their "
        "own); 'differs' needs a Holm-adjusted p below "
        f"{1 - CONFIDENCE:.2f} over all {len(found.rows)} paired claims. Verdicts are each "
        "study's own (Holm within each study).",
        "",
        f"Verdicts agree on {found.agreeing} of {len(found.rows)} claims.",
        "",
    ]
    lines += [f"- {note}" for note in found.notes]
    if found.notes:
        lines.append("")
    header = ["claim", found.ours, found.theirs, "difference", "differs"]

    def row(r: FamilyDifference) -> str:
        cells = [
            claim_text(r.ours),
            f"{diff_text(r.ours.estimate, r.ours.metric)} {verdict(r.ours)}",
            f"{diff_text(r.theirs.estimate, r.theirs.metric)} {verdict(r.theirs)}",
            diff_text(r.difference, r.ours.metric),
            "**yes**" if r.differs else "no",
        ]
        return "| " + " | ".join(cells) + " |"

    table_head = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notable = [r for r in found.rows if not r.agree or r.differs]
    lines += ["### Claims whose verdicts disagree or whose estimates differ", ""]
    lines += [*table_head, *map(row, notable), ""] if notable else ["None.", ""]
    headline = [r for r in found.rows if r.ours.metric in ("map_multi", "ndcg@10")]
    if headline:
        lines += ["### The headline metric, every claim", ""]
        lines += [*table_head, *map(row, headline), ""]
    return lines
