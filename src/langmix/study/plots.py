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
from langmix.study.comparisons import CONFIDENCE, Comparisons, is_test_set
from langmix.study.results import METRIC_NAMES, Size, Study, cell_summary, format_count

__all__ = [
    "PLOTS",
    "FrontierPoint",
    "GainSeries",
    "Heatmap",
    "Series",
    "alpha_frontier",
    "draw_plots",
    "hybrid_gain",
    "loss_curves",
    "metric_vs_size",
    "pair_heatmap",
    "plot_frontier",
    "plot_heatmap",
    "plot_hybrid_gain",
    "plot_metrics_vs_size",
    "plot_rank_distance_vs_size",
    "plot_validation_curves",
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
    """One contrast (hybrid − a baseline, or a synergy margin) across sizes, with its band.

    Attributes:
        label: Legend entry (e.g. ``"− mono"``).
        x: Model sizes (non-embedding parameters), ascending.
        diff: The contrast at each size.
        low: Lower confidence bound at each size.
        high: Upper confidence bound at each size.

    Example:
        >>> GainSeries("− mono", [7e6], [0.01], [0.0], [0.02]).label
        '− mono'
    """

    label: str
    x: Sequence[float]
    diff: Sequence[float]
    low: Sequence[float]
    high: Sequence[float]


@dataclass(frozen=True)
class FrontierPoint:
    """One arm in a plane of two metrics, with its intervals.

    Attributes:
        label: The arm (``mono``, ``hybrid α=0.25``, ...).
        alpha: Share of mono batches: 1 for mono, 0 for cross, α for hybrid, ``None`` for
            arms off the frontier (random, untrained).
        x: Headline on the x metric, and its interval ``x_low``..``x_high``.
        y: Headline on the y metric, and its interval ``y_low``..``y_high``.
    """

    label: str
    alpha: float | None
    x: float
    x_low: float
    x_high: float
    y: float
    y_low: float
    y_high: float


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


def _finish(fig: Figure, axes: list, title: str, path: str | os.PathLike[str]) -> Path:
    """The legend of the first panel, the figure title, and the PNG: how every figure ends."""
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


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
    return _finish(fig, axes, title, path)


def hybrid_gain(
    path: str | os.PathLike[str],
    panels: Sequence[tuple[str, Sequence[GainSeries]]],
    *,
    xticks: Sequence[tuple[float, str]],
    title: str = "",
    ylabel: str = "hybrid − baseline",
) -> Path:
    """Draw contrasts of hybrid over model size, one panel per metric.

    The confidence interval is a shaded band and the zero line is drawn, so "significant"
    reads as "the band does not touch the line".

    Args:
        path: Output PNG.
        panels: ``(panel title, series)`` pairs.
        xticks: ``(size, label)`` of every model.
        title: Figure title.
        ylabel: The y axis label.

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
            ax.fill_between(gain.x, gain.low, gain.high, color=line.get_color(), alpha=0.15)
        ax.set_title(panel_title)
        ax.set_ylabel(ylabel)
        _size_axis(ax, xticks)
    return _finish(fig, axes, title, path)


def alpha_frontier(
    path: str | os.PathLike[str],
    panels: Sequence[tuple[str, str, str, Sequence[FrontierPoint]]],
    *,
    title: str = "",
) -> Path:
    """Draw the strategies in planes of two metrics: the α frontier against the straight line.

    Each panel joins cross (α = 0), the hybrid arms by α and mono (α = 1) with a solid line,
    and draws the straight line between the two pure strategies dashed: a hybrid point
    above and right of the dashed line is synergy, on it interpolation. Arms off the
    frontier (random) are drawn as lone markers.

    Args:
        path: Output PNG.
        panels: ``(panel title, x label, y label, points)`` per panel.
        title: Figure title.

    Returns:
        The path written.

    Example:
        >>> p = [FrontierPoint("mono", 1.0, .5, .49, .51, .2, .19, .21),
        ...      FrontierPoint("cross", 0.0, .4, .39, .41, .3, .29, .31)]
        >>> alpha_frontier("f.png", [("L2", "mAP mono", "mAP multi", p)])  # doctest: +SKIP
    """
    fig, axes = _figure(len(panels))
    for ax, (panel_title, xlabel, ylabel, points) in zip(axes, panels, strict=True):
        on = sorted((p for p in points if p.alpha is not None), key=lambda p: p.alpha)
        ends = [p for p in on if p.alpha in (0.0, 1.0)]
        if len(ends) == 2:
            ax.plot(
                [e.x for e in ends],
                [e.y for e in ends],
                linestyle="--",
                color="grey",
                linewidth=1,
                label="straight line (interpolation)",
            )
        if on:
            ax.plot([p.x for p in on], [p.y for p in on], color="tab:blue", linewidth=1)
        for point in points:
            ax.errorbar(
                point.x,
                point.y,
                xerr=[[point.x - point.x_low], [point.x_high - point.x]],
                yerr=[[point.y - point.y_low], [point.y_high - point.y]],
                marker="o" if point.alpha is not None else "s",
                capsize=2,
                linestyle="none",
            )
            ax.annotate(
                point.label,
                (point.x, point.y),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize="x-small",
            )
        ax.set_title(panel_title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    return _finish(fig, axes, title, path)


def loss_curves(
    path: str | os.PathLike[str],
    panels: Sequence[tuple[str, Sequence[tuple[str, Sequence[int], Sequence[float]]]]],
    *,
    title: str = "",
) -> Path:
    """Draw validation-loss curves, one panel per size, a thin line per (arm, seed).

    Args:
        path: Output PNG.
        panels: ``(panel title, [(arm label, steps, losses), ...])`` per panel.
        title: Figure title.

    Returns:
        The path written.

    Example:
        >>> loss_curves("v.png", [("L2", [("mono", [0, 20], [2.9, 2.5])])])  # doctest: +SKIP
    """
    fig, axes = _figure(len(panels))
    for ax, (panel_title, curves) in zip(axes, panels, strict=True):
        colours: dict[str, Any] = {}
        for label, steps, losses in curves:
            kwargs: dict[str, Any] = {"linewidth": 1, "marker": ".", "alpha": 0.8}
            if label in colours:
                kwargs["color"] = colours[label]
            else:
                kwargs["label"] = label
            (line,) = ax.plot(steps, losses, **kwargs)
            colours.setdefault(label, line.get_color())
        ax.set_title(panel_title)
        ax.set_xlabel("step")
        ax.set_ylabel("validation loss")
        ax.grid(True, alpha=0.3)
    return _finish(fig, axes, title, path)


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
