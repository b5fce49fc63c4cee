"""The report's generated answer: does hybrid help, and how does that change with size.

The "Answer" section opens ``report.md``. Its sentences are built from the tests of
:mod:`langmix.study.comparisons` alone (effects per size, the per-doubling slopes, the
synergy margins), so no number or verdict in it is typed by hand, followed by what the
intervals cover and the caveats that apply to the study.

Example:
    >>> from langmix.study.comparisons import compute_comparisons
    >>> from langmix.study.results import load_study
    >>> study = load_study("runs/scaling")  # doctest: +SKIP
    >>> section_answer(study, compute_comparisons(study))[:2]  # doctest: +SKIP
    ['## Answer', '']
"""

from __future__ import annotations

from langmix.study.comparisons import (
    BASELINE_NAMES,
    BASELINES,
    CONFIDENCE,
    PRIMARY_BASELINES,
    TESTED,
    Comparisons,
    Test,
    diff_text,
    higher_is_better,
    is_test_set,
    verdict,
    verdict_text,
)
from langmix.study.families import FamilyComparison, answer_sentence
from langmix.study.results import (
    DISTILLED_MODEL,
    METRIC_NAMES,
    OFFLINE_MODEL,
    Study,
    digits,
    missing_cells,
)

__all__ = ["coverage_sentence", "section_answer"]

_WORDS = {
    "better": "helps",
    "worse": "hurts",
    "equivalent": "is equivalent within the margin",
    "n.s.": "is not significantly different (not evidence of no difference)",
    "no line": "has no line",
}


def _trend(slope: Test, what: str) -> str:
    word = verdict(slope)
    if word in ("no line", "n.s.", "equivalent"):
        return verdict_text(slope)
    if verdict(slope) == "better":
        return f"{what} moves in hybrid's favour as the model grows"
    return f"{what} moves against hybrid as the model grows"


def _word(test: Test) -> str:
    """The verdict in the contrast's own words (a margin is synergy or interference)."""
    word = verdict(test)
    if word in ("n.s.", "equivalent", "no line"):
        return verdict_text(test)
    if test.kind == "synergy":
        return {"better": "synergy", "worse": "interference"}.get(word, word)
    return word


def _holm_text(test: Test) -> str:
    """The estimate with the interval at the level Holm tested it (agrees with the verdict)."""
    d = digits(test.metric) + 1
    return f"{test.estimate.value:+.{d}f} [{test.holm_low:+.{d}f}, {test.holm_high:+.{d}f}]"


def _verdicts_at(tests: list[Test]) -> str:
    """``helps at L4, L8; is not significantly different (...) at L2`` from one contrast's tests per size."""
    groups: dict[str, list[str]] = {}
    for t in tests:
        assert t.size is not None
        groups.setdefault(_WORDS[verdict(t)], []).append(t.size.label)
    return "; ".join(f"{word} at {', '.join(labels)}" for word, labels in groups.items())


