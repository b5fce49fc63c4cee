"""langmix publish: the reduced results of a study, and a report that rebuilds from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_report import LAREQA, MIRACL, _lareqa_arrays, make_study

from langmix.cli import main
from langmix.data.errors import DataError
from langmix.outputs import OutputDirError, claim_output_dir
from langmix.study.inference import draw_headlines
from langmix.study.paired import compare
from langmix.study.publish import KEPT_ARRAYS, publish_study, reduce_per_query
from langmix.study.report import build_report
from langmix.study.results import load_rows
from langmix.study.statistics import PER_QUESTION, headline, units


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("publish")
    study = root / "study"
    study.mkdir()
    make_study(study, eval_sets=(LAREQA, MIRACL), seeds=[0, 1])
    (study / "cells" / "L2" / "mono-s0" / "train").mkdir(parents=True, exist_ok=True)
    (study / "cells" / "L2" / "mono-s0" / "train" / "big.bin").write_bytes(b"\0" * 4096)
    target = root / "docs" / "results" / "synthetic"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("the user's own notes")
    publish_study(study, target, overwrite=True)  # not an earlier publication: --overwrite
    return study, target


def test_publication_holds_the_rows_and_only_the_tested_arrays(published):
    study, target = published
    rows = load_rows(study / "results.jsonl").rows
    copied = load_rows(target / "results.jsonl")
    assert copied.rows == rows and not copied.skipped  # the cut line and stale duplicate go
    assert (target / "study.toml").read_bytes() == (study / "study.toml").read_bytes()
    # --overwrite replaced the publication files only: the user's notes stay.
    assert (target / "notes.txt").read_text() == "the user's own notes"
    assert not list(target.rglob("*.bin"))  # training state is not published
    for row in rows:
        with np.load(target / row["per_query"]) as npz:
            arrays = {k: npz[k] for k in npz.files}
        assert set(arrays) <= KEPT_ARRAYS
        assert all(a.dtype != np.float64 for a in arrays.values())
        # The reduced arrays still give the row's headlines (to float32 rounding).
        for metric in ("map_multi", "map_cross", "rank_distance", "ndcg@10"):
            if metric in row["metrics"]:
                assert headline(arrays, metric) == pytest.approx(
                    row["metrics"][metric], rel=1e-6, abs=1e-6
                )


def test_publication_rebuilds_to_the_same_report(published, tmp_path):
    _, target = published
    copy = tmp_path / "copy"
    shutil.copytree(target, copy)
    assert build_report(copy).read_text() == (target / "report.md").read_text()


def test_a_missing_per_query_file_is_named_and_nothing_is_replaced(published, tmp_path):
    study, target = published
    broken = tmp_path / "broken"
    shutil.copytree(study, broken)
    row = json.loads((broken / "results.jsonl").read_text().splitlines()[3])
    (broken / row["per_query"]).unlink()
    before = (target / "report.md").read_text()
    with pytest.raises(DataError, match="per-query file missing") as error:
        publish_study(broken, target, overwrite=True)
    assert row["per_query"] in str(error.value)
    assert (target / "report.md").read_text() == before


def test_cli_publish(published, tmp_path, capsys):
    study, _ = published
    assert main(["publish", str(study), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.md").is_file()
    assert main(["publish", str(study)]) == 2
    assert "usage: langmix publish" in capsys.readouterr().err


# ------------------------------------------------------------ question-level reduction

TESTED_LAREQA = ("map_multi", "map_mono", "map_cross", "rank_distance")


def _parallel_file(path: Path, quality: float, seed: int, **changes) -> dict:
    """A fully parallel LAReQA per-query file (30 questions x 4 languages, 6 articles)."""
    rng = np.random.default_rng(seed)
    arrays = _lareqa_arrays(quality, np.random.default_rng(0).normal(0, 0.1, 30), rng)
    question = np.repeat(np.arange(30), len(arrays["languages"]))
    arrays["article_groups"] = np.array([f"article{q % 6}" for q in question])
    arrays.update(changes)
    np.savez(path, **arrays)
    return arrays


def _reduced(tmp_path: Path, name: str, arrays_path: Path) -> dict:
    out = tmp_path / f"{name}.reduced.npz"
    reduce_per_query(arrays_path, out)
    with np.load(out) as npz:
        return {k: npz[k] for k in npz.files}


def test_a_fully_parallel_file_keeps_one_value_per_question_and_every_statistic(tmp_path):
    full = {q: _parallel_file(tmp_path / f"{q}.npz", q, i) for i, q in enumerate((0.5, 0.6))}
    reduced = {q: _reduced(tmp_path, str(q), tmp_path / f"{q}.npz") for q in full}
    for arrays in reduced.values():
        assert bool(arrays[PER_QUESTION]) and arrays["parallel_ids"].shape == (30,)
        assert arrays["cross_ap"].shape == (30,) and "query_lang" not in arrays
        assert np.unique(arrays["article_groups"]).size == 6
    for metric in TESTED_LAREQA:
        for q in full:  # the headline, to float32 rounding
            assert headline(reduced[q], metric) == pytest.approx(
                headline(full[q], metric), rel=1e-6
            )
        # The two-level bootstrap (article and question draws) and the paired tests give
        # the same replicates: they depend on the questions' means only.
        for articles in (True, False):
            draws = [
                draw_headlines(
                    units(form[0.5], metric),
                    {q: units(a, metric).values for q, a in form.items()},
                    n_resamples=300,
                    articles=articles,
                )
                for form in (full, reduced)
            ]
            assert draws[0].n_articles == draws[1].n_articles == (6 if articles else 0)
            np.testing.assert_allclose(draws[0].replicates, draws[1].replicates, rtol=1e-6)
        ours, theirs = (compare(f[0.6], f[0.5], metric, n_resamples=300) for f in (full, reduced))
        assert ours.p_value == theirs.p_value
        assert (ours.ci_low, ours.ci_high) == pytest.approx((theirs.ci_low, theirs.ci_high))


def test_reducing_a_reduced_file_changes_nothing(tmp_path):
    _parallel_file(tmp_path / "a.npz", 0.5, 0)
    once = _reduced(tmp_path, "once", tmp_path / "a.npz")
    twice = _reduced(tmp_path, "twice", tmp_path / "once.reduced.npz")
    assert once.keys() == twice.keys()
    assert all(np.array_equal(once[k], twice[k]) for k in once)


@pytest.mark.parametrize("gap", ["missing translation", "undefined value"])
def test_a_file_that_is_not_fully_parallel_stays_per_query(tmp_path, gap):
    arrays = _parallel_file(tmp_path / "a.npz", 0.5, 0)
    if gap == "missing translation":  # MLQA-R: not every question in every language
        keep = np.arange(arrays["query_lang"].size) != 5
        arrays = {k: (v[keep] if k != "languages" else v) for k, v in arrays.items()}
    else:
        arrays["cross_ap"][3, (arrays["query_lang"][3] + 1) % 4] = np.nan
    np.savez(tmp_path / "a.npz", **arrays)
    reduced = _reduced(tmp_path, "a", tmp_path / "a.npz")
    assert PER_QUESTION not in reduced and reduced["cross_ap"].ndim == 2
    for metric in TESTED_LAREQA:
        assert headline(reduced, metric) == pytest.approx(headline(arrays, metric), rel=1e-6)


def test_a_question_level_file_of_the_wrong_shape_is_refused():
    bad = {"parallel_ids": np.arange(3), PER_QUESTION: np.array(True), "multi_ap": np.ones(4)}
    with pytest.raises(ValueError, match="question-level file"):
        units(bad, "map_multi")


def test_a_run_resumed_from_its_publication_reports_as_the_run(published, tmp_path):
    """A study directory copied from a publication and resumed holds question-level files
    (the published cells) beside per-query ones (the new cells): every file is read in one
    form, so the cells pair and the report equals the run's own."""
    study, target = published
    mixed = tmp_path / "mixed"
    shutil.copytree(study, mixed)
    rows = load_rows(study / "results.jsonl").rows
    for row in rows[::2]:  # every other cell as published
        shutil.copyfile(target / row["per_query"], mixed / row["per_query"])
    with np.load(mixed / rows[0]["per_query"]) as npz:
        assert PER_QUESTION in npz.files or "query_ids" in npz.files  # LAReQA or MIRACL
    from langmix.study.comparisons import compute_comparisons, verdict
    from langmix.study.results import load_study

    assert "holds other queries" not in build_report(mixed).read_text()
    # The same claims, estimates (to the float32 rounding of the published values) and
    # verdicts as the run itself.
    ours, theirs = (compute_comparisons(load_study(d), n_resamples=200) for d in (mixed, study))
    assert len(ours.tests) == len(theirs.tests) > 0 and not ours.notes
    for a, b in zip(ours.tests, theirs.tests, strict=True):
        assert (a.kind, a.eval_set, a.metric, a.against) == (
            b.kind,
            b.eval_set,
            b.metric,
            b.against,
        )
        assert a.estimate.value == pytest.approx(b.estimate.value, abs=1e-5)
        assert a.estimate.se == pytest.approx(b.estimate.se, rel=1e-3, abs=1e-6)
        assert verdict(a) == verdict(b)


