"""The study's figures: a :class:`~langmix.study.results.Study` reduced to plain series.

:func:`draw_plots` is the one place that turns a study and its comparisons into the series
of :mod:`langmix.study.figures` and writes every figure the report links to.

Example:
    >>> figures = draw_plots(study, compute_comparisons(study))  # doctest: +SKIP
    >>> [name for name, _ in figures["mlqa-r-heldout"]]  # doctest: +SKIP
    ['map_vs_size', 'hybrid_gain', 'frontier', 'rank_distance_vs_size', 'heatmap']
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from langmix.outputs import safe_name
from langmix.study.comparisons import CONFIDENCE, Comparisons, is_test_set
from langmix.study.figures import (
    FrontierPoint,
    GainSeries,
    Heatmap,
    Series,
    alpha_frontier,
    hybrid_gain,
    loss_curves,
    metric_vs_size,
    pair_heatmap,
)
from langmix.study.results import METRIC_NAMES, Size, Study, cell_summary, format_count

__all__ = [
    "PLOTS",
    "draw_plots",
    "plot_frontier",
    "plot_heatmap",
    "plot_hybrid_gain",
    "plot_metrics_vs_size",
    "plot_rank_distance_vs_size",
    "plot_validation_curves",
]

PLOTS = "plots"

# Per evaluation kind: metrics of the hybrid-gain panels and of the score-vs-size panels.
_GAIN_PANELS = {
    "lareqa": ("map_mono", "map_cross", "map_multi"),
    "miracl": ("ndcg@10", "map@100"),
}
_SIZE_PANELS = {
    "lareqa": ("map_mono", "map_cross", "map_multi"),
    "miracl": ("ndcg@10", "recall@100", "map@100"),
}


def _xticks(sizes: Sequence[Size]) -> list[tuple[float, str]]:
    return [(float(s.non_embedding), f"{s.label}\n{format_count(s.non_embedding)}") for s in sizes]


def _by_size(study: Study) -> str:
    """How a figure's title names its x axis: over sizes, or by arm at the only size."""
    if len(study.sizes) == 1:
        return f"by arm ({study.sizes[0].label})"
    return "vs model size"


def _size_series(study: Study, eval_set: str, metric: str) -> list[Series]:
    sizes = study.sizes
    series = []
    for arm in study.arms_for(eval_set):
        summaries = [cell_summary(study.cell_rows(eval_set, s, arm), metric) for s in sizes]
        has_sd = any(sd is not None for _, sd in summaries)
        series.append(
            Series(
                arm.label,
                [float(s.non_embedding) for s in sizes],
                [mean for mean, _ in summaries],
                [sd or 0.0 for _, sd in summaries] if has_sd else None,
                dashed=arm.strategy == "untrained",
            )
        )
    return series


def plot_metrics_vs_size(study: Study, eval_set: str, path: Path) -> Path:
    """``map_vs_size``: one panel per headline metric, a line per strategy.

    Example:
        >>> plot_metrics_vs_size(study, "xquad-r", Path("plots/map_vs_size_xquad-r.png"))  # doctest: +SKIP
        PosixPath('plots/map_vs_size_xquad-r.png')
    """
    panels = [
        (METRIC_NAMES[m], _size_series(study, eval_set, m))
        for m in _SIZE_PANELS[study.eval_kind[eval_set]]
    ]
    return metric_vs_size(
        path, panels, xticks=_xticks(study.sizes), title=f"{eval_set}: score {_by_size(study)}"
    )


def plot_rank_distance_vs_size(study: Study, eval_set: str, path: Path) -> Path:
    """``rank_distance_vs_size``: rank distance per strategy over size (lower is better).

    Example:
        >>> plot_rank_distance_vs_size(study, "xquad-r", Path("plots/rd.png"))  # doctest: +SKIP
        PosixPath('plots/rd.png')
    """
    panels = [("rank distance (lower is better)", _size_series(study, eval_set, "rank_distance"))]
    return metric_vs_size(
        path,
        panels,
        xticks=_xticks(study.sizes),
        title=f"{eval_set}: rank distance {_by_size(study)}",
    )


