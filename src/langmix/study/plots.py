"""Figures of a scaling study: drawing functions on plain numbers, and the study's figures.

The drawing functions (:func:`metric_vs_size`, :func:`hybrid_gain`, :func:`pair_heatmap`)
take the plain series defined here and know nothing of the results format, so each figure
can be tested and restyled on its own. :func:`draw_plots`, at the end, is the one place
that reduces a :class:`~langmix.study.results.Study` and its comparisons to those series
and writes every figure the report links to.

Figures are built on a bare :class:`matplotlib.figure.Figure` with the Agg canvas rather
than through ``pyplot``: no global backend switch, no figure registry to leak memory
across rebuilds, and it works on machines without a display.

Example:
    >>> s = Series("mono", [7e6, 2e7], [0.41, 0.48], err=[0.01, 0.02])  # doctest: +SKIP
    >>> metric_vs_size("plots/map.png", [("mAP mono", [s])], xticks=[(7e6, "L2"), (2e7, "L6")])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from langmix.outputs import atomic_path, safe_name
from langmix.study.comparisons import CONFIDENCE, Comparisons, gains
from langmix.study.results import METRIC_NAMES, Size, Study, cell_summary, format_count

__all__ = [
    "PLOTS",
    "GainSeries",
    "Heatmap",
    "Series",
    "draw_plots",
    "hybrid_gain",
    "metric_vs_size",
    "pair_heatmap",
    "plot_heatmap",
    "plot_hybrid_gain",
    "plot_metrics_vs_size",
    "plot_rank_distance_vs_size",
    "save_figure",
]

PLOTS = "plots"

# One column per panel at this width keeps three panels readable on a laptop screen.
_PANEL_WIDTH = 4.6
_PANEL_HEIGHT = 3.8
# Per evaluation kind: metrics of the hybrid-gain panels and of the score-vs-size panels.
_GAIN_PANELS = {
    "lareqa": ("map_mono", "map_cross", "map_multi"),
    "miracl": ("ndcg@10", "map@100"),
}
_SIZE_PANELS = {
    "lareqa": ("map_mono", "map_cross", "map_multi"),
    "miracl": ("ndcg@10", "recall@100", "map@100"),
}


@dataclass(frozen=True)
class Series:
    """One line of a metric-versus-size panel.

    Attributes:
        label: Legend entry (e.g. ``"hybrid α=0.5"``).
        x: Model sizes (non-embedding parameters), ascending.
        y: Metric value at each size (NaN where the cell is missing).
        err: Error bar half-widths (seed standard deviation), or ``None`` for none.
        dashed: Draw a dashed line (used for the untrained reference).

    Example:
        >>> Series("untrained", [7e6], [0.2], dashed=True)  # doctest: +SKIP
    """

    label: str
    x: Sequence[float]
    y: Sequence[float]
    err: Sequence[float] | None = None
    dashed: bool = False


@dataclass(frozen=True)
class GainSeries:
    """Hybrid minus the best baseline across sizes, with its confidence band.

    Attributes:
        label: Legend entry (e.g. ``"hybrid α=0.5"``).
        x: Model sizes (non-embedding parameters), ascending.
        diff: Difference hybrid - best baseline at each size.
        low: Lower confidence bound at each size.
        high: Upper confidence bound at each size.
        baselines: Name of the best baseline at each size, written beside the point.

    Example:
        >>> GainSeries("hybrid α=0.5", [7e6], [0.01], [0.0], [0.02], ["cross"])  # doctest: +SKIP
    """

    label: str
    x: Sequence[float]
    diff: Sequence[float]
    low: Sequence[float]
    high: Sequence[float]
    baselines: Sequence[str]


@dataclass(frozen=True)
class Heatmap:
    """One query-language x passage-language matrix.

    Attributes:
        title: Panel title.
        query_languages: Row labels.
        passage_languages: Column labels.
        values: ``[len(query_languages), len(passage_languages)]``, NaN where missing.

    Example:
        >>> Heatmap("hybrid", ["en", "de"], ["en", "de"], np.eye(2))  # doctest: +SKIP
    """

    title: str
    query_languages: Sequence[str]
    passage_languages: Sequence[str]
    values: np.ndarray


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a PNG atomically (:func:`langmix.outputs.atomic_path`).

    A reader (or a browser previewing the report) never sees half a PNG, and an
    interrupted rebuild leaves the previous figure in place.

    Args:
        fig: The figure.
        path: Target ``.png`` path; its folder is created if needed.

    Returns:
        The path written.

    Example:
        >>> save_figure(Figure(), "plots/empty.png")  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # attaches the Agg canvas; savefig then renders without pyplot
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path


def _figure(n_panels: int) -> tuple[Figure, list]:
    fig = Figure(figsize=(_PANEL_WIDTH * n_panels, _PANEL_HEIGHT), layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    return fig, list(axes)


def _size_axis(ax, xticks: Sequence[tuple[float, str]]) -> None:
    # Sizes span orders of magnitude, so log x; ticks at the actual models, named by
    # label and count, are easier to read than powers of ten.
    ax.set_xscale("log")
    ax.set_xticks([x for x, _ in xticks], [t for _, t in xticks])
    ax.minorticks_off()
    ax.set_xlabel("non-embedding parameters")
    ax.grid(True, alpha=0.3)
    if len(xticks) == 1:
        x = xticks[0][0]
        ax.set_xlim(x / 2, x * 2)


def metric_vs_size(
    path: str | os.PathLike[str],
    panels: Sequence[tuple[str, Sequence[Series]]],
    *,
    xticks: Sequence[tuple[float, str]],
    title: str = "",
) -> Path:
    """Draw one panel per metric, each a line per strategy over model size.

    Args:
        path: Output PNG.
        panels: ``(panel title, lines)`` pairs.
        xticks: ``(size, label)`` of every model, for the shared x axis.
        title: Figure title.

    Returns:
        The path written.

    Example:
        >>> metric_vs_size("m.png", [("mAP multi", [s])], xticks=[(7e6, "L2")])  # doctest: +SKIP
    """
    fig, axes = _figure(len(panels))
    for ax, (panel_title, lines) in zip(axes, panels, strict=True):
        for line in lines:
            ax.errorbar(
                line.x,
                line.y,
                yerr=line.err,
                label=line.label,
                marker="o",
                linestyle="--" if line.dashed else "-",
                capsize=3,
            )
        ax.set_title(panel_title)
        _size_axis(ax, xticks)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def hybrid_gain(
    path: str | os.PathLike[str],
    panels: Sequence[tuple[str, Sequence[GainSeries]]],
    *,
    xticks: Sequence[tuple[float, str]],
    title: str = "",
) -> Path:
    """Draw hybrid minus the best baseline over model size, one panel per metric.

    The confidence interval is a shaded band and the zero line is drawn, so "significant"
    reads as "the band does not touch the line".

    Args:
        path: Output PNG.
        panels: ``(panel title, gain series)`` pairs.
        xticks: ``(size, label)`` of every model.
        title: Figure title.

    Returns:
        The path written.

    Example:
        >>> hybrid_gain("g.png", [("mAP multi", [g])], xticks=[(7e6, "L2")])  # doctest: +SKIP
    """
    fig, axes = _figure(len(panels))
    for ax, (panel_title, series) in zip(axes, panels, strict=True):
        ax.axhline(0.0, color="black", linewidth=0.8)
        for gain in series:
            (line,) = ax.plot(gain.x, gain.diff, marker="o", label=gain.label)
            ax.fill_between(gain.x, gain.low, gain.high, color=line.get_color(), alpha=0.2)
            # Which baseline is "best" can change with size; name it at each point.
            for x, y, name in zip(gain.x, gain.diff, gain.baselines, strict=True):
                if np.isfinite(y):
                    ax.annotate(
                        f"vs {name}",
                        (x, y),
                        textcoords="offset points",
                        xytext=(4, 6),
                        fontsize="x-small",
                    )
        ax.set_title(panel_title)
        ax.set_ylabel("hybrid − best baseline")
        _size_axis(ax, xticks)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def pair_heatmap(
    path: str | os.PathLike[str], panels: Sequence[Heatmap], *, title: str = ""
) -> Path:
    """Draw annotated query-language x passage-language heatmaps, one panel each.

    Args:
        path: Output PNG.
        panels: The matrices.
        title: Figure title.

    Returns:
        The path written.

    Example:
        >>> pair_heatmap("h.png", [Heatmap("hybrid", ["en"], ["en"], np.ones((1, 1)))])  # doctest: +SKIP
    """
    n_lang = max(len(p.passage_languages) for p in panels)
    # Cells need room for a 3-digit annotation; grow the panel with the language count.
    side = max(_PANEL_HEIGHT, 0.55 * n_lang + 1.5)
    fig = Figure(figsize=(side * 1.2 * len(panels), side), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        values = np.asarray(panel.values, dtype=float)
        # Scale to the data: pair differences of a few points must stay visible.
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        high = high if high > low else low + 1e-6
        image = ax.imshow(values, cmap="viridis", vmin=low, vmax=high)
        ax.set_xticks(range(len(panel.passage_languages)), list(panel.passage_languages))
        ax.set_yticks(range(len(panel.query_languages)), list(panel.query_languages))
        ax.set_xlabel("passage language")
        ax.set_ylabel("query language")
        ax.set_title(panel.title)
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                # Dark text on the bright end of viridis, light text on the dark end.
                color = "black" if (value - low) / (high - low) > 0.6 else "white"
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
        fig.colorbar(image, ax=ax, shrink=0.8, label="mAP")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


# --------------------------------------------------------------------------- the study's figures


def _xticks(sizes: Sequence[Size]) -> list[tuple[float, str]]:
    return [(float(s.non_embedding), f"{s.label}\n{format_count(s.non_embedding)}") for s in sizes]


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
        path, panels, xticks=_xticks(study.sizes), title=f"{eval_set}: score vs model size"
    )


def plot_rank_distance_vs_size(study: Study, eval_set: str, path: Path) -> Path:
    """``rank_distance_vs_size``: rank distance per strategy over size (lower is better).

    Example:
        >>> plot_rank_distance_vs_size(study, "xquad-r", Path("plots/rd.png"))  # doctest: +SKIP
        PosixPath('plots/rd.png')
    """
    panels = [("rank distance (lower is better)", _size_series(study, eval_set, "rank_distance"))]
    return metric_vs_size(
        path, panels, xticks=_xticks(study.sizes), title=f"{eval_set}: rank distance vs size"
    )


def plot_hybrid_gain(
    study: Study, comparisons: Comparisons, eval_set: str, path: Path
) -> Path | None:
    """``hybrid_gain``: hybrid minus the best baseline with its CI band, per metric.

    Returns:
        The path written, or ``None`` when no size has both hybrid and a baseline.

    Example:
        >>> plot_hybrid_gain(study, comparisons, "xquad-r", Path("plots/gain.png"))  # doctest: +SKIP
        PosixPath('plots/gain.png')
    """
    panels = []
    for metric in _GAIN_PANELS[study.eval_kind[eval_set]]:
        series = []
        for arm in study.hybrid_arms(eval_set):
            found = gains(study, comparisons, eval_set, metric, arm)
            if found:
                series.append(
                    GainSeries(
                        arm.label,
                        [float(s.non_embedding) for s, _, _ in found],
                        [c.difference for _, _, c in found],
                        [c.ci_low for _, _, c in found],
                        [c.ci_high for _, _, c in found],
                        [b for _, b, _ in found],
                    )
                )
        panels.append((METRIC_NAMES[metric], series))
    if not any(series for _, series in panels):
        return None
    return hybrid_gain(
        path,
        panels,
        xticks=_xticks(study.sizes),
        title=f"{eval_set}: hybrid − best baseline ({CONFIDENCE:.0%} CI)",
    )


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
        name = safe_name(eval_set)
        lareqa = study.eval_kind[eval_set] == "lareqa"
        figures: list[tuple[str, Path | None]] = [
            (
                "Score vs size",
                plot_metrics_vs_size(study, eval_set, folder / f"map_vs_size_{name}.png"),
            ),
            (
                "Hybrid − best baseline vs size",
                plot_hybrid_gain(study, comparisons, eval_set, folder / f"hybrid_gain_{name}.png"),
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
    return out
