"""Two CPU processes (gloo): gathering in the loss and per-step agreement of the sampler."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from langmix.training.loss import InfoNCELoss

sys.path.insert(0, str(Path(__file__).parent))
from ddp_worker import global_batch


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, data_dir) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-port", "0", "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0",
        str(Path(__file__).parent / "ddp_worker.py"), str(out), str(data_dir),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.parametrize("symmetric", [False, True])
def test_ddp_loss_and_gradient_equal_single_process(two_ranks, symmetric):
    queries, positives, negatives, items, weight = global_batch()
    encoder = torch.nn.Linear(16, 16, bias=False)
    with torch.no_grad():
        encoder.weight.copy_(weight)
    loss = InfoNCELoss(0.05, symmetric=symmetric)(
        encoder(queries), encoder(positives), items, encoder(negatives)
    )
    loss.backward()
    key = f"symmetric={symmetric}"
    for rank in two_ranks:
        assert rank[key]["loss"] == pytest.approx(float(loss.detach()), rel=1e-5)
        assert torch.allclose(torch.tensor(rank[key]["grad"]), encoder.weight.grad, atol=1e-5)
        for chunk in (1, 3):
            cached = torch.tensor(rank[f"cached={chunk},symmetric={symmetric}"]["grad"])
            assert torch.allclose(cached, encoder.weight.grad, atol=1e-5), chunk


def test_ranks_share_batch_type_and_never_an_item(two_ranks):
    first, second = (rank["sampler"] for rank in two_ranks)
    assert len(first) == len(second) == 300
    types = set()
    for a, b in zip(first, second, strict=True):
        assert a["type"] == b["type"]
        types.add(a["type"])
        assert not set(a["items"]) & set(b["items"])
        if a["type"] == "mono":
            assert len(set(a["query_languages"]) | set(b["query_languages"])) == 1
    assert types == {"mono", "cross"}


def _torchrun_command(out: Path, data_dir: Path, model_cache: Path, *extra: str):
    """``langmix train`` on 2 CPU processes under torchrun: the settings both tests share."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LANGMIX_CACHE_DIR": str(model_cache)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0",
        "-m", "langmix", "train", "--model", "offline:multilingual-e5-small@L1",
        "--train", "mlqa-r", "--languages", "en,de,es", "--data-dir", str(data_dir),
        "--sampling", "hybrid", "--batch-size", "8", "--output-dir", str(out), "--log-batches",
        "--freeze-embeddings", "--query-max-length", "16", "--passage-max-length", "32",
        "--logging-steps", "1", *extra,
    ]  # fmt: skip
    return command, env


def test_langmix_train_under_torchrun(tmp_path, data_dir, model_cache):
    out = tmp_path / "run"
    command, env = _torchrun_command(
        out, data_dir, model_cache,
        "--max-steps", "4", "--seed", "3", "--eval-steps", "2", "--warmup-ratio", "0",
    )  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 4 steps") == 1  # one report, from rank 0
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 2
    batches = [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]
    assert [b["step"] for b in batches] == [1, 2, 3, 4]  # the global batch, logged once
    assert all(len(set(b["ids"])) == 8 for b in batches)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    rates = [r["learning_rate"] for r in log if "learning_rate" in r]
    # Linear decay without warmup over 4 steps: the schedule steps once per global step.
    assert rates == pytest.approx([3e-5 * (4 - s) / 4 for s in (1, 2, 3, 4)])
    assert (out / "checkpoints" / "step-4" / "random_states_1.pkl").is_file()
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(out / "model")).encode(["query: x"]).shape == (1, 384)


def _torchrun_train(out: Path, data_dir: Path, model_cache: Path, *extra: str):
    command, env = _torchrun_command(
        out, data_dir, model_cache,
        "--max-steps", "16", "--seed", "5", "--save-steps", "2", "--eval-steps", "8",
        "--gradient-cache-chunk", "3", *extra,
    )  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def test_ddp_checkpoint_resume_after_sigkill(tmp_path, data_dir, model_cache):
    import signal
    import time

    from safetensors.torch import load_file

    whole = tmp_path / "whole"
    run = _torchrun_train(whole, data_dir, model_cache)
    _, err = run.communicate(timeout=600)
    assert run.returncode == 0, err[-3000:]

    # Kill the launcher and both workers (SIGKILL: no cleanup) once step 4 or a later step is
    # checkpointed. Not "step-4" alone: older checkpoints are rotated away, so a poller that
    # wakes late on a loaded machine could miss step-4's window and wait for nothing.
    broken = tmp_path / "broken"
    run = _torchrun_train(broken, data_dir, model_cache)
    deadline = time.monotonic() + 600

    def checkpointed_past_step_3() -> bool:
        root = broken / "checkpoints"
        with contextlib.suppress(OSError):  # rotated while we looked
            return any(p.name.startswith("step-") and int(p.name[5:]) >= 4 for p in root.iterdir())
        return False

    while not checkpointed_past_step_3():
        assert run.poll() is None, run.stderr.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert not (broken / "model").exists()

    run = _torchrun_train(broken, data_dir, model_cache, "--resume")
    _, err = run.communicate(timeout=600)
    assert run.returncode == 0, err[-3000:]
    a = load_file(whole / "model" / "model.safetensors")
    b = load_file(broken / "model" / "model.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key  # bit-identical on CPU

    def lines(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text().splitlines()]

    assert lines(whole / "batches.jsonl") == lines(broken / "batches.jsonl")
    losses = [(r["step"], r.get("loss")) for r in lines(whole / "train_log.jsonl")]
    assert losses == [(r["step"], r.get("loss")) for r in lines(broken / "train_log.jsonl")]


def test_langmix_train_under_accelerate_launch(tmp_path, data_dir, model_cache):
    # `accelerate launch --multi_gpu` starts torchrun workers; on a CPU machine they train
    # over gloo, which is how this runs in CI.
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LANGMIX_CACHE_DIR": str(model_cache)}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
        "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "--main_process_port", "0",
        "-m", "langmix", "train", "--model", "offline:multilingual-e5-small@L1",
        "--train", "mlqa-r", "--languages", "en,de,es", "--data-dir", str(data_dir),
        "--sampling", "hybrid", "--batch-size", "8", "--max-steps", "2",
        "--output-dir", str(out), "--freeze-embeddings", "--gradient-cache-chunk", "2",
        "--query-max-length", "16", "--passage-max-length", "32",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 2 steps") == 1
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