def _lead(study: Study, comparisons: Comparisons, eval_set: str, metric: str) -> list[str]:
    """The answer for one test set and metric: slopes first, then verdicts per size, then a
    table of every effect and margin per size."""
    arms = study.hybrid_arms(eval_set)
    arm = next((a for a in arms if a.alpha == 0.5), arms[0] if arms else None)
    if arm is None:
        return []
    contrasts = [
        (against, "synergy" if against == "interpolation" else "effect")
        for against in (*BASELINES, "interpolation")
    ]
    names = {b: f"hybrid − {BASELINE_NAMES[b]}" for b in BASELINES} | {
        "interpolation": "the synergy margin"
    }
    # A column per size with an effect, ascending; a contrast a size lacks (a cell not run
    # yet) is "—" there, so every number stays under its own size.
    tested = {t.size.model for t in comparisons.find("effect", eval_set, metric, arm=arm) if t.size}
    columns = [size for size in study.sizes if size.model in tested]
    slope_parts, size_parts, table = [], [], []
    for against, kind in contrasts:
        per_size = comparisons.find(kind, eval_set, metric, arm=arm, against=against)
        if not per_size:
            continue
        slope = next(
            iter(comparisons.find("slope", eval_set, metric, arm=arm, against=against)), None
        )
        if slope is not None and against in (*PRIMARY_BASELINES, "interpolation"):
            slope_parts.append(
                f"{names[against]} changes by {diff_text(slope.estimate, metric)} "
                f"(Holm p = {slope.p_holm:.2g}): {_trend(slope, 'it')}"
            )
        if against in PRIMARY_BASELINES:
            size_parts.append(f"against {against} hybrid {_verdicts_at(per_size)}")
        cells = {t.size.model: f"{_holm_text(t)} {_word(t)}" for t in per_size if t.size}
        table.append([names[against], *(cells.get(size.model, "—") for size in columns)])
    if not table:
        return []
    direction = "" if higher_is_better(metric) else " (lower is better)"
    head = f"**{eval_set}, {METRIC_NAMES[metric]}{direction}, {arm.label}.**"
    text = head
    if slope_parts:
        text += " Per doubling of non-embedding parameters, " + "; ".join(slope_parts) + "."
    text += " By size, " + "; ".join(size_parts) + "."
    header = ["", *(size.label for size in columns)]
    lines = [text, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    return [*lines, ""]


def power_sentence(study: Study, comparisons: Comparisons) -> str:
    """How many primary effects could see a difference of the equivalence margin ("" when
    there are none); the seeds and questions that would need are in the Power section.

    Example:
        >>> power_sentence(study, comparisons)  # doctest: +SKIP
        '**Power:** 6 of 8 primary effects reached a minimum detectable effect ...'
    """
    primary = [t for t in comparisons.tests if t.family == "primary" and t.kind == "effect"]
    if not primary:
        return ""
    margin = study.equivalence_margin
    short = [t for t in primary if not t.mde <= margin]
    worst = max(primary, key=lambda t: t.mde)
    text = (
        f"**Power:** {len(primary) - len(short)} of {len(primary)} primary effects reached a "
        f"minimum detectable effect of at most {margin:g} (the equivalence margin; 80% "
        f"power at the primary family's first Holm level)"
    )
    if short:
        text += (
            f"; the largest is {worst.mde:.4f} ({worst.arm.label} − {worst.against} at "
            f"{worst.size.label if worst.size else 'all sizes'}). 'Power of the primary "
            "claims' gives the seeds and test questions a test of that size needs"
        )
    return text + "."


def coverage_sentence(study: Study, comparisons: Comparisons) -> str:
    """What the intervals cover, in words (always printed).

    Example:
        >>> coverage_sentence(study, comparisons)  # doctest: +SKIP
        'Every interval is a 95% interval from a two-level bootstrap ...'
    """
    seeds = sorted({r["seed"] for r in study.rows if r.get("seed") is not None})
    clusters = ", ".join(f"{ev}: {n}" for ev, n in comparisons.clusters.items() if is_test_set(ev))
    articles = ", ".join(f"{ev}: {n}" for ev, n in comparisons.articles.items())
    ratios = "; ".join(
        f"{ev}: {low:.2f}–{high:.2f}×" for ev, (low, high) in comparisons.se_ratio.items()
    )
    text = (
        f"Every interval is a {CONFIDENCE:.0%} interval from a two-level bootstrap "
        f"({comparisons.n_resamples} replicates) that resamples the training seeds of each "
        "cell and the parallel-question clusters (translations of one question stay "
        f"together; clusters: {clusters})"
        + (
            f", drawn as whole article groups where the per-query files record them "
            f"(article groups: {articles}; question degrees of freedom from the number of "
            "groups)"
            if articles
            else ""
        )
        + ", with a t quantile on Welch–Satterthwaite degrees "
        "of freedom because each cell has few seeds (`langmix.study.inference`). So an "
        "interval covers both which questions were asked and which training runs happened."
        + (
            f" Resampling articles multiplies the question part of the primary contrasts' "
            f"standard errors by {ratios} over resampling questions alone."
            if ratios
            else ""
        )
        + f" Verdicts use Holm-adjusted p-values in one primary family (on "
        f"{comparisons.primary or 'no test set'}: multilingual mAP, hybrid α = 0.5 − mono and "
        "− cross per size, and their slopes) and one secondary family each for the other "
        "effects, the synergy margins and the slopes. Each verdict sits beside the interval "
        "at the level Holm tested it (it excludes 0 exactly when Holm rejects); a "
        "non-significant result prints its minimum detectable effect (80% power at the "
        "family's first Holm level), and equality is claimed only by an equivalence test "
        "(TOST, Holm-adjusted) against a margin of "
        f"±{study.equivalence_margin:g}. A slope whose sizes reject a straight line (lack "
        "of fit, χ² on k − 2 df) is reported as no line; a slope's interval is the wider "
        "of the sampling interval and the residual one (t on k − 2 df)."
    )
    if len(seeds) < 2:
        text += (
            " This study has one training seed, so the seed level cannot be resampled: its "
            "intervals cover the question sample only, and read 'significant' as 'for these "
            "trained models'."
        )
    return text


def section_answer(
    study: Study, comparisons: Comparisons, families: FamilyComparison | None = None
) -> list[str]:
    """The generated answer, first in the report.

    Args:
        study: The loaded study.
        comparisons: Its comparisons (:func:`langmix.study.comparisons.compute_comparisons`).
        families: Its claims paired with a sibling study's, if the study names one.

    Returns:
        The section's markdown lines, starting with its ``## Answer`` heading.

    Example:
        >>> section_answer(study, comparisons)[0]  # doctest: +SKIP
        '## Answer'
    """
    lines = ["## Answer", ""]
    missing = missing_cells(study)
    if missing:
        planned = len({r["cell"] for r in study.rows}) + len(
            {m.rsplit(" on ", 1)[0] for m in missing} - {r["cell"] for r in study.rows}
        )
        lines += [
            f"**Incomplete study: {len(missing)} (cell, evaluation set) results of the plan "
            f"are missing ({len({r['cell'] for r in study.rows})} of {planned} cells have "
            "results).** What follows covers only what has run; the list is under 'What was "
            "run'.",
            "",
        ]
    paragraphs: list[str] = []
    for eval_set in study.eval_sets:
        if not is_test_set(eval_set):
            continue
        for metric in TESTED[study.eval_kind[eval_set]][:1]:
            paragraphs += _lead(study, comparisons, eval_set, metric)
    if not paragraphs:
        return [*lines, "No answer yet: no size has both hybrid and a trained baseline.", ""]
    sizes = ", ".join(s.name for s in study.sizes)
    # The answer itself comes first; how to read it follows.
    if families is not None:
        paragraphs += [answer_sentence(families), ""]
    power = power_sentence(study, comparisons)
    if power:
        paragraphs += [power, ""]
    lines += [
        *paragraphs,
        "Read: each line is the difference hybrid − baseline (each baseline separately) or "
        "the synergy margin, at each model size "
        f"({sizes}; non-embedding parameters). In the sentences the intervals are the "
        f"unadjusted {CONFIDENCE:.0%} ones; in the tables each verdict sits beside the "
        "interval at the level Holm tested it, which excludes 0 exactly when the verdict is "
        f"'better' or 'worse' (Holm-adjusted p below {1 - CONFIDENCE:.2f}). Only hybrid − "
        "mono and hybrid − cross on the primary test set are the primary claims; the rest "
        "are secondary.",
        "",
        coverage_sentence(study, comparisons),
        "",
        "The other metrics (mono and cross mAP, rank distance) are in the effect, synergy "
        "and slope tables below.",
        "",
    ]
    if any(OFFLINE_MODEL.match(size.model) for size in study.sizes):
        lines += [
            "The sizes here are depth cuts of one model (see below), so this trend is a "
            "proxy; the hub family answers the size question.",
            "",
        ]
    if any(DISTILLED_MODEL.match(size.model) for size in study.sizes):
        lines += [
            "The smaller sizes here are students distilled from one model (see below), so "
            "this trend is a proxy; the hub family answers the size question.",
            "",
        ]
    return lines
