"""LAReQA as a TREC run: trec_eval on langmix's run gives langmix's per-query AP.

`langmix eval --trec-depth N` writes the multilingual (pooled) ranking as ``run.trec`` and
its judgements as ``qrels.trec``, so ranx, ir-measures and trec_eval can reuse a LAReQA
ranking. On real XQuAD-R (one article, three languages) with a run as deep as the pool,
pytrec_eval's ``map`` per query equals langmix's multilingual AP of that query.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from langmix.data import load_lareqa
from langmix.evaluation.arguments import EvalArguments
from langmix.evaluation.lareqa import encode_lareqa, lareqa_trec, score_lareqa
from langmix.evaluation.run import run_eval
from langmix.evaluation.trec import evaluate_trec, read_run
from langmix.models import load_model

MODEL = "offline:multilingual-e5-small@L2"


@pytest.fixture(scope="module")
def scored(data_dir: Path):
    dataset = load_lareqa("xquad-r", ["en", "de", "zh"], data_dir=data_dir).first_articles(1)
    embeddings = encode_lareqa(load_model(MODEL), dataset, show_progress=False)
    return dataset, embeddings, score_lareqa(dataset, embeddings)


def test_trec_eval_on_the_run_gives_langmix_per_query_multilingual_ap(scored):
    dataset, embeddings, result = scored
    run, qrels = lareqa_trec(dataset, embeddings, depth=len(dataset.candidates))
    _, per_query = evaluate_trec(qrels, run, ["map"])
    ours = dict(zip([q.id for q in dataset.queries], result.per_query.multi_ap, strict=True))
    assert set(per_query) == set(ours)
    np.testing.assert_allclose(
        [per_query[q]["map"] for q in ours], list(ours.values()), rtol=0, atol=1e-6
    )
    assert {len(judged) for judged in qrels.values()} == {3}  # its answer in each language


def test_a_shallow_run_keeps_the_top_of_the_full_ranking(scored):
    dataset, embeddings, _ = scored
    full, _ = lareqa_trec(dataset, embeddings, depth=len(dataset.candidates))
    top, _ = lareqa_trec(dataset, embeddings, depth=5)
    full_rows, top_rows = full.to_dict(), top.to_dict()
    for qid, row in top_rows.items():
        best = sorted(full_rows[qid].items(), key=lambda kv: -kv[1])[:5]
        assert row == dict(best)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        lareqa_trec(dataset, embeddings, depth=0)


def test_langmix_eval_writes_the_run_and_qrels(data_dir: Path, tmp_path: Path):
    args = EvalArguments(
        model=MODEL,
        dataset="xquad-r",
        languages="en",  # the run of one language: enough to check the files, and quick
        output_dir=str(tmp_path / "eval"),
        data_dir=str(data_dir),
        trec_depth=20,
    )
    run_eval(args, show_progress=False)
    run = read_run(tmp_path / "eval" / "run.trec")
    qrels = (tmp_path / "eval" / "qrels.trec").read_text().splitlines()
    assert len(run) == len({line.split()[0] for line in qrels}) > 0
    assert {len(row) for row in run.values()} == {20}
    assert all(line.split()[1] == "0" and line.split()[3] == "1" for line in qrels)


def test_a_study_cell_writes_its_trec_run_when_asked(data_dir: Path, tmp_path: Path):
    """``trec_depth`` in a study's [[eval]]: the cell's run and qrels, read by pytrec_eval,
    give the per-query multilingual AP of the cell's own per-query file."""
    from langmix.data.miracl import read_qrels
    from langmix.study.config import Cell, load_study_config
    from langmix.study.evaluate import EvaluationSets

    path = tmp_path / "study.toml"
    path.write_text(
        '[study]\nname = "t"\nstrategies = ["mono"]\nseeds = [0]\n'
        f'[[models]]\nname = "{MODEL}"\n[train]\nlanguages = ["en", "de"]\nmax_steps = 2\n'
        '[[eval]]\ndataset = "xquad-r"\nlanguages = ["en", "de"]\narticles = 1\n'
        "trec_depth = 1000\n"
    )
    config = load_study_config(path)
    config.train["data_dir"] = str(data_dir)
    sets = EvaluationSets(config, tmp_path / "out")
    (spec,) = config.evals
    cell = Cell(config.models[0], "untrained", None, None)
    target = tmp_path / "out" / "cells" / "L2" / "untrained" / "xquad-r"
    row = sets.evaluate(cell, spec, load_model(MODEL), target)
    assert row["trec_run"] == "cells/L2/untrained/xquad-r/run.trec"
    run = read_run(target / "run.trec")
    _, per_query = evaluate_trec(read_qrels(target / "qrels.trec"), run, ["map"])
    saved = np.load(target / "per_query.npz")
    ours = dict(zip(saved["query_ids"].tolist(), saved["multi_ap"], strict=True))
    assert set(per_query) == set(ours)
    np.testing.assert_allclose([per_query[q]["map"] for q in ours], list(ours.values()), atol=1e-6)
    assert np.mean(list(ours.values())) == pytest.approx(row["metrics"]["map_multi"], abs=1e-9)