# ------------------------------------------------------------ targets publish may not damage


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def test_publishing_into_the_study_itself_or_inside_it_is_refused(published):
    study, _ = published
    before = _tree(study)
    for target in (study, study / "cells" / "published"):
        for overwrite in (False, True):
            with pytest.raises(OutputDirError, match="the study"):
                publish_study(study, target, overwrite=overwrite)
    assert _tree(study) == before  # nothing written, nothing deleted


def test_a_folder_that_is_not_an_earlier_publication_needs_overwrite(published, tmp_path):
    study, target = published
    folder = tmp_path / "ci-copy"
    folder.mkdir()
    (folder / "notes.md").write_text("a user's notes")
    with pytest.raises(OutputDirError, match=r"notes.md.*--overwrite"):
        publish_study(study, folder)
    assert _tree(folder) == {"notes.md": b"a user's notes"}
    # Another study's publication is refused too.
    other = tmp_path / "other"
    shutil.copytree(target, other)
    (other / "notes.txt").unlink()  # the fixture's user file: a bare publication
    rows = (other / "results.jsonl").read_text().replace('"study": "synthetic"', '"study": "x"')
    (other / "results.jsonl").write_text(rows)
    with pytest.raises(OutputDirError, match=r"another study \(x\)"):
        publish_study(study, other)
    # An earlier publication of the same study is replaced without asking.
    again = tmp_path / "again"
    shutil.copytree(target, again)
    (again / "notes.txt").unlink()
    publish_study(study, again)
    assert (again / "report.md").read_text() == (target / "report.md").read_text()


@pytest.mark.parametrize("kind", ["train run", "study run"])
def test_a_langmix_run_is_never_a_publication_target(published, tmp_path, kind):
    study, _ = published
    run = tmp_path / "run"
    if kind == "train run":
        claim_output_dir(run, "train", {"model": "m"}, outputs=("model",))
        (run / "model").mkdir()
        (run / "model" / "weights.bin").write_bytes(b"w")
    else:
        shutil.copytree(study, run)
        (run / "study.log").write_text("the run's log")
    before = _tree(run)
    for overwrite in (False, True):
        with pytest.raises(OutputDirError, match="holds a langmix run"):
            publish_study(study, run, overwrite=overwrite)
    assert _tree(run) == before
