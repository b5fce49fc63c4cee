"""The scaling study's report: tables, significance tests, plots and a generated answer.

Research question: how does the benefit of hybrid batch training change as the model
grows, against the baselines (mono, cross, random), measured by mAP, with confidence
intervals? :func:`build_report` answers it from ``results.jsonl`` and the per-query files
alone, so ``langmix report DIR`` can rebuild ``DIR/report.md`` and ``DIR/plots/*.png`` at
any time (after a partial run, after more seeds were added) without rerunning anything.

Every number in the report, including the closing "Answer" paragraph, is read from the
rows or computed by :mod:`langmix.study.statistics`; nothing is hand-written, so the text
cannot drift from the data it describes. The work is split by concept: the rows and their
index (:mod:`langmix.study.results`), the paired comparisons
(:mod:`langmix.study.comparisons`), the figures (:mod:`langmix.study.plots`) and the
generated answer (:mod:`langmix.study.answer`); this module writes the markdown around them.

Example:
    >>> from langmix.study.report import build_report
    >>> build_report("runs/scaling")  # doctest: +SKIP
    PosixPath('runs/scaling/report.md')
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langmix.outputs import write_text_atomic
from langmix.study.answer import coverage_sentence, section_answer
from langmix.study.claims import write_claims
from langmix.study.comparisons import (
    BASELINE_NAMES,
    TESTED,
    Comparisons,
    Test,
    compute_comparisons,
    diff_text,
    higher_is_better,
    is_test_set,
    verdict,
    verdict_text,
)
from langmix.study.figures import output_settings
from langmix.study.plots import draw_plots
from langmix.study.power import section_power
from langmix.study.results import (
    DISTILLED_MODEL,
    METRIC_NAMES,
    OFFLINE_MODEL,
    REPORT,
    RESULTS,
    STRATEGY_ORDER,
    Arm,
    LoadedRows,
    Size,
    Study,
    cell_summary,
    digits,
    eval_languages,
    format_count,
    load_rows,
    load_study,
    markdown_table,
    missing_cells,
    plural,
    train_languages,
)
from langmix.study.training_section import section_training

# The data model lives in langmix.study.results; its names are re-exported so that
# imports from langmix.study.report keep working.
__all__ = [
    "Arm",
    "LoadedRows",
    "Size",
    "Study",
    "build_report",
    "load_rows",
    "load_study",
]


# Main table columns per evaluation kind.
_TABLE = {
    "lareqa": ("map_mono", "map_cross", "map_multi", "r1_cross", "r10_multi"),
    "miracl": ("ndcg@10", "recall@100", "map@100"),
}


# --------------------------------------------------------------------------- numbers


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1:
        return f"{seconds:.0f} s"
    if minutes < 60:
        return f"{minutes:.1f} min"
    return f"{int(minutes // 60)} h {minutes % 60:02.0f} min"


def _times(rows: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """Total train and eval seconds of ``rows``."""
    # train_seconds is repeated on every eval row of a cell; count each cell once.
    train = {r["cell"]: r.get("train_seconds") or 0.0 for r in rows}
    return sum(train.values()), sum(r.get("eval_seconds") or 0.0 for r in rows)


def _cell_text(rows: Sequence[dict[str, Any]], metric: str) -> str:
    mean, sd = cell_summary(rows, metric)
    if math.isnan(mean):
        return "—"
    places = digits(metric)
    return f"{mean:.{places}f}" if sd is None else f"{mean:.{places}f} ± {sd:.{places}f}"


# --------------------------------------------------------------------------- sections


def _baselines_run(study: Study) -> list[str]:
    """The baselines with rows, in the report's order: only those the question can be about."""
    ran = {arm.strategy for arm in study.arms}
    return [s for s in ("mono", "cross", "random", "untrained") if s in ran]


def _language_lines(study: Study) -> list[str]:
    """Which languages were trained, and which each evaluation set tests zero-shot."""
    trained = train_languages(study)
    if not trained:
        return []
    lines = [f"- Training languages: {', '.join(trained)}"]
    for eval_set in study.eval_sets:
        langs = eval_languages(study, eval_set)
        unseen = [lang for lang in langs if lang not in trained]
        if langs:
            lines.append(
                f"- {eval_set}: {len(langs)} languages"
                + (
                    f"; zero-shot in {', '.join(unseen)} (never trained)"
                    if unseen
                    else ", all of them trained"
                )
            )
    return lines


