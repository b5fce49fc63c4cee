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
    with pytest.raises(OutputDirError, match=r"`langmix eval`.*--overwrite"):
        claim_output_dir(out, "search", {"model": "a"}, outputs=OUTPUTS)
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
