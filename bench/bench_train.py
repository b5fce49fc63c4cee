"""Benchmark 3: training throughput of ``langmix train --sampling hybrid`` against a plain
sentence-transformers MultipleNegativesRankingLoss run.

Same model (offline multilingual-e5-small cut to ``--layers`` layers, every weight trained,
word embeddings included), same data (MLQA-R training pairs, answer sentence only), batch size,
truncation (queries and passages ``--length`` tokens), learning rate and AdamW. Each engine
runs in its own process, so its peak resident memory is its own. Throughput is the
steady state: wall clock between the end of step ``--warmup`` and the end of the last step,
everything included (batch sampling, tokenization, forward, backward, optimizer), read from
langmix's ``train_log.jsonl`` (``elapsed_s``) and from a trainer callback for
sentence-transformers.

The language-aware sampler's own cost is also timed alone: generating the hybrid batches of
the whole run.

Run: ``python bench/bench_train.py`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import data_dir, peak_rss_mib, write_result


def run_langmix(args: argparse.Namespace, out: Path, sampling: str) -> dict:
    from langmix.training import TrainArguments, train

    train(
        TrainArguments(
            model=f"offline:multilingual-e5-small@L{args.layers}",
            train=["mlqa-r"],
            output_dir=str(out),
            sampling=sampling,
            alpha=0.5,
            batch_size=args.batch_size,
            max_steps=args.steps,
            data_dir=str(data_dir()),
            learning_rate=3e-5,
            warmup_ratio=0.0,
            query_max_length=args.length,
            passage_max_length=args.length,
            with_context=False,
            freeze_embeddings=False,
            validation_fraction=0.0,
            save_steps=args.steps,
            logging_steps=1,
        ),
        show_progress=False,
    )
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return {"elapsed_s": [r["elapsed_s"] for r in log if "loss" in r]}


def run_sentence_transformers(args: argparse.Namespace, out: Path) -> dict:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    from langmix.models import load_model
    from langmix.training.data import load_training_pairs

    model = load_model(f"offline:multilingual-e5-small@L{args.layers}")
    model.max_seq_length = args.length
    pairs = load_training_pairs("mlqa-r", data_dir=str(data_dir()), with_context=False)
    # Plain multilingual baseline: every (question, answer sentence) pair in its language,
    # with the E5 prompts langmix adds too.
    dataset = Dataset.from_dict(
        {
            "anchor": [model.prompts["query"] + p.query for p in pairs.pairs],
            "positive": [model.prompts["passage"] + p.positive for p in pairs.pairs],
        }
    )
    ends: list[float] = []

    class StepClock(TrainerCallback):
        def on_train_begin(self, *a, **kw):
            self.started = time.perf_counter()

        def on_step_end(self, *a, **kw):
            ends.append(round(time.perf_counter() - self.started, 3))

    trainer = SentenceTransformerTrainer(
        model=model,
        args=SentenceTransformerTrainingArguments(
            output_dir=str(out),
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps,
            learning_rate=3e-5,
            warmup_ratio=0.0,
            save_strategy="no",
            report_to="none",
            logging_steps=args.steps,
            dataloader_drop_last=True,
            use_cpu=True,
            seed=0,
        ),
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[StepClock()],
    )
    trainer.train()
    return {"elapsed_s": ends}


def sampler_cost(args: argparse.Namespace) -> dict:
    from langmix.sampling import LanguageBatchSampler
    from langmix.training.data import load_training_pairs

    pairs = load_training_pairs("mlqa-r", data_dir=str(data_dir()), with_context=False)
    sampler = LanguageBatchSampler([pairs], args.batch_size, strategy="hybrid", alpha=0.5, seed=0)
    started = time.perf_counter()
    n = sum(1 for _ in sampler.batches(0, 1000))
    return {"batches": n, "seconds": time.perf_counter() - started}


def child(engine: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if engine == "sentence-transformers":
            figures = run_sentence_transformers(args, Path(tmp) / "run")
        else:
            figures = run_langmix(args, Path(tmp) / "run", engine.split("-", 1)[1])
    figures["peak_rss_mib"] = peak_rss_mib()
    print("RESULT " + json.dumps(figures))


def steady(elapsed: list[float], warmup: int, batch_size: int) -> dict:
    if len(elapsed) <= warmup + 1:
        raise SystemExit(f"need more than {warmup + 1} steps, got {len(elapsed)}")
    per_step = (elapsed[-1] - elapsed[warmup - 1]) / (len(elapsed) - warmup)
    return {
        "seconds_per_step": round(per_step, 3),
        "examples_per_s": round(batch_size / per_step, 2),
        "steps_timed": len(elapsed) - warmup,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument(
        "--engine", choices=["langmix-hybrid", "langmix-random", "sentence-transformers"]
    )
    args = parser.parse_args()
    if args.engine:
        child(args.engine, args)
        return

    figures: dict = {}
    # langmix-random draws batches like the plain run (pooled pairs, one language per pair), so
    # it separates the engine's cost from the data's: hybrid batches hold a different mix of
    # languages, hence of token counts, than pooled random pairs.
    for engine in ("sentence-transformers", "langmix-hybrid", "langmix-random"):
        cmd = [sys.executable, __file__, "--engine", engine]
        for name in ("layers", "batch_size", "length", "steps", "warmup"):
            cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        if done.returncode or not lines:
            sys.stderr.write(done.stderr[-4000:])
            raise SystemExit(f"{engine} run failed (exit {done.returncode})")
        raw = json.loads(lines[-1][len("RESULT ") :])
        figures[engine] = {
            **steady(raw["elapsed_s"], args.warmup, args.batch_size),
            "peak_rss_mib": raw["peak_rss_mib"],
        }
    st, lm = figures["sentence-transformers"], figures["langmix-hybrid"]
    control = figures["langmix-random"]
    figures["langmix_over_st_throughput"] = round(lm["examples_per_s"] / st["examples_per_s"], 3)
    figures["langmix_random_over_st_throughput"] = round(
        control["examples_per_s"] / st["examples_per_s"], 3
    )
    figures["langmix_over_st_peak_memory"] = round(lm["peak_rss_mib"] / st["peak_rss_mib"], 3)
    cost = sampler_cost(args)
    figures["sampler_ms_per_batch"] = round(1000 * cost["seconds"] / cost["batches"], 4)
    figures["sampler_share_of_step"] = round(
        cost["seconds"] / cost["batches"] / lm["seconds_per_step"], 6
    )
    write_result(
        "train",
        figures,
        {
            "model": f"offline:multilingual-e5-small@L{args.layers}",
            "data": "MLQA-R training pairs, answer sentence only",
            "batch_size": args.batch_size,
            "max_length": args.length,
            "steps": args.steps,
            "warmup_steps_excluded": args.warmup,
            "trainable": "all weights (word embeddings included)",
        },
    )


if __name__ == "__main__":
    main()
