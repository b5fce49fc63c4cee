"""Two size families compared claim by claim (synthetic studies from test_report's builder).

The second family is the first with one change: hybrid's gain at the largest size is
−0.05 instead of +0.10, drawn with the same noise. So every other cell is the same run in
both, every paired difference is exactly 0 at the two smaller sizes, and at the largest size (and in every slope) it equals the gap
computed here, independently, from the per-query arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
import test_report as synthetic_study  # tests/study is on sys.path (pytest's rootdir import)

from langmix.study.families import compare_families
from langmix.study.results import load_study


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    ours = synthetic_study.make_study(
        tmp_path_factory.mktemp("ours"), eval_sets=(synthetic_study.LAREQA,)
    )
    with pytest.MonkeyPatch.context() as patch:
        gains = dict(synthetic_study.HYBRID_GAIN)
        gains[("L12", 0.5)] = -0.05
        patch.setattr(synthetic_study, "HYBRID_GAIN", gains)
        theirs = synthetic_study.make_study(
            tmp_path_factory.mktemp("theirs"), eval_sets=(synthetic_study.LAREQA,)
        )
    found = compare_families(
        load_study(ours.directory), load_study(theirs.directory), n_resamples=800
    )
    return ours, theirs, found


def test_every_claim_is_paired(families):
    _, _, found = families
    kinds = {row.ours.kind for row in found.rows}
    assert kinds == {"effect", "synergy", "slope"}
    for row in found.rows:
        assert row.ours.kind == row.theirs.kind and row.ours.arm == row.theirs.arm
        assert row.ours.against == row.theirs.against and row.ours.metric == row.theirs.metric
    assert found.notes == []


def test_where_nothing_changed_the_families_agree_exactly(families):
    _, _, found = families
    small = [r for r in found.rows if r.ours.size is not None and r.ours.size.label != "L12"]
    assert small
    for row in small:
        # Both studies hold the very same runs there: one cell of the draw, so the
        # difference is exactly 0 with no uncertainty (not 0 ± twice its seed noise).
        assert row.difference.value == 0.0 and row.difference.se == 0.0
        assert row.agree and not row.differs


@pytest.mark.parametrize("metric", ["map_multi", "map_mono"])
def test_differences_equal_the_independent_computation(families, metric):
    ours, theirs, found = families
    lareqa = synthetic_study.LAREQA
    for against in ("mono", "cross", "random", "interpolation"):
        row = next(
            r
            for r in found.rows
            if r.ours.metric == metric
            and r.ours.against == against
            and r.ours.size is not None
            and r.ours.size.label == "L12"
        )
        expected = ours.contrast(lareqa, "L12", 0.5, against, metric) - theirs.contrast(
            lareqa, "L12", 0.5, against, metric
        )
        assert row.difference.value == pytest.approx(expected, abs=1e-9)
        assert expected > 0.05 and row.differs
        slope = next(
            r
            for r in found.rows
            if r.ours.kind == "slope" and r.ours.metric == metric and r.ours.against == against
        )
        gap = ours.slope(lareqa, 0.5, against, metric) - theirs.slope(lareqa, 0.5, against, metric)
        assert slope.difference.value == pytest.approx(gap, abs=1e-9)
    # Hybrid's verdict at the largest size flips against mono: better in ours, worse in theirs.
    flipped = [
        r
        for r in found.rows
        if r.ours.size is not None and r.ours.size.label == "L12" and not r.agree
    ]
    assert flipped and found.agreeing == len(found.rows) - len(
        [r for r in found.rows if not r.agree]
    )


def test_differences_are_holm_adjusted_as_one_family(families):
    _, _, found = families
    p = np.array([r.difference.p_value for r in found.rows])
    adjusted = np.array([r.p_holm for r in found.rows])
    assert np.all(adjusted >= p - 1e-15) and np.all(adjusted <= 1.0)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= -1e-15)  # Holm keeps the order of p-values


def test_the_report_pairs_the_families_and_says_so_first(families):
    from langmix.study.report import build_report

    ours, theirs, found = families
    toml = ours.directory / "study.toml"
    original = toml.read_text(encoding="utf-8")
    try:
        toml.write_text(
            original.replace("[study]\n", f'[study]\ncompare_with = "{theirs.directory.name}"\n'),
            encoding="utf-8",
        )
        report = build_report(ours.directory, n_resamples=800).read_text(encoding="utf-8")
        answer = report[report.index("## Answer") : report.index("## What was run")]
        assert f"verdicts agree on {found.agreeing} of the {len(found.rows)} claims" in answer
        section = report[report.index("## Agreement with") :]
        assert f"Verdicts agree on {found.agreeing} of {len(found.rows)} claims." in section
        # The largest size's effect against mono differs and flips: listed as notable.
        notable = section[: section.index("### The headline metric")]
        assert "hybrid α=0.5 − mono at L12 |" in notable and "**yes**" in notable
        toml.write_text(original.replace("[study]\n", '[study]\ncompare_with = "nowhere"\n'))
        report = build_report(ours.directory, n_resamples=200).read_text(encoding="utf-8")
        assert "nowhere/results.jsonl is not there" in report
    finally:
        toml.write_text(original, encoding="utf-8")
