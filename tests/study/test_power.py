"""The minimum detectable effect against simulated power, and TOST's error rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from langmix.study.power import minimum_detectable_effect, tost


def _simulate(true: float, sigma: float, n: int, sims: int, seed: int):
    """``sims`` one-sample t studies of ``n`` draws from N(true, sigma): estimate, se, df."""
    rng = np.random.default_rng(seed)
    draws = rng.normal(true, sigma, size=(sims, n))
    return draws.mean(axis=1), draws.std(axis=1, ddof=1) / math.sqrt(n), n - 1


@pytest.mark.parametrize(("n", "tests"), [(6, 1), (12, 1), (12, 10)])
def test_mde_is_detected_with_the_stated_power(n, tests):
    """At a true difference equal to the MDE (from the true se), a two-sided t-test at
    alpha / tests rejects in 80 % +- 3 points of 4000 simulated studies."""
    sigma = 0.01
    se_true = sigma / math.sqrt(n)
    mde = minimum_detectable_effect(se_true, n - 1, tests=tests)
    value, se, df = _simulate(mde, sigma, n, 4000, seed=n + tests)
    p = 2 * stats.t.sf(np.abs(value) / se, df)
    power = float(np.mean(p < 0.05 / tests))
    # The formula is the usual approximation (it ignores the noncentral t's skew); with few
    # df it is slightly conservative, never optimistic by more than the tolerance.
    assert 0.77 <= power <= 0.86, power


def test_mde_grows_with_the_holm_family_and_shrinks_with_df():
    base = minimum_detectable_effect(1.0, 10.0)
    assert minimum_detectable_effect(1.0, 10.0, tests=10) > base
    assert minimum_detectable_effect(1.0, 1000.0) < base
    with pytest.raises(ValueError, match="df > 0"):
        minimum_detectable_effect(1.0, 0.0)
    with pytest.raises(ValueError, match="power"):
        minimum_detectable_effect(1.0, 5.0, power=0.3)


def test_tost_error_rates():
    """At a true difference on the margin, TOST declares equivalence in at most 5 % of
    studies; at a true zero with a margin of three standard errors, in most of them."""
    sigma, n, margin = 0.01, 8, 0.006
    value, se, df = _simulate(margin, sigma, n, 4000, seed=1)
    wrong = np.mean([tost(v, s, df, margin=margin) < 0.05 for v, s in zip(value, se, strict=True)])
    assert wrong <= 0.055, wrong
    value, se, df = _simulate(0.0, sigma, n, 2000, seed=2)
    right = np.mean(
        [
            tost(v, s, df, margin=3 * sigma / math.sqrt(n)) < 0.05
            for v, s in zip(value, se, strict=True)
        ]
    )
    assert right > 0.5, right


def test_tost_equals_the_interval_rule():
    """p < alpha exactly when the (1 - 2 alpha) interval lies inside the margins."""
    for value in (-0.004, -0.001, 0.0, 0.002, 0.0035):
        se, df, margin = 0.001, 12.0, 0.005
        half = stats.t.ppf(0.95, df) * se
        inside = -margin < value - half and value + half < margin
        assert (tost(value, se, df, margin=margin) < 0.05) == inside
    with pytest.raises(ValueError, match="margin > 0"):
        tost(0.0, 0.001, 5.0, margin=0.0)


def test_power_table_of_a_published_study():
    """``langmix power`` on the committed cpu-distilled: planning the measured design gives
    about the measured MDE (the plan's degrees of freedom are modelled, the measured ones
    are the estimate's own), and more seeds give a smaller one."""
    from pathlib import Path

    from langmix.cli import main
    from langmix.study.power import power_table

    study = Path(__file__).resolve().parents[2] / "docs" / "results" / "cpu-distilled"
    lines = power_table(str(study), eval_set="xquad-r[:12]", n_resamples=500)
    rows = [line.split(" | ") for line in lines if line.startswith("| xquad-r")]
    assert len(rows) == 8  # 4 sizes x (mono, cross)
    for row in rows:
        assert row[3] == "3"
        assert abs(float(row[6]) - float(row[5])) <= 0.2 * float(row[5])
    more = power_table(str(study), eval_set="xquad-r[:12]", seeds=12, n_resamples=500)
    planned = [float(line.split(" | ")[6]) for line in more if line.startswith("| xquad-r")]
    assert all(p < float(r[5]) for p, r in zip(planned, rows, strict=True))
    assert main(["power", str(study), "--eval-set", "nothing"]) == 0


def test_the_report_power_section_plans_each_primary_effect():
    """The report's power section: one row per primary effect, its MDE the verdict's, and
    seeds for the target that never grow with more questions (checked against
    seeds_needed, with the article groups as the question part's units)."""
    from pathlib import Path

    from langmix.study.comparisons import compute_comparisons
    from langmix.study.power import QUESTION_SCALES, section_power, seeds_needed
    from langmix.study.results import load_study

    study = load_study(Path(__file__).resolve().parents[2] / "docs" / "results" / "cpu-distilled")
    comparisons = compute_comparisons(study, n_resamples=300)
    lines = section_power(study, comparisons, target=0.005)
    rows = [line.strip("| ").split(" | ") for line in lines if line.startswith("| L")]
    primary = [t for t in comparisons.tests if t.family == "primary" and t.kind == "effect"]
    assert len(rows) == len(primary) == 8  # 4 sizes x (mono, cross)
    for row, test in zip(rows, primary, strict=True):
        assert row[0] == test.size.label and row[1].endswith(f"− {test.against}")
        assert float(row[4]) == pytest.approx(test.mde, abs=5e-5)
        needed = [None if cell == "—" else int(cell) for cell in row[5:]]
        assert len(needed) == len(QUESTION_SCALES)
        known = [n for n in needed if n is not None]
        assert known == sorted(known, reverse=True)  # more questions never need more seeds
        e = test.estimate
        units = comparisons.articles.get(test.eval_set) or comparisons.clusters[test.eval_set]
        assert needed[0] == seeds_needed(
            0.005,
            e.se_seed,
            e.se_question,
            seeds_now=int(row[2]),
            clusters=units,
            tests=test.family_size,
            most=50,
        )
    reached = sum(t.mde <= 0.005 for t in primary)
    assert f"{reached} of 8 primary effects reached an MDE of at most 0.005." in lines
    from langmix.study.answer import power_sentence

    sentence = power_sentence(study, comparisons)
    assert sentence.startswith(f"**Power:** {reached} of 8 primary effects reached")
    worst = max(t.mde for t in primary)
    assert (f"the largest is {worst:.4f}" in sentence) == (reached < 8)