def plot_hybrid_gain(
    study: Study, comparisons: Comparisons, eval_set: str, path: Path
) -> Path | None:
    """``hybrid_gain``: hybrid (α = 0.5, else the first α) minus each baseline, and the
    synergy margin, with their intervals, per metric.

    Returns:
        The path written, or ``None`` when no size has both hybrid and a baseline.

    Example:
        >>> plot_hybrid_gain(study, comparisons, "xquad-r", Path("plots/gain.png"))  # doctest: +SKIP
        PosixPath('plots/gain.png')
    """
    arms = study.hybrid_arms(eval_set)
    arm = next((a for a in arms if a.alpha == 0.5), arms[0] if arms else None)
    if arm is None or not is_test_set(eval_set):
        return None
    panels = []
    for metric in _GAIN_PANELS[study.eval_kind[eval_set]]:
        series = []
        for against in ("mono", "cross", "random", "interpolation"):
            kind = "synergy" if against == "interpolation" else "effect"
            found = [t for t in comparisons.find(kind, eval_set, metric, arm=arm, against=against)]
            if found:
                series.append(
                    GainSeries(
                        "synergy margin" if kind == "synergy" else f"− {against}",
                        [float(t.size.non_embedding) for t in found if t.size],
                        [t.estimate.value for t in found],
                        [t.estimate.ci_low for t in found],
                        [t.estimate.ci_high for t in found],
                    )
                )
        panels.append((METRIC_NAMES[metric], series))
    if not any(series for _, series in panels):
        return None
    return hybrid_gain(
        path,
        panels,
        xticks=_xticks(study.sizes),
        title=f"{eval_set}: {arm.label} − each baseline, and the synergy margin "
        f"({CONFIDENCE:.0%} CI)",
        ylabel=f"{arm.label} − …",
    )


def plot_frontier(study: Study, comparisons: Comparisons, eval_set: str, path: Path) -> Path | None:
    """``frontier``: per size with more than one hybrid α, the strategies in the (mono mAP,
    multi mAP) and (cross mAP, multi mAP) planes with their intervals.

    Returns:
        The path written, or ``None`` when no size has an α sweep, or ``eval_set`` is not
        a LAReQA test set (the validation part chose checkpoints; it is not tested).
    """
    if study.eval_kind[eval_set] != "lareqa" or not is_test_set(eval_set):
        return None
    panels = []
    for size in study.sizes:
        arms = [a for a in study.arms_for(eval_set) if study.cell_rows(eval_set, size, a)]
        if sum(a.strategy == "hybrid" for a in arms) < 2:
            continue
        for x_metric in ("map_mono", "map_cross"):
            points = []
            for arm in arms:
                if arm.strategy == "untrained":
                    continue
                ex = comparisons.cells.get((eval_set, x_metric, size.model, arm))
                ey = comparisons.cells.get((eval_set, "map_multi", size.model, arm))
                if ex is None or ey is None:
                    continue
                alpha = {"mono": 1.0, "cross": 0.0}.get(arm.strategy, arm.alpha)
                points.append(
                    FrontierPoint(
                        arm.label,
                        alpha,
                        ex.value,
                        ex.ci_low,
                        ex.ci_high,
                        ey.value,
                        ey.ci_low,
                        ey.ci_high,
                    )
                )
            if points:
                panels.append(
                    (f"{size.label}", METRIC_NAMES[x_metric], METRIC_NAMES["map_multi"], points)
                )
    if not panels:
        return None
    return alpha_frontier(
        path,
        panels,
        title=f"{eval_set}: the α frontier ({CONFIDENCE:.0%} CI of each arm alone; the "
        "synergy tests are paired and narrower)",
    )


def plot_validation_curves(study: Study, path: Path) -> Path | None:
    """``validation_loss``: every trained cell's validation-loss curve, a panel per size.

    Returns:
        The path written, or ``None`` when no row carries a validation history.
    """
    panels = []
    for size in study.sizes:
        curves = []
        seen = set()
        for row in study.rows:
            history = (row.get("training") or {}).get("validation_history")
            if row["model"] != size.model or not history or row["cell"] in seen:
                continue
            seen.add(row["cell"])
            label = f"{row['strategy']}" + (
                f" α={row['alpha']:g}" if row.get("alpha") is not None else ""
            )
            curves.append(
                (label, [h["step"] for h in history], [h["validation_loss"] for h in history])
            )
        if curves:
            curves.sort(key=lambda c: c[0])
            panels.append((size.label, curves))
    if not panels:
        return None
    return loss_curves(path, panels, title="Validation loss during training (each seed a line)")