def section_run(study: Study) -> list[str]:
    """ "What was run / what was cut": grid, models, times, description, caveats.

    Example:
        >>> section_run(study)[0]  # doctest: +SKIP
        '## What was run / what was cut'
    """
    rows = study.rows
    lines = ["## What was run / what was cut", ""]
    if study.description:
        lines += [study.description, ""]
    if any(OFFLINE_MODEL.match(size.model) for size in study.sizes):
        lines += [
            "**The offline family is a depth-cut proxy.** Its sizes are layer cuts of one "
            "pretrained model, and cutting layers loses quality before any training, so "
            "each size's untrained row must be read next to its trained rows: a trend over "
            "these sizes mixes the effect of size with the damage of the cut. The hub family "
            "(`configs/paper-gpu.toml`: separately pretrained models of increasing size) is "
            "the real answer to the size question.",
            "",
        ]
    if any(DISTILLED_MODEL.match(size.model) for size in study.sizes):
        lines += [
            "**The offline family is distilled.** Its smaller sizes are students distilled "
            "from the 12-layer model (`langmix distill`, see docs/distillation.md): working "
            "models before any "
            "fine-tuning, unlike cuts, but all made from one teacher's knowledge on a small "
            "text budget. The hub family (`configs/paper-gpu.toml`) is the real answer to the "
            "size question.",
            "",
        ]
    trained = {r["strategy"] for r in rows if r["strategy"] != "untrained"}
    strategies = [s for s in STRATEGY_ORDER if s in trained] + sorted(trained - set(STRATEGY_ORDER))
    alphas = sorted({a.alpha for a in study.arms if a.alpha is not None})
    seeds = sorted({r["seed"] for r in rows if r.get("seed") is not None})
    train_sets = sorted({r["train_set"] for r in rows if r.get("train_set")})
    untrained = any(r["strategy"] == "untrained" for r in rows)
    train_s, eval_s = _times(rows)
    n_cells = len({r["cell"] for r in rows})
    lines += [
        f"- Cells: {n_cells} ({len(rows)} rows of (cell, evaluation set))",
        f"- Strategies: {', '.join(strategies) or 'none'}"
        + (" (+ untrained reference)" if untrained else ""),
        f"- Hybrid alphas: {', '.join(f'{a:g}' for a in alphas) or 'none'}",
        f"- Seeds: {', '.join(map(str, seeds)) or 'none'}",
        f"- Train set: {', '.join(train_sets) or 'none'}",
        f"- Evaluation sets: {', '.join(study.eval_sets) or 'none'}",
        *_language_lines(study),
        f"- Wall time: train {_duration(train_s)} + eval {_duration(eval_s)} "
        f"= {_duration(train_s + eval_s)}",
    ]
    reused = sorted({(r["reused_from"]["study"], r["cell"]) for r in rows if r.get("reused_from")})
    for source in sorted({name for name, _ in reused}):
        n = sum(1 for name, _ in reused if name == source)
        lines.append(
            f"- Taken from study {source} (`--reuse-from`, equal model, training and evaluation "
            f"settings): {plural(n, 'cell')}; their times, included above, were measured there"
        )
    lines.append("")
    lines += markdown_table(
        ["size", "model", "parameters (total)", "non-embedding", "train time", "eval time"],
        [
            [
                size.label,
                f"`{size.model}`",
                f"{format_count(size.total)} ({size.total:,})",
                f"{format_count(size.non_embedding)} ({size.non_embedding:,})",
                *map(_duration, _times([r for r in rows if r["model"] == size.model])),
            ]
            for size in study.sizes
        ],
    )
    missing = missing_cells(study)
    if missing:
        shown = "; ".join(missing[:20]) + (
            f"; … and {len(missing) - 20} more" if len(missing) > 20 else ""
        )
        lines += [f"Missing from the grid ({len(missing)}): {shown}.", ""]
    if study.loaded.skipped:
        what = "the last line was cut (an interrupted write)" if study.loaded.last_line_cut else ""
        lines += [
            f"Skipped unreadable lines of `{RESULTS}`: {', '.join(map(str, study.loaded.skipped))}"
            + (f"; {what}" if what else "")
            + ".",
            "",
        ]
    return lines


