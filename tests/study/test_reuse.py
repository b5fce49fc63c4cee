"""``--reuse-from`` decides per cell: only a cell whose settings are all equal is taken.

The end-to-end path (a real study taking another's cells, rows and files) runs in
tests/study/test_runner.py; here the decision is checked against a source directory written
by hand, so every way two cells can differ costs no training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langmix.data.errors import DataError
from langmix.study.config import load_study_config
from langmix.study.reuse import plan_reuse

STUDY = """
[study]
name = "{name}"
strategies = ["mono"]
seeds = [0]

[[models]]
name = "offline:multilingual-e5-small@L1"

[train]
train = ["mlqa-r"]
languages = ["en", "de"]
data_dir = "{data_dir}"
max_steps = 2
batch_size = 8
learning_rate = {learning_rate}
test_fraction = 0.2

[[eval]]
dataset = "mlqa-r"
split = "heldout"
languages = ["en", "de"]
passage_max_length = {eval_length}
"""
SPLIT = {"train": "a" * 16, "train_groups": 3, "validation": "b" * 16, "validation_groups": 1}


def _config(tmp_path: Path, name: str, *, learning_rate="3e-5", eval_length=32, data_dir="d"):
    path = tmp_path / f"{name}.toml"
    path.write_text(
        STUDY.format(
            name=name, learning_rate=learning_rate, eval_length=eval_length, data_dir=data_dir
        )
    )
    return load_study_config(path)


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    """A finished study "source": its config, a row per cell and the per-query files."""
    config = _config(tmp_path, "source")
    directory = tmp_path / "source"
    directory.mkdir()
    (directory / "study.toml").write_text((tmp_path / "source.toml").read_text())
    rows = []
    for cell in config.cells():
        per_query = f"cells/{cell.key}/mlqa-r-heldout/per_query.npz"
        (directory / per_query).parent.mkdir(parents=True)
        (directory / per_query).write_bytes(b"")
        split = {"part": "heldout", **SPLIT}
        rows.append(
            {"cell": cell.key, "eval_set": "mlqa-r:heldout", "per_query": per_query, "split": split}
        )
    (directory / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return directory


def _split(dataset: str) -> dict:
    return dict(SPLIT)


def test_equal_cells_are_taken(tmp_path, source):
    # Only where outputs go differs (the data directory): the same experiment.
    here = _config(tmp_path, "here", data_dir="elsewhere")
    plan = plan_reuse(here, source, here.cells(), _split)
    assert sorted(plan.reusable) == ["L1/mono-s0", "L1/untrained"] and not plan.differing
    assert plan.source_name == "source"


def test_a_changed_training_setting_keeps_only_the_untrained_cell(tmp_path, source):
    here = _config(tmp_path, "here", learning_rate="1e-4")
    plan = plan_reuse(here, source, here.cells(), _split)
    assert sorted(plan.reusable) == ["L1/untrained"]
    assert plan.differing == {"L1/mono-s0": "learning_rate: 0.0001 here, 3e-05 in the source"}


def test_another_evaluation_setting_or_split_takes_nothing(tmp_path, source):
    here = _config(tmp_path, "here", eval_length=64)
    plan = plan_reuse(here, source, here.cells(), _split)
    assert not plan.reusable
    assert "its settings differ in the source" in plan.differing["L1/untrained"]
    here = _config(tmp_path, "here")
    plan = plan_reuse(here, source, here.cells(), lambda dataset: {**SPLIT, "train": "c" * 16})
    assert (
        plan.differing["L1/untrained"] == "evaluation set mlqa-r:heldout: another split of mlqa-r"
    )


def test_missing_rows_or_files_are_not_taken(tmp_path, source):
    (source / "cells/L1/mono-s0/mlqa-r-heldout/per_query.npz").unlink()
    lines = (source / "results.jsonl").read_text().splitlines()
    (source / "results.jsonl").write_text(lines[1] + "\n")  # the untrained row is gone
    here = _config(tmp_path, "here")
    plan = plan_reuse(here, source, here.cells(), _split)
    assert not plan.reusable
    assert plan.differing["L1/untrained"] == "evaluation set mlqa-r:heldout: no row in the source"
    assert "per_query.npz is missing" in plan.differing["L1/mono-s0"]


def test_reuse_from_must_be_a_study_directory(tmp_path):
    here = _config(tmp_path, "here")
    with pytest.raises(DataError, match="needs a study directory") as error:
        plan_reuse(here, tmp_path / "nowhere", here.cells(), _split)
    assert str(tmp_path / "nowhere") in str(error.value)
