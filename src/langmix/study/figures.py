"""Drawing functions on plain numbers: the figures of a study, without the study.

:func:`metric_vs_size`, :func:`hybrid_gain`, :func:`alpha_frontier`, :func:`loss_curves`
and :func:`pair_heatmap` take the plain series defined here and know nothing of the results
format, so each figure can be tested and restyled on its own. :mod:`langmix.study.plots`
reduces a study to these series.

Figures are built on a bare :class:`matplotlib.figure.Figure` with the Agg canvas rather
than through ``pyplot``: no global backend switch, no figure registry to leak memory
across rebuilds, and it works on machines without a display.

Example:
    >>> s = Series("mono", [7e6, 2e7], [0.41, 0.48], err=[0.01, 0.02])  # doctest: +SKIP
    >>> metric_vs_size("plots/map.png", [("mAP mono", [s])], xticks=[(7e6, "L2"), (2e7, "L6")])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from langmix.outputs import atomic_path

__all__ = [
    "PLOT_FORMATS",
    "FrontierPoint",
    "GainSeries",
    "Heatmap",
    "Series",
    "alpha_frontier",
    "hybrid_gain",
    "loss_curves",
    "metric_vs_size",
    "output_settings",
    "pair_heatmap",
    "save_figure",
]

# One column per panel at this width keeps three panels readable on a laptop screen.
_PANEL_WIDTH = 4.6
_PANEL_HEIGHT = 3.8


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


#: Figure file formats matplotlib writes that a publication may ask for.
PLOT_FORMATS = ("png", "pdf", "svg")
# The formats and dpi of the figures being drawn: rendering settings, like matplotlib's own
# rc_context, set for one report build by :func:`output_settings`.
_OUTPUT: ContextVar[tuple[tuple[str, ...], int]] = ContextVar(
    "plot_output", default=(("png",), 120)
)


@contextmanager
def output_settings(formats: Sequence[str] = ("png",), dpi: int = 120) -> Iterator[None]:
    """Write every figure drawn inside in these formats (PNG always: the report links it) and
    at this resolution.

    Raises:
        ValueError: For a format outside :data:`PLOT_FORMATS` or a dpi below 50.

    Example:
        >>> with output_settings(["png", "pdf"], dpi=300):  # doctest: +SKIP
        ...     build_report("runs/x")
    """
    wanted = tuple(dict.fromkeys(["png", *[f.strip().lower() for f in formats if f.strip()]]))
    bad = [f for f in wanted if f not in PLOT_FORMATS]
    if bad:
        raise ValueError(f"unknown plot format(s) {', '.join(bad)}; use {', '.join(PLOT_FORMATS)}")
    if int(dpi) < 50:
        raise ValueError(f"dpi must be at least 50, got {dpi}")
    token = _OUTPUT.set((wanted, int(dpi)))
    try:
        yield
    finally:
        _OUTPUT.reset(token)


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a PNG, and in the other formats :func:`output_settings` asks for
    beside it (same name, their suffix), each atomically (:func:`langmix.outputs.atomic_path`).

    A reader (or a browser previewing the report) never sees half a figure, and an
    interrupted rebuild leaves the previous figure in place.

    Args:
        fig: The figure.
        path: Target ``.png`` path; its folder is created if needed.

    Returns:
        The PNG's path.

    Example:
        >>> save_figure(Figure(), "plots/empty.png")  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # attaches the Agg canvas; savefig then renders without pyplot
    formats, dpi = _OUTPUT.get()
    for fmt in formats:
        with atomic_path(path.with_suffix(f".{fmt}")) as tmp:
            # A fixed SVG hash salt and no PDF creation date: the same figure, the same bytes.
            metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)
            with rc_context({"svg.hashsalt": "langmix"}):
                fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
    return path


# One colour and marker per arm in every figure and panel, so a strategy is recognised at a
# glance anywhere in a report: hybrid in oranges darkening with alpha, the baselines in
# fixed colours (a contrast "− mono" takes its baseline's).
_HYBRID_SHADES = {0.25: "#fdae6b", 0.5: "#e6550d", 0.75: "#a63603"}
_BASELINE_STYLES = (
    ("untrained", "tab:gray", "D"),
    ("pooled", "tab:red", "X"),
    ("random", "tab:red", "X"),
    ("interpolation", "tab:purple", "v"),
    ("synergy", "tab:purple", "v"),
    ("mono", "tab:green", "s"),
    ("cross", "tab:blue", "^"),
)


def arm_style(label: str) -> dict[str, str]:
    """The colour and marker of an arm (or of a contrast against a baseline) by its label.

    Example:
        >>> arm_style("hybrid α=0.5"), arm_style("− mono")["color"]
        ({'color': '#e6550d', 'marker': 'o'}, 'tab:green')
    """
    if label.startswith("hybrid"):
        alpha = label.partition("α=")[2]
        shade = _HYBRID_SHADES.get(float(alpha), "#d94801") if alpha else "#d94801"
        return {"color": shade, "marker": "o"}
    for word, color, marker in _BASELINE_STYLES:
        if word in label:
            return {"color": color, "marker": marker}
    return {"color": "black", "marker": "."}


def _figure(n_panels: int) -> tuple[Figure, list]:
    fig = Figure(figsize=(_PANEL_WIDTH * n_panels, _PANEL_HEIGHT), layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    return fig, list(axes)


def _finish(fig: Figure, axes: list, title: str, path: str | os.PathLike[str]) -> Path:
    """One legend for every arm of every panel, the figure title, and the PNG: how every
    figure ends (panels may hold different arms, e.g. an alpha sweep at some sizes only)."""
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        # Below the panels: beside them it would cover a long title.
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncols=min(len(handles), 7),
            fontsize="small",
        )
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


def metric_vs_size(
    path: str | os.PathLike[str],
    panels: Sequence[tuple[str, Sequence[Series]]],
    *,
    xticks: Sequence[tuple[float, str]],
    title: str = "",
) -> Path:
    """Draw one panel per metric, each a line per strategy over model size.

    With one size, each panel is the arms side by side instead (a point and its error bar
    each): lines over one x position would overprint.

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
    single = len(xticks) == 1
    for ax, (panel_title, lines) in zip(axes, panels, strict=True):
        if single:
            for position, line in enumerate(lines):
                err = [line.err[0]] if line.err is not None else None
                ax.errorbar([position], [line.y[0]], yerr=err, label=line.label,
                            linestyle="none", **arm_style(line.label), capsize=4)  # fmt: skip
            ax.set_title(panel_title)
            _arm_axis(ax, [line.label for line in lines], xticks[0][1])
            continue
        for line in lines:
            ax.errorbar(
                line.x,
                line.y,
                yerr=line.err,
                label=line.label,
                linestyle="--" if line.dashed else "-",
                **arm_style(line.label),
                capsize=3,
            )
        ax.set_title(panel_title)
        _size_axis(ax, xticks)
    return _finish(fig, axes, title, path)