def table_main(study: Study, eval_set: str, size: Size) -> list[str]:
    """Table 1 layout: a row per arm, mAP (and recall) columns; MIRACL: its own metrics.

    Example:
        >>> table_main(study, "xquad-r", study.sizes[0])[0]  # doctest: +SKIP
        '| strategy | seeds | mAP mono | mAP cross | mAP multi | R@1 cross | R@10 multi |'
    """
    metrics = _TABLE[study.eval_kind[eval_set]]
    body = []
    for arm in study.arms_for(eval_set):
        rows = study.cell_rows(eval_set, size, arm)
        n = len(rows)
        body.append([arm.label, str(n), *(_cell_text(rows, m) for m in metrics)])
    return markdown_table(["strategy", "seeds", *(METRIC_NAMES[m] for m in metrics)], body)


def table_rank_distance(study: Study, eval_set: str, size: Size) -> list[str]:
    """Table 2 layout: rank distance per arm (lower: answers in all languages rank together).

    Example:
        >>> table_rank_distance(study, "xquad-r", study.sizes[0])[0]  # doctest: +SKIP
        '| strategy | rank distance ↓ |'
    """
    body = [
        [arm.label, _cell_text(study.cell_rows(eval_set, size, arm), "rank_distance")]
        for arm in study.arms_for(eval_set)
    ]
    return markdown_table(["strategy", "rank distance ↓"], body)


def section_results(study: Study) -> list[str]:
    """Per evaluation set and size (small to large), the paper's tables.

    Example:
        >>> section_results(study)[0]  # doctest: +SKIP
        '## Results'
    """
    lines = [
        "## Results",
        "",
        "Mean ± standard deviation over seeds where there is more than one seed.",
        "",
    ]
    for eval_set in study.eval_sets:
        lareqa = study.eval_kind[eval_set] == "lareqa"
        for size in study.sizes:
            if not any(study.cell_rows(eval_set, size, arm) for arm in study.arms):
                continue
            lines += [f"### {eval_set} — {size.name}", ""]
            lines += table_main(study, eval_set, size)
            if lareqa:
                lines += table_rank_distance(study, eval_set, size)
    return lines


def _test_row(test: Test) -> list[str]:
    e = test.estimate
    word = verdict(test)
    d = digits(test.metric) + 1
    lack = test.lack_of_fit
    return [
        METRIC_NAMES[test.metric] + ("" if higher_is_better(test.metric) else " ↓"),
        f"{test.arm.label} − {BASELINE_NAMES[test.against]}",
        diff_text(e, test.metric),
        f"[{test.holm_low:+.{d}f}, {test.holm_high:+.{d}f}]",
        f"{e.se_seed:.{d}f} / {e.se_question:.{d}f}",
        f"{e.p_value:.3g}",
        f"{test.p_holm:.3g}",
        f"{test.mde:.{d}f}",
        "—" if math.isnan(test.p_equivalence_holm) else f"{test.p_equivalence_holm:.3g}",
        *([f"χ²({lack.df}) {lack.chi2:.1f}, p {lack.p_value:.2g}"] if lack else []),
        f"**{word}**" if word in ("better", "worse") else verdict_text(test),
    ]


_TEST_HEADER = [
    "metric",
    "comparison",
    "difference [95% CI]",
    "Holm-level CI",
    "se seed / question",
    "p",
    "p Holm",
    "MDE",
    "p equiv. Holm",
    "verdict",
]


def section_significance(study: Study, comparisons: Comparisons) -> list[str]:
    """The effect, synergy and slope tables, with how they were computed.

    Example:
        >>> section_significance(study, comparisons)[0]  # doctest: +SKIP
        '## Effects, synergy and slopes'
    """
    lines = [
        "## Effects, synergy and slopes",
        "",
        coverage_sentence(study, comparisons),
        "",
        "*Effect*: hybrid − baseline, each baseline separately. *Synergy margin*: hybrid(α) − "
        "[α · mono + (1 − α) · cross], the distance above the straight line between the pure "
        "strategies (mono is α = 1, cross α = 0): positive is synergy, zero interpolation, "
        "negative interference. *Slope*: least-squares change of an effect or margin per "
        "doubling of non-embedding parameters, fitted on every size, resampled jointly. "
        "se seed / question: the two parts of the standard error. *better*/*worse*: Holm "
        "p < 0.05, in the metric's direction (↓: lower is better); for a slope, *better* means "
        "the difference moves in hybrid's favour with size.",
        "",
    ]
    any_test = False
    for eval_set in study.eval_sets:
        if not is_test_set(eval_set):
            continue
        for size in study.sizes:
            body = [
                _test_row(t)
                for kind in ("effect", "synergy")
                for metric in TESTED[study.eval_kind[eval_set]]
                for t in comparisons.find(kind, eval_set, metric, size=size)
            ]
            if body:
                any_test = True
                lines += [f"### {eval_set} — {size.name}", "", *markdown_table(_TEST_HEADER, body)]
        slopes = [
            _test_row(t)
            for metric in TESTED[study.eval_kind[eval_set]]
            for t in comparisons.find("slope", eval_set, metric)
        ]
        if slopes:
            sizes = next(t.sizes for t in comparisons.tests if t.kind == "slope")
            lines += [
                f"### {eval_set} — slope per doubling ({', '.join(s.label for s in sizes)})",
                "",
                *markdown_table(
                    ["metric", "slope of", *_TEST_HEADER[2:-1], "lack of fit", "verdict"], slopes
                ),
            ]
    if not any_test:
        lines += [
            "No comparisons: the study has no hybrid rows with a baseline at the same size.",
            "",
        ]
    lines += [f"- {note}" for note in comparisons.notes]
    return [*lines, ""] if comparisons.notes else lines


