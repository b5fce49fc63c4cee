"""``report_to = "mlflow"``: a real tiny study tracked in a local SQLite mlflow store.

The cell's run holds every setting as a parameter, the training curves step by step, and
after the evaluation the cell's metrics, equal to its results row (issue 24).
"""

from __future__ import annotations

import json
import os

import pytest

mlflow = pytest.importorskip("mlflow")

from langmix.study.runner import RESULTS, read_results, run_study  # noqa: E402
from langmix.training.reporting import TRACKER_FILE, log_evaluation  # noqa: E402

STUDY = """
[study]
name = "tracked"
strategies = ["mono"]
seeds = [0]
untrained = false
keep_models = false
report_to = "mlflow"

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
eval_steps = 2

[[eval]]
dataset = "xquad-r"
languages = ["en", "de"]
articles = 1
with_context = false
query_max_length = 16
passage_max_length = 32
"""


def test_a_study_cell_is_one_mlflow_run_with_settings_curves_and_metrics(
    tmp_path, data_dir, offline_cache, monkeypatch
):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    path = tmp_path / "tracked.toml"
    path.write_text(STUDY)
    out = tmp_path / "out"
    assert not run_study(path, out, data_dir=data_dir, show_progress=False).failed
    # The store is the study's own, and the environment is as it was.
    assert "MLFLOW_TRACKING_URI" not in os.environ
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tracked")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "tracked/L1/mono-s0" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["sampling"] == "mono" and params["seed"] == "0" and params["max_steps"] == "2"
    assert params["languages"] == "en,de"
    losses = client.get_metric_history(run.info.run_id, "train/loss")
    log = (out / "cells/L1/mono-s0/train/train_log.jsonl").read_text().splitlines()
    logged = [json.loads(line) for line in log]
    assert [m.step for m in losses] == [1, 2]
    assert [m.value for m in losses] == pytest.approx([r["loss"] for r in logged if "loss" in r])
    validation = client.get_metric_history(run.info.run_id, "validation/loss")
    assert [m.step for m in validation] == [0, 2]
    (row,) = read_results(out / RESULTS)
    for name, value in row["metrics"].items():
        assert run.data.metrics[f"xquad-r_:1_/{name}"] == pytest.approx(value, abs=1e-12)
    record = json.loads((out / "cells/L1/mono-s0/train" / TRACKER_FILE).read_text())
    assert record["mlflow"]["run_id"] == run.info.run_id


def test_evaluation_goes_nowhere_without_a_tracker_run(tmp_path):
    assert log_evaluation(tmp_path, "xquad-r", {"map_multi": 0.5}, step=2) is False