def _pair_matrix(rows: Sequence[dict[str, Any]]) -> tuple[list[str], np.ndarray]:
    """Seed-mean ``per_pair_map`` as a query x passage language matrix."""
    pairs: dict[tuple[str, str], list[float]] = defaultdict(list)
    languages: dict[str, None] = {}  # ordered set, in the rows' own language order
    for row in rows:
        for key, value in (row.get("per_pair_map") or {}).items():
            query, passage = key.split("-", 1)
            languages.setdefault(query)
            languages.setdefault(passage)
            pairs[(query, passage)].append(float(value))
    langs = list(languages)
    matrix = np.full((len(langs), len(langs)), np.nan)
    for (query, passage), values in pairs.items():
        matrix[langs.index(query), langs.index(passage)] = float(np.mean(values))
    return langs, matrix


def plot_heatmap(study: Study, eval_set: str, path: Path) -> Path | None:
    """``heatmap``: per-language-pair mAP of hybrid for the largest model that has it.

    Returns:
        The path written, or ``None`` when no hybrid row has per-pair scores.

    Example:
        >>> plot_heatmap(study, "xquad-r", Path("plots/heatmap_xquad-r.png"))  # doctest: +SKIP
        PosixPath('plots/heatmap_xquad-r.png')
    """
    for size in reversed(study.sizes):
        panels = []
        for arm in study.hybrid_arms(eval_set):
            langs, matrix = _pair_matrix(study.cell_rows(eval_set, size, arm))
            if langs:
                panels.append(Heatmap(f"{arm.label}, {size.label}", langs, langs, matrix))
        if panels:
            return pair_heatmap(path, panels, title=f"{eval_set}: mAP by query × passage language")
    return None


def draw_plots(study: Study, comparisons: Comparisons) -> dict[str, list[tuple[str, Path]]]:
    """Draw every figure into ``STUDY_DIR/plots``.

    Args:
        study: The loaded study.
        comparisons: Its comparisons (for the hybrid-gain figures).

    Returns:
        Per evaluation set, the (caption, path) of each figure drawn.

    Example:
        >>> draw_plots(study, comparisons)["xquad-r"][0]  # doctest: +SKIP
        ('Score vs size', PosixPath('runs/scaling/plots/map_vs_size_xquad-r.png'))
    """
    out: dict[str, list[tuple[str, Path]]] = {}
    folder = study.directory / PLOTS
    for eval_set in study.eval_sets:
        if not is_test_set(eval_set):
            continue  # the checkpoint-choosing part: tables only, for the untrained check
        name = safe_name(eval_set)
        lareqa = study.eval_kind[eval_set] == "lareqa"
        figures: list[tuple[str, Path | None]] = [
            (
                "Score vs size",
                plot_metrics_vs_size(study, eval_set, folder / f"map_vs_size_{name}.png"),
            ),
            (
                "Hybrid − each baseline, and the synergy margin, vs size",
                plot_hybrid_gain(study, comparisons, eval_set, folder / f"hybrid_gain_{name}.png"),
            ),
            (
                "The α frontier: strategies in the (mono, multi) and (cross, multi) mAP planes",
                plot_frontier(study, comparisons, eval_set, folder / f"frontier_{name}.png"),
            ),
        ]
        if lareqa:
            figures += [
                (
                    "Rank distance vs size",
                    plot_rank_distance_vs_size(
                        study, eval_set, folder / f"rank_distance_vs_size_{name}.png"
                    ),
                ),
                (
                    "Hybrid mAP per language pair, largest model",
                    plot_heatmap(study, eval_set, folder / f"heatmap_{name}.png"),
                ),
            ]
        out[eval_set] = [(caption, p) for caption, p in figures if p is not None]
    curves = plot_validation_curves(study, folder / "validation_loss.png")
    if curves is not None:
        out["training"] = [("Validation loss per size", curves)]
    return out
