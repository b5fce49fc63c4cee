"""``--reuse-from``: another study's cells are taken only when their settings are equal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from langmix.data.errors import DataError
from langmix.study.config import load_study_config
from langmix.study.reuse import plan_reuse
from langmix.study.runner import RESULTS, read_results, run_study

SOURCE = """
[study]
name = "{name}"
strategies = {strategies}
seeds = [0]
keep_models = false

[[models]]
name = "offline:multilingual-e5-small@L1"

[train]
train = ["mlqa-r"]
languages = ["en", "de"]
data_dir = "{data_dir}"
max_steps = 2
batch_size = 8
learning_rate = {learning_rate}
freeze_embeddings = true
with_context = false
query_max_length = 16
passage_max_length = 32
eval_steps = 2
test_fraction = 0.2

[[eval]]
dataset = "mlqa-r"
split = "heldout"
languages = ["en", "de"]
with_context = false
query_max_length = 16
passage_max_length = {eval_length}
"""


def _study(tmp_path: Path, data_dir: Path, name: str, **changes) -> Path:
    settings = {"strategies": '["mono"]', "learning_rate": "3e-5", "eval_length": 32}
    settings.update(changes)
    path = tmp_path / f"{name}.toml"
    path.write_text(SOURCE.format(name=name, data_dir=data_dir, **settings))
    return path


def test_equal_cells_are_taken_and_the_rest_run(tmp_path, data_dir, offline_cache):
    source = tmp_path / "source"
    run_study(_study(tmp_path, data_dir, "source"), source, show_progress=False)
    source_rows = {r["cell"]: r for r in read_results(source / RESULTS)}
    assert set(source_rows) == {"L1/untrained", "L1/mono-s0"}

    # The second study adds hybrid: untrained and mono are the source's, hybrid runs.
    out = tmp_path / "out"
    config = _study(tmp_path, data_dir, "second", strategies='["mono", "hybrid"]')
    summary = run_study(config, out, show_progress=False, reuse_from=source)
    assert (summary.reused, summary.finished, summary.skipped) == (2, 1, 0)
    rows = {r["cell"]: r for r in read_results(out / RESULTS)}
    assert set(rows) == {"L1/untrained", "L1/mono-s0", "L1/hybrid-a0.5-s0"}
    for key in ("L1/untrained", "L1/mono-s0"):
        taken, original = rows[key], source_rows[key]
        assert taken["study"] == "second" and original["study"] == "source"
        assert taken["reused_from"] == {"study": "source", "dir": str(source)}
        assert taken["metrics"] == original["metrics"]
        np.testing.assert_array_equal(
            np.load(out / taken["per_query"])["multi_ap"],
            np.load(source / original["per_query"])["multi_ap"],
        )
    assert "reused_from" not in rows["L1/hybrid-a0.5-s0"]
    assert (out / "cells/L1/mono-s0/train/summary.json").is_file()
    assert "Taken from study source (`--reuse-from`" in (out / "report.md").read_text()
    # Resuming takes nothing twice.
    again = run_study(config, out, show_progress=False, reuse_from=source)
    assert (again.reused, again.finished, again.skipped) == (0, 0, 3)
    assert len(read_results(out / RESULTS)) == 3

    # Another learning rate: the trained cell is not the same experiment; untrained still is.
    other = load_study_config(_study(tmp_path, data_dir, "lr", learning_rate="1e-4"))
    digest = source_rows["L1/mono-s0"]["split"]
    split = {k: v for k, v in digest.items() if k != "part"}
    plan = plan_reuse(other, source, other.cells(), lambda dataset: split)
    assert sorted(plan.reusable) == ["L1/untrained"]
    assert plan.differing == {"L1/mono-s0": "learning_rate: 0.0001 here, 3e-05 in the source"}
    # Another evaluation setting or another split: nothing is taken.
    longer = load_study_config(_study(tmp_path, data_dir, "long", eval_length=64))
    plan = plan_reuse(longer, source, longer.cells(), lambda dataset: split)
    assert not plan.reusable and len(plan.differing) == 2
    assert "its settings differ" in plan.differing["L1/untrained"]
    resplit = {**split, "test": "0" * 16}
    plan = plan_reuse(other, source, other.cells(), lambda dataset: resplit)
    assert (
        plan.differing["L1/untrained"] == "evaluation set mlqa-r:heldout: another split of mlqa-r"
    )


def test_reuse_from_must_be_a_study_directory(tmp_path, data_dir):
    config = load_study_config(_study(tmp_path, data_dir, "x"))
    with pytest.raises(DataError, match="needs a study directory"):
        plan_reuse(config, tmp_path / "nowhere", config.cells(), lambda dataset: {})