def section_plots(study: Study, figures: dict[str, list[tuple[str, Path]]]) -> list[str]:
    """Links to the figures, relative to the report so the folder can be moved.

    Example:
        >>> section_plots(study, draw_plots(study, comparisons))[0]  # doctest: +SKIP
        '## Plots'
    """
    lines = ["## Plots", ""]
    for eval_set, items in figures.items():
        lines += [f"### {eval_set}", ""]
        for caption, path in items:
            rel = path.relative_to(study.directory).as_posix()
            lines += [f"![{caption}]({rel})", ""]
    return lines


# --------------------------------------------------------------------------- build


def build_report(
    study_dir: str | os.PathLike[str],
    *,
    n_resamples: int = 4000,
    seed: int = 0,
    plot_formats: Sequence[str] = ("png",),
    dpi: int = 120,
) -> Path:
    """(Re)build ``report.md`` and ``plots/*.png`` of a study directory.

    Reads only ``results.jsonl``, the per-query files it names and (for the description)
    ``study.toml``, so it can run any time, e.g. after a partial run. Figures and the
    report are written atomically; with the same inputs and ``seed`` the report is the
    same except for its build date.

    Args:
        study_dir: The study directory.
        n_resamples: Two-level bootstrap replicates.
        seed: Seed of the resampling (fixed so rebuilds agree).
        plot_formats: Figure formats besides the PNG the report links (``pdf``, ``svg``).
        dpi: Resolution of the raster figures.

    Returns:
        The path of ``report.md``.

    Raises:
        DataError: If ``results.jsonl`` is missing (naming it and the command that writes it).

    Example:
        >>> build_report("runs/scaling")  # doctest: +SKIP
        PosixPath('runs/scaling/report.md')
    """
    study = load_study(study_dir)
    comparisons = compute_comparisons(study, n_resamples=n_resamples, seed=seed)
    with output_settings(plot_formats, dpi):
        figures = draw_plots(study, comparisons)
    families, families_lines = None, []
    if study.compare_with:
        from langmix.study.families import compare_families, section_families

        other_dir = study.directory.parent / study.compare_with
        if (other_dir / RESULTS).is_file():
            families = compare_families(
                study,
                load_study(other_dir),
                ours_comparisons=comparisons,
                n_resamples=n_resamples,
                seed=seed,
            )
            families_lines = section_families(families)
        else:
            families_lines = section_families(
                None,
                f'`compare_with = "{study.compare_with}"` names a study beside this one, '
                f"but {other_dir.name}/{RESULTS} is not there, so the families are not compared.",
            )
    # The newest row's time, not the clock: the same results give the same report, byte
    # for byte, so a committed report can be checked against a rebuild.
    finished = sorted(str(r["finished_at"]) for r in study.rows if r.get("finished_at"))
    built = finished[-1] if finished else "no finished rows"
    lines = [
        f"# Scaling study: {study.name}",
        "",
        f"Built from `{RESULTS}` ({len(study.rows)} rows; newest {built}).",
        "",
        "Question: how does the benefit of hybrid batch training change as the model grows, "
        f"against the baselines ({', '.join(_baselines_run(study)) or 'none run yet'}), "
        "measured by mAP, with confidence intervals?",
        "",
        *section_answer(study, comparisons, families),
        *section_run(study),
        *section_training(study),
        *section_results(study),
        *section_significance(study, comparisons),
        *section_power(study, comparisons),
        *families_lines,
        *section_plots(study, figures),
    ]
    path = study.directory / REPORT
    write_claims(study.directory, comparisons)  # the same claims as data
    write_text_atomic(path, "\n".join(lines).rstrip("\n") + "\n")
    return path
