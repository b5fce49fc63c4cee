"""Figures at one model size: the arms side by side, each interval visible (issue 24)."""

from __future__ import annotations

import pytest

from langmix.study import figures
from langmix.study.figures import GainSeries, Series, hybrid_gain, metric_vs_size

SIZE = [(2.1e6, "L2\n2.1M")]


@pytest.fixture
def drawn(monkeypatch):
    """The figures drawn, instead of their files."""
    kept = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: kept.append(fig) or path)
    return kept


def _bar_extent(ax, index: int) -> tuple[float, float]:
    """The lowest and highest y of the error bar drawn at slot ``index``."""
    (segments,) = ax.containers[index].lines[2]
    (low, high) = segments.get_segments()[0][:, 1]
    return float(low), float(high)


def test_one_size_puts_each_arm_in_its_own_slot(drawn):
    lines = [
        Series("mono", [2.1e6], [0.40], [0.01]),
        Series("hybrid α=0.5", [2.1e6], [0.43], [0.02]),
    ]
    metric_vs_size("m.png", [("mAP multi", lines)], xticks=SIZE)
    (ax,) = drawn[0].axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["mono", "hybrid α=0.5"]
    assert ax.get_xlabel() == "L2, 2.1M"
    assert _bar_extent(ax, 1) == pytest.approx((0.41, 0.45))


def test_one_size_draws_each_contrast_interval_as_an_error_bar(drawn):
    gains = [GainSeries("− mono", [2.1e6], [0.014], [0.011], [0.020])]
    hybrid_gain("g.png", [("mAP multi", gains)], xticks=SIZE)
    (ax,) = drawn[0].axes
    # A band over one x would have no width: the interval would not show at all.
    assert _bar_extent(ax, 0) == pytest.approx((0.011, 0.020))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["− mono"]
