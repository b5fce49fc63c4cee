"""Two CPU processes (gloo): gathering in the loss and per-step agreement of the sampler."""

from __future__ import annotations

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
