"""An output directory holding another configuration's results is refused unless the user
says to overwrite; overwriting deletes only what the command writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langmix.cli import main
from langmix.outputs import RUN_RECORD, OutputDirError, claim_output_dir

OUTPUTS = ("metrics.json", "per_query")


def _fill(out: Path) -> None:
    (out / "metrics.json").write_text("{}")
    (out / "per_query").mkdir()
    (out / "per_query" / "en.npz").write_bytes(b"x")
    (out / "notes.txt").write_text("the user's own file")


def test_same_settings_reuse_other_settings_refused_overwrite_clears_only_outputs(tmp_path):
    out = tmp_path / "out"
    claim_output_dir(out, "eval", {"model": "a", "lengths": (16, 32)}, outputs=OUTPUTS)
    _fill(out)
    # The same settings (a tuple recorded as a JSON list) may rerun into the directory.
    claim_output_dir(out, "eval", {"model": "a", "lengths": (16, 32)}, outputs=OUTPUTS)
    with pytest.raises(OutputDirError, match=r"other settings \(lengths, model differ\)"):
        claim_output_dir(out, "eval", {"model": "b", "lengths": (16, 64)}, outputs=OUTPUTS)
    # Another command's directory is refused even with --overwrite: its files are not ours.
    for overwrite in (False, True):
        with pytest.raises(OutputDirError, match=r"holds a `langmix eval` run.*even with"):
            claim_output_dir(out, "search", {"model": "a"}, overwrite=overwrite, outputs=OUTPUTS)
    assert (out / "metrics.json").exists()  # refusing touched nothing

    claim_output_dir(out, "eval", {"model": "b"}, overwrite=True, outputs=OUTPUTS)
    assert sorted(p.name for p in out.iterdir()) == [RUN_RECORD, "notes.txt"]
    record = json.loads((out / RUN_RECORD).read_text())
    assert record == {"command": "eval", "settings": {"model": "b"}}


def test_only_results_are_protected(tmp_path):
    _fill(tmp_path)
    with pytest.raises(OutputDirError, match="an unrecorded run"):
        claim_output_dir(tmp_path, "eval", {"model": "a"}, outputs=OUTPUTS)
    # A run that stopped before writing results does not bind the directory.
    empty = tmp_path / "empty"
    claim_output_dir(empty, "eval", {"model": "a"}, outputs=OUTPUTS)
    claim_output_dir(empty, "eval", {"model": "b"}, outputs=OUTPUTS)


def test_cli_eval_refuses_another_models_results_before_loading_anything(tmp_path, capsys):
    def argv(model: str, *extra: str) -> list[str]:
        return ["eval", "--model", model, "--dataset", "xquad-r", "--languages", "xx",
                "--output-dir", str(tmp_path), *extra]  # fmt: skip

    # The claim comes first, then the unknown language stops the run; with a metrics.json
    # beside its record, the directory looks like model A's finished evaluation.
    assert main(argv("offline:multilingual-e5-small@L1")) == 2
    assert "unknown language" in capsys.readouterr().err
    (tmp_path / "metrics.json").write_text("{}")
    assert main(argv("offline:multilingual-e5-small@L2")) == 2
    err = capsys.readouterr().err
    assert "other settings (model differ)" in err and "--overwrite" in err
    assert main(argv("offline:multilingual-e5-small@L2", "--overwrite")) == 2
    assert "unknown language" in capsys.readouterr().err


def test_study_overwrite_replaces_only_the_studys_files(tmp_path):
    from langmix.study.config import load_study_config
    from langmix.study.runner import StudyDirError, StudyRunner

    config_path = Path(__file__).resolve().parents[2] / "configs" / "demo.toml"
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.toml").write_text("[study]\nname = 'other'\n")
    (out / "results.jsonl").write_text('{"cell": "x"}\n')
    (out / "cells").mkdir()
    (out / "mine.txt").write_text("keep")
    config = load_study_config(config_path)
    with pytest.raises(StudyDirError, match="--overwrite"):
        StudyRunner(config, out)._claim_output_dir()
    assert (out / "results.jsonl").exists()
    StudyRunner(config, out, overwrite=True)._claim_output_dir()
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt", "study.toml"]
    assert (out / "study.toml").read_text() == config_path.read_text()
    StudyRunner(config, out)._claim_output_dir()  # the same study again: reused
    # A study file alone (a study stopped before its first cell) binds nothing.
    (out / "study.toml").write_text("[study]\nname = 'other'\n")
    StudyRunner(config, out)._claim_output_dir()
    assert (out / "study.toml").read_text() == config_path.read_text()


def test_a_study_directory_and_a_train_directory_refuse_each_other(tmp_path):
    """`langmix study` into a training run's directory, or `langmix train` into a study's,
    is refused before anything is written, with --overwrite too."""
    from langmix.study.config import load_study_config
    from langmix.study.runner import StudyRunner

    train_dir = tmp_path / "train-run"
    claim_output_dir(train_dir, "train", {"model": "m"}, outputs=("model",))
    (train_dir / "model").mkdir()
    (train_dir / "model" / "weights.bin").write_bytes(b"w")
    config = tmp_path / "study.toml"
    config.write_text(
        '[study]\nname = "s"\nstrategies = ["mono"]\n\n[[models]]\n'
        'name = "offline:multilingual-e5-small@L1"\n\n[train]\ntrain = ["mlqa-r"]\n'
        'max_steps = 1\n\n[[eval]]\ndataset = "xquad-r"\n'
    )
    before = sorted(p.name for p in train_dir.rglob("*"))
    for overwrite in (False, True):
        runner = StudyRunner(load_study_config(config), train_dir, overwrite=overwrite)
        with pytest.raises(OutputDirError, match="holds a `langmix train` run"):
            runner._claim_output_dir()
    assert sorted(p.name for p in train_dir.rglob("*")) == before

    study_dir = tmp_path / "study-run"
    study_dir.mkdir()
    (study_dir / "study.toml").write_text(config.read_text())
    (study_dir / "results.jsonl").write_text("")
    for overwrite in (False, True):
        with pytest.raises(OutputDirError, match="holds a `langmix study` run"):
            claim_output_dir(study_dir, "train", {"model": "m"}, overwrite=overwrite)
    assert sorted(p.name for p in study_dir.iterdir()) == ["results.jsonl", "study.toml"]
