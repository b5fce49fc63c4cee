"""What a family of tested contrasts may conclude: Holm levels, equivalence, lines that fit.

:mod:`langmix.study.inference` gives each contrast an estimate, a seed-aware interval and
a p-value. This module turns a *family* of them into verdicts a reviewer accepts:

* **Holm-level intervals** (:func:`holm_levels`). Holm's step-down procedure tests the
  ``j``-th smallest p-value at ``alpha / (m - j + 1)`` while every smaller one was
  rejected, and every hypothesis from the first non-rejected one on at that one's level.
  The interval of each contrast at the level it was tested excludes 0 exactly when Holm
  rejects it, so a verdict never sits beside an interval that contradicts it. Each is no
  wider than the Bonferroni interval (``alpha / m``), which covers all contrasts jointly.
* **Equivalence** (:func:`tost`): "no difference" is claimed only when
  the two one-sided tests against ``± margin`` reject (Holm-adjusted within the family),
  never from a non-significant difference test.
* **Minimum detectable effect** (:func:`minimum_detectable_effect`)
  at 80% power and the family's first Holm level, printed beside every non-significant
  verdict: what the study could have seen.
* **Lines that fit** (:func:`line_fit`). A slope over sizes is a claim about a line. Its
  lack of fit is tested on the residuals of the per-size values from the least-squares
  line (chi-squared with ``k - 2`` df, using the joint covariance of the per-size
  estimates), and its interval is the wider of the sampling interval and the classical
  residual interval (t with ``k - 2`` df), which also holds when the sizes scatter about
  the line by more than their sampling noise.

numpy and scipy only, like the rest of the statistics.

Example:
    >>> holm_levels([0.001, 0.2, 0.03]).round(4).tolist()
    [0.0167, 0.025, 0.025]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from langmix.study.inference import Estimate

__all__ = [
    "POWER",
    "LackOfFit",
    "holm_levels",
    "interval_at",
    "line_fit",
    "minimum_detectable_effect",
    "tost",
]

#: Power at which the minimum detectable effect is stated.
POWER = 0.8


def minimum_detectable_effect(
    se: float, df: float, *, alpha: float = 0.05, power: float = 0.8, tests: int = 1
) -> float:
    """The true difference a two-sided t-test detects with probability ``power``.

    ``(t_{1 - a/2, df} + t_{power, df}) * se`` with ``a = alpha / tests``: with ``tests`` > 1
    the level of the first step of Holm's procedure over that many tests (the strictest one
    a claim may face).

    Args:
        se: Standard error of the estimate.
        df: Its degrees of freedom (``inf`` for a normal estimate).
        alpha: Two-sided level.
        power: Wanted probability of rejecting, in (0.5, 1).
        tests: Number of tests in the Holm family.

    Raises:
        ValueError: For a negative ``se``, ``df`` <= 0, or levels out of range.

    Example:
        >>> round(minimum_detectable_effect(1.0, math.inf), 3)
        2.802
    """
    if not (math.isfinite(se) and se >= 0) or not df > 0:
        raise ValueError(f"se must be finite and >= 0 and df > 0, got se={se}, df={df}")
    if not 0 < alpha < 1 or not 0.5 < power < 1 or tests < 1:
        raise ValueError(
            f"need 0 < alpha < 1, 0.5 < power < 1, tests >= 1; got {alpha}, {power}, {tests}"
        )
    level = alpha / tests
    return float((stats.t.ppf(1 - level / 2, df) + stats.t.ppf(power, df)) * se)


def tost(value: float, se: float, df: float, *, margin: float) -> float:
    """p-value of the two one-sided tests that ``|difference| >= margin``.

    Below ``alpha`` the difference is *equivalent to zero within the margin*; this is the
    same as the ``1 - 2 alpha`` interval lying inside ``(-margin, margin)``.

    Args:
        value: The estimate.
        se: Its standard error.
        df: Its degrees of freedom.
        margin: The equivalence margin (positive, in the metric's units).

    Raises:
        ValueError: For a margin that is not positive, a negative ``se`` or ``df`` <= 0.

    Example:
        >>> round(tost(0.0, 0.001, math.inf, margin=0.002), 4)
        0.0228
    """
    if not margin > 0 or se < 0 or not df > 0:
        raise ValueError(f"need margin > 0, se >= 0, df > 0; got {margin}, {se}, {df}")
    if se == 0:
        return 0.0 if abs(value) < margin else 1.0
    lower = stats.t.sf((value + margin) / se, df)  # H0: difference <= -margin
    upper = stats.t.cdf((value - margin) / se, df)  # H0: difference >= +margin
    return float(max(lower, upper))


def holm_levels(p_values: Sequence[float], alpha: float = 0.05) -> np.ndarray:
    """The two-sided level at which Holm's step-down procedure tests each hypothesis.

    Args:
        p_values: The family's unadjusted p-values (NaN: not tested, level NaN).
        alpha: Family-wise error rate.

    Returns:
        ``float64[m]`` levels: a hypothesis is rejected by Holm exactly when its p-value is
        at most its level.

    Example:
        >>> holm_levels([0.01, 0.04, 0.03, 0.005]).round(4).tolist()
        [0.0167, 0.025, 0.025, 0.0125]
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = idx.size
    order = idx[np.argsort(p[idx], kind="stable")]
    for j, i in enumerate(order):
        level = alpha / (m - j)
        if p[i] > level:  # Holm stops here: this and every later one face this level
            out[order[j:]] = level
            break
        out[i] = level
    return out


def interval_at(e: Estimate, level: float) -> tuple[float, float]:
    """The ``1 - level`` t interval of an estimate, on its own degrees of freedom.

    Example:
        >>> e = Estimate(0.1, 0.02, 0.06, 0.14, 0.001, math.inf, 0.0, 0.02, 0.95, 100)
        >>> [round(v, 4) for v in interval_at(e, 0.05)]
        [0.0608, 0.1392]
    """
    if not e.se > 0.0 or math.isnan(level):
        return e.value, e.value
    half = float(stats.t.ppf(1.0 - level / 2.0, e.df)) * e.se
    return e.value - half, e.value + half


@dataclass(frozen=True)
class LackOfFit:
    """How far the per-size values of a contrast stray from their least-squares line.

    Attributes:
        chi2: ``r' (M S M)^+ r``: residuals ``r`` of the per-size values from the line,
            ``M`` the residual projection and ``S`` the joint covariance of the per-size
            estimates (from the shared bootstrap replicates).
        df: ``k - 2`` for ``k`` sizes.
        p_value: ``P(chi2_df > chi2)``; small: the sizes do not lie on a line.
        residual_se: The classical slope standard error from the residual spread,
            ``sqrt(RSS / (k - 2) / Sxx)``.

    Example:
        >>> LackOfFit(9.2, 2, 0.01, 0.006).rejected
        True
    """

    chi2: float
    df: int
    p_value: float
    residual_se: float

    @property
    def rejected(self) -> bool:
        """Whether a line is rejected at the 5% level."""
        return self.p_value < 0.05


def line_fit(
    slope: Estimate, x: Sequence[float], values: Sequence[float], covariance: np.ndarray
) -> tuple[Estimate, LackOfFit]:
    """The slope's lack of fit and its interval widened by the residual spread.

    Args:
        slope: The slope's sampling estimate (:func:`~langmix.study.inference.estimate` of
            the slope contrast).
        x: Predictor per size (log2 non-embedding parameters).
        values: The contrast's point value per size.
        covariance: ``[k, k]`` covariance of the per-size contrast estimates.

    Returns:
        The slope estimate to report (the sampling one, or, when the residual spread is
        larger, one with the residual standard error on ``k - 2`` df) and the lack of fit.

    Example:
        >>> e = Estimate(0.01, 0.001, 0.008, 0.012, 1e-5, 50.0, 0.001, 0.0, 0.95, 100)
        >>> out, lof = line_fit(e, [1, 2, 3, 4], [0.0, 0.03, 0.0, 0.03], np.eye(4) * 1e-6)
        >>> lof.rejected, out.df, out.se > e.se
        (True, 2.0, True)
    """
    xs = np.asarray(x, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    k = xs.shape[0]
    if k < 3:
        raise ValueError(f"a lack-of-fit test needs at least 3 sizes, got {k}")
    design = np.stack([np.ones(k), xs], axis=1)
    hat = design @ np.linalg.pinv(design)
    resid_proj = np.eye(k) - hat
    residuals = resid_proj @ y
    spread = resid_proj @ np.asarray(covariance, dtype=np.float64) @ resid_proj
    chi2 = float(residuals @ np.linalg.pinv(spread, rcond=1e-10, hermitian=True) @ residuals)
    df = k - 2
    centred = xs - xs.mean()
    residual_se = math.sqrt(float(residuals @ residuals) / df / float(centred @ centred))
    lack = LackOfFit(chi2, df, float(stats.chi2.sf(chi2, df)), residual_se)
    if residual_se <= slope.se:
        return slope, lack
    t = float(stats.t.ppf(0.5 + slope.confidence / 2.0, df))
    widened = Estimate(
        value=slope.value,
        se=residual_se,
        ci_low=slope.value - t * residual_se,
        ci_high=slope.value + t * residual_se,
        p_value=float(min(1.0, 2.0 * stats.t.sf(abs(slope.value) / residual_se, df))),
        df=float(df),
        se_seed=slope.se_seed,
        se_question=slope.se_question,
        confidence=slope.confidence,
        n_resamples=slope.n_resamples,
    )
    return widened, lack
