"""Same seed, same run (CPU): batches, weights and logged losses, bit for bit; another seed
gives other batches, so the comparison can fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from langmix.training import TrainArguments, train


def _run(out: Path, data_dir: Path, seed: int, **extra) -> dict:
    from safetensors.torch import load_file

    args = TrainArguments(
        model="offline:multilingual-e5-small@L1", train=["mlqa-r"], languages=["en", "de", "es"],
        data_dir=str(data_dir), output_dir=str(out), sampling="hybrid", batch_size=8,
        max_steps=3, eval_steps=3, logging_steps=1, seed=seed, query_max_length=16,
        passage_max_length=24, freeze_embeddings=True, log_batches=True, **extra,
    )  # fmt: skip
    train(args, show_progress=False)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return {
        "batches": (out / "batches.jsonl").read_text(),
        "losses": [(r["step"], r.get("loss"), r.get("validation_loss")) for r in log],
        "weights": load_file(out / "model" / "model.safetensors"),
    }


def _same(a: dict, b: dict) -> None:
    assert a["batches"] == b["batches"]
    assert a["losses"] == b["losses"]
    assert a["weights"].keys() == b["weights"].keys()
    for key, value in a["weights"].items():
        assert torch.equal(value, b["weights"][key]), key


def test_same_seed_same_run_other_seed_other_batches(tmp_path, data_dir, offline_cache):
    first = _run(tmp_path / "a", data_dir, seed=1)
    _same(first, _run(tmp_path / "b", data_dir, seed=1))
    other = _run(tmp_path / "c", data_dir, seed=2)
    assert other["batches"] != first["batches"]
    assert any(not torch.equal(v, other["weights"][k]) for k, v in first["weights"].items())


@pytest.fixture
def restore_determinism(monkeypatch):
    # enable_full_determinism sets process-wide state; later tests must not inherit it.
    for var in (
        "CUDA_LAUNCH_BLOCKING",
        "CUBLAS_WORKSPACE_CONFIG",
        "ASCEND_LAUNCH_BLOCKING",
        "HCCL_DETERMINISTIC",
        "FLASH_ATTENTION_DETERMINISTIC",
    ):
        monkeypatch.delenv(var, raising=False)
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


def test_full_determinism_runs_on_cpu_and_changes_nothing(
    tmp_path, data_dir, offline_cache, restore_determinism
):
    plain = _run(tmp_path / "plain", data_dir, seed=1)
    strict = _run(tmp_path / "strict", data_dir, seed=1, full_determinism=True)
    assert torch.are_deterministic_algorithms_enabled()
    _same(plain, strict)
