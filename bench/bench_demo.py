"""Benchmark 5: where the wall time of ``make demo`` goes.

Runs the demo study (``configs/demo.toml``) as ``make demo`` does, in a fresh output
directory with a fresh langmix cache (so the offline model is converted and nothing is
encoded from an earlier run, as on a clean clone), then splits the wall clock using the
runner's own records (``timing`` in each row of ``results.jsonl`` and ``timing.jsonl``):

* setup - interpreter start, imports, loading and validating the data;
* training - every trained cell's run (model set-up, steps, validation, saving);
* model loading - loading each cell's model for evaluation (the offline model's one-time
  conversion into the fresh cache falls in the first cell's loading or training);
* encoding, metrics, writing - per evaluation set;
* report - tables, statistics and plots.

Installing the environment (``make install``, about a minute on a clean clone) is not included.

Run: ``python bench/bench_demo.py`` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, data_dir, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.toml"))
    parser.add_argument(
        "--keep", metavar="DIR", help="Study directory to keep (default: a temporary one)."
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep) if args.keep else Path(tmp) / "demo"
        if out.exists():
            raise SystemExit(f"{out} exists; the benchmark needs a fresh study directory")
        env = dict(os.environ, LANGMIX_CACHE_DIR=str(Path(tmp) / "cache"))
        command = [
            sys.executable,
            "-m",
            "langmix",
            "study",
            "--config",
            args.config,
            "--output-dir",
            str(out),
            "--data-dir",
            str(data_dir()),
            "--progress",
            "false",
        ]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if done.returncode:
            sys.stderr.write(done.stderr[-4000:])
            raise SystemExit(f"demo study failed (exit {done.returncode})")
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        (invocation,) = [
            json.loads(line) for line in (out / "timing.jsonl").read_text().splitlines()
        ]
        plots = sorted(p.name for p in (out / "plots").glob("*.png"))

    cells: dict[str, dict] = {}
    for row in rows:
        cells.setdefault(row["cell"], row["timing"])
    training = sum(t["train_wall_s"] or 0.0 for t in cells.values())
    loading = sum(t["load_s"] for t in cells.values())
    encoding = sum(r["timing"]["encode_s"] for r in rows)
    metrics = sum(r["timing"]["metrics_s"] for r in rows)
    writing = sum(r["timing"]["write_s"] for r in rows)
    # Everything before the first cell: the runner's setup plus interpreter and imports.
    setup = wall - invocation["wall_s"] + invocation["setup_s"]
    parts = {
        "setup": setup,
        "training": training,
        "model_loading": loading,
        "encoding": encoding,
        "metrics": metrics,
        "writing": writing,
        "report": invocation["report_s"],
    }
    parts["other"] = wall - sum(parts.values())
    figures = {
        "wall_s": round(wall, 1),
        "parts_s": {k: round(v, 1) for k, v in parts.items()},
        "parts_share": {k: round(v / wall, 3) for k, v in parts.items()},
        "cells": len(cells),
        "evaluation_rows": len(rows),
        "training_steps_s": round(sum(t["train_steps_s"] or 0.0 for t in cells.values()), 1),
        "plots": plots,
    }
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    settings = {"config": str(Path(args.config).relative_to(REPO)), "commit": commit or None}
    write_result("demo", figures, settings)


if __name__ == "__main__":
    main()