def _arm_axis(ax, labels: Sequence[str], size: str) -> None:
    """The x axis of a single-size panel: one slot per arm, named, the size in the label."""
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize="small")
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_xlabel(size.replace("\n", ", "))
    ax.grid(True, axis="y", alpha=0.3)


def hybrid_gain(
    path: str | os.PathLike[str],
    panels: Sequence[tuple[str, Sequence[GainSeries]]],
    *,
    xticks: Sequence[tuple[float, str]],
    title: str = "",
    ylabel: str = "hybrid − baseline",
) -> Path:
    """Draw contrasts of hybrid over model size, one panel per metric.

    With one size, the contrasts stand side by side, each a point with its interval as an
    error bar.

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
    single = len(xticks) == 1
    for ax, (panel_title, series) in zip(axes, panels, strict=True):
        ax.axhline(0.0, color="black", linewidth=0.8)
        if single:
            # One size: a band over one x is invisible; each contrast is a point with its
            # interval as an error bar, side by side.
            for position, gain in enumerate(series):
                below, above = gain.diff[0] - gain.low[0], gain.high[0] - gain.diff[0]
                ax.errorbar([position], [gain.diff[0]], yerr=[[below], [above]],
                            label=gain.label, linestyle="none", **arm_style(gain.label),
                            capsize=4)  # fmt: skip
            ax.set_title(panel_title)
            ax.set_ylabel(ylabel)
            _arm_axis(ax, [gain.label for gain in series], xticks[0][1])
            continue
        for gain in series:
            style = arm_style(gain.label)
            ax.plot(gain.x, gain.diff, label=gain.label, **style)
            ax.fill_between(gain.x, gain.low, gain.high, color=style["color"], alpha=0.15)
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
    frontier (random) are drawn as lone markers. Arms are told apart by colour and marker
    (:func:`arm_style`) in the figure's legend, not by text beside the points, which
    overprints where arms lie close.

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
                capsize=2,
                linestyle="none",
                label=point.label,
                **arm_style(point.label),
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
        labelled: set[str] = set()
        for label, steps, losses in curves:
            kwargs: dict[str, Any] = {"linewidth": 1, "alpha": 0.8, **arm_style(label)}
            kwargs["markersize"] = 3
            if label not in labelled:  # one legend entry per arm, not per seed
                kwargs["label"] = label
                labelled.add(label)
            ax.plot(steps, losses, **kwargs)
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
