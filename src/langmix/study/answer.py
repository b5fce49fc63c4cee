"""The report's generated answer: how hybrid's gain over the best baseline changes with size.

The "Answer" section of ``report.md`` is written here from the comparisons alone, one
paragraph per (evaluation set, tested metric, hybrid arm), followed by the caveats that
apply to the study (one seed, depth-cut sizes), so no number in it is typed by hand.

Example:
    >>> from langmix.study.comparisons import compute_comparisons
    >>> from langmix.study.results import load_study
    >>> study = load_study("runs/scaling")  # doctest: +SKIP
    >>> section_answer(study, compute_comparisons(study))[:2]  # doctest: +SKIP
    ['## Answer', '']
"""

from __future__ import annotations

from langmix.study.comparisons import (
    CONFIDENCE,
    TESTED,
    Comparisons,
    diff_text,
    gains,
    higher_is_better,
    significant,
    verdict,
)
from langmix.study.results import METRIC_NAMES, OFFLINE_MODEL, Arm, Study, digits

__all__ = ["section_answer"]

# The paper's largest reported hybrid gain, for scale in the answer.
_PAPER_GAIN = 0.01


def _answer_metric(
    study: Study, comparisons: Comparisons, eval_set: str, metric: str, arm: Arm
) -> str | None:
    found = gains(study, comparisons, eval_set, metric, arm)
    if not found:
        return None
    direction = "" if higher_is_better(metric) else " (lower is better)"
    parts = [
        f"{size.name}: {diff_text(c, metric)} vs {baseline}, "
        + ("not significant" if not significant(c) else f"significant, {verdict(c)}")
        for size, baseline, c in found
    ]
    text = (
        f"**{eval_set}, {METRIC_NAMES[metric]}{direction}, {arm.label} − best baseline** "
        f"(difference [{CONFIDENCE:.0%} CI]): " + "; ".join(parts) + "."
    )
    if len(found) > 1:
        (first, _, c0), (last, _, c1) = found[0], found[-1]
        d = digits(metric) + 1
        text += (
            f" From {first.label} to {last.label} the difference changes by "
            f"{c1.difference - c0.difference:+.{d}f} ({c0.difference:+.{d}f} → {c1.difference:+.{d}f})."
        )
    at_significant = [s.label for s, _, c in found if significant(c)]
    not_significant = [s.label for s, _, c in found if not significant(c)]
    text += (
        f" CI excludes 0 at: {', '.join(at_significant) or 'no size'};"
        f" includes 0 at: {', '.join(not_significant) or 'no size'}."
    )
    return text


def section_answer(study: Study, comparisons: Comparisons) -> list[str]:
    """The generated answer: hybrid's gain over the best baseline from small to large.

    Args:
        study: The loaded study.
        comparisons: Its comparisons (:func:`langmix.study.comparisons.compute_comparisons`).

    Returns:
        The section's markdown lines, starting with its ``## Answer`` heading.

    Example:
        >>> section_answer(study, comparisons)[0]  # doctest: +SKIP
        '## Answer'
    """
    lines = ["## Answer", ""]
    paragraphs = [
        text
        for eval_set in study.eval_sets
        for metric in TESTED[study.eval_kind[eval_set]]
        for arm in study.hybrid_arms(eval_set)
        if (text := _answer_metric(study, comparisons, eval_set, metric, arm)) is not None
    ]
    if not paragraphs:
        return [*lines, "No answer yet: no size has both hybrid and a trained baseline.", ""]
    lines += [
        "How much better (or worse) hybrid batches are than the best baseline (the best of "
        "mono, cross and random at that size), from the smallest to the largest model "
        f"({', '.join(s.name for s in study.sizes)}; non-embedding parameters):",
        "",
    ]
    for paragraph in paragraphs:
        lines += [paragraph, ""]
    n_significant = sum(significant(c) for c in comparisons.results.values())
    lines += [
        f"For scale: the paper (Elmahdy et al., 2024) reported hybrid gains of at most "
        f"~{_PAPER_GAIN} mAP and ran no significance tests; here {n_significant} of "
        f"{len(comparisons.results)} hybrid-versus-baseline comparisons (all metrics, "
        "including untrained) have a CI that excludes 0.",
        "",
    ]
    seeds = {r["seed"] for r in study.rows if r.get("seed") is not None}
    if len(seeds) < 2:
        lines += [
            "With one training seed, these intervals measure only the sampling of queries, "
            "not the run-to-run variance of training, which at this scale can be as large as "
            "the differences; read 'significant' as 'for this trained model', and add seeds "
            "before drawing conclusions about the strategies.",
            "",
        ]
    if any(OFFLINE_MODEL.match(size.model) for size in study.sizes):
        lines += [
            "The sizes here are depth cuts of one model (see above), so this trend is a proxy; "
            "the hub family answers the size question.",
            "",
        ]
    return lines
