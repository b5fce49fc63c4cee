"""Run by tests/training/test_ddp.py under ``torch.distributed.run`` with 2 CPU processes (gloo).

Writes ``rank{R}.json`` into the output folder: the loss and gradient of a DDP step on this
rank's slice of a fixed global batch (plain and with GradCache), and what the sampler gave
this rank for 300 steps.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from langmix.training.gradcache import grad_cache_step
from langmix.training.loss import InfoNCELoss


def global_batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    queries = torch.randn(8, 16, generator=generator)
    positives = torch.randn(8, 16, generator=generator)
    negatives = torch.randn(8, 16, generator=generator)
    # Items 2 and 5 are translations of each other, as are 1 and 6 (across the two ranks).
    items = torch.tensor([0, 1, 2, 3, 4, 2, 1, 7])
    weight = torch.randn(16, 16, generator=generator)
    return queries, positives, negatives, items, weight


def main() -> None:
    out = Path(sys.argv[1])
    data_dir = sys.argv[2]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    queries, positives, negatives, items, weight = global_batch()
    local = slice(rank * 4, (rank + 1) * 4)
    results = {}
    for symmetric in (False, True):
        encoder = torch.nn.Linear(16, 16, bias=False)
        with torch.no_grad():
            encoder.weight.copy_(weight)
        model = torch.nn.parallel.DistributedDataParallel(encoder)
        loss = InfoNCELoss(0.05, symmetric=symmetric)(
            model(queries[local]), model(positives[local]), items[local], model(negatives[local])
        )
        loss.backward()
        reduced = loss.detach().clone()
        dist.all_reduce(reduced)
        results[f"symmetric={symmetric}"] = {
            "loss": float(reduced / world),
            "grad": encoder.weight.grad.tolist(),
        }
        for chunk in (1, 3):
            # GradCache under DDP: all but the last chunk's backward skip the all-reduce.
            encoder = torch.nn.Linear(16, 16, bias=False)
            with torch.no_grad():
                encoder.weight.copy_(weight)
            model = torch.nn.parallel.DistributedDataParallel(encoder)
            loss_fn = InfoNCELoss(0.05, symmetric=symmetric)
            grad_cache_step(
                [queries[local], positives[local], negatives[local]],
                lambda g, x, model=model: model(torch.stack(list(x))),
                lambda q, p, n, loss_fn=loss_fn: loss_fn(q, p, items[local], n),
                chunk,
                no_sync=model.no_sync,
            )
            results[f"cached={chunk},symmetric={symmetric}"] = {
                "grad": encoder.weight.grad.tolist()
            }

    from langmix.data.lareqa import load_lareqa
    from langmix.data.pairs import ParallelPairs
    from langmix.sampling import LanguageBatchSampler

    pairs = ParallelPairs.from_lareqa(load_lareqa("mlqa-r", data_dir=data_dir))
    sampler = LanguageBatchSampler([pairs], 16, "hybrid", seed=0, rank=rank, world_size=world)
    steps = []
    for batch in sampler.batches(0, 300):
        shard = batch.shard(rank, world)
        decoded = [sampler.table.decode(int(c)) for c in shard]
        steps.append(
            {
                "type": batch.batch_type,
                "items": [d[1] for d in decoded],
                "query_languages": [d[2] for d in decoded],
            }
        )
    results["sampler"] = steps
    (out / f"rank{rank}.json").write_text(json.dumps(results))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
