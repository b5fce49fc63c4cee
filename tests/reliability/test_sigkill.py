"""SIGKILL at random moments, then rerun: nothing finished is lost or duplicated and the final
numbers equal an uninterrupted run's, bit for bit (CPU).

Kill moments are drawn from a seeded generator (``LANGMIX_KILL_SEED``, default 0) in units
of progress, not of time: a run is killed a random fraction of a second after its output
directory holds a drawn number of JSONL lines (logged steps, batches, result rows), so the
kills land at the same points of the work however loaded the machine is, and a failure can be
replayed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from progress_kills import kill_at_progress

SEED = int(os.environ.get("LANGMIX_KILL_SEED", "0"))
KILLS = 2


def _start(args: list[str], cache: Path) -> subprocess.Popen:
    env = {**os.environ, "LANGMIX_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "langmix", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _run(args: list[str], cache: Path) -> None:
    process = _start(args, cache)
    _, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-3000:]


def _lines_written(out: Path) -> int:
    """Progress of a run: the lines of every JSONL file it has written so far."""
    # The run renames and deletes directories (checkpoint staging) while we walk: os.walk
    # skips a directory that vanished (its onerror default), where Path.rglob raises.
    total = 0
    for root, _, files in os.walk(out):
        for name in files:
            if name.endswith(".jsonl"):
                with contextlib.suppress(OSError):  # replaced or removed while we looked
                    total += (Path(root) / name).read_bytes().count(b"\n")
    return total


def test_progress_poller_tolerates_entries_that_vanish(tmp_path, monkeypatch):
    """The trainer renames checkpoint staging folders while the poller walks the output: a
    folder listed by its parent and gone before it is read must be skipped, not raise."""
    (tmp_path / "results.jsonl").write_text("{}\n{}\n")
    staging = tmp_path / "checkpoints" / ".step-2.tmp"
    staging.mkdir(parents=True)
    (staging / "log.jsonl").write_text("{}\n")
    real_scandir = os.scandir

    def scandir_after_rename(path="."):
        # The rename lands between the parent's listing and this folder's reading.
        if isinstance(path, (str, os.PathLike)) and Path(path) == staging:
            staging.rename(tmp_path / "checkpoints" / "step-2")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir_after_rename)
    assert _lines_written(tmp_path) == 2


def _kill_at_random_moments(args: list[str], cache: Path, out: Path, whole: int) -> list:
    """Start the run up to ``KILLS`` times, SIGKILLing it at a seeded random point of progress
    (a line count below the uninterrupted run's ``whole``, then up to 0.3 s more)."""
    rng = random.Random(SEED)
    moments = [(rng.randint(1, whole - 1), rng.uniform(0.0, 0.3)) for _ in range(KILLS)]
    return kill_at_progress(lambda: _start(args, cache), lambda: _lines_written(out), moments)


STUDY = """
[study]
name = "sigkill"
strategies = ["hybrid"]
seeds = [0]
keep_models = false

[[models]]
name = "offline:multilingual-e5-small@L1"

[train]
max_steps = 8
batch_size = 8
logging_steps = 1
log_batches = true
languages = ["en", "de", "es"]
save_steps = 2
eval_steps = 4
query_max_length = 16
passage_max_length = 24
freeze_embeddings = true

[[eval]]
dataset = "xquad-r"
articles = 2
languages = ["en", "de", "es"]
with_context = false
query_max_length = 16
passage_max_length = 24

"""


def test_study_killed_at_random_moments(tmp_path, data_dir, model_cache):
    config = tmp_path / "study.toml"
    config.write_text(STUDY)

    def args(out: Path) -> list[str]:
        return ["study", "--config", str(config), "--output-dir", str(out),
                "--data-dir", str(data_dir), "--progress", "false"]  # fmt: skip

    # Separate embedding caches: the killed run must not reuse the reference's embeddings.
    _copy_models(model_cache, tmp_path)
    _run(args(tmp_path / "whole"), tmp_path / "cache-whole")
    moments = _kill_at_random_moments(
        args(tmp_path / "killed"),
        tmp_path / "cache-killed",
        tmp_path / "killed",
        _lines_written(tmp_path / "whole"),
    )
    _run(args(tmp_path / "killed"), tmp_path / "cache-killed")
    assert moments, "no kill landed before the run finished"

    def rows(out: Path) -> dict[tuple[str, str], dict]:
        lines = (out / "results.jsonl").read_text().splitlines()
        parsed = [json.loads(line) for line in lines]  # every line whole
        keyed = {(r["cell"], r["eval_set"]): r for r in parsed}
        assert len(keyed) == len(parsed), "a row was written twice"
        return keyed

    whole, killed = rows(tmp_path / "whole"), rows(tmp_path / "killed")
    assert whole.keys() == killed.keys() and len(whole) == 2
    for key, row in whole.items():
        assert killed[key]["metrics"] == row["metrics"], (key, moments)
        a = np.load(tmp_path / "whole" / row["per_query"])
        b = np.load(tmp_path / "killed" / killed[key]["per_query"])
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])


def _copy_models(model_cache: Path, tmp_path: Path) -> None:
    # Both caches need the converted offline model (read only): link it, do not convert twice.
    for name in ("cache-whole", "cache-killed"):
        target = tmp_path / name
        target.mkdir(exist_ok=True)
        if not (target / "models").exists():
            (target / "models").symlink_to(model_cache / "models", target_is_directory=True)


@pytest.fixture
def caches(tmp_path, model_cache):
    _copy_models(model_cache, tmp_path)
    return tmp_path


def test_train_killed_at_random_moments(tmp_path, data_dir, caches):
    from safetensors.torch import load_file

    def args(out: Path, *extra: str) -> list[str]:
        return ["train", "--model", "offline:multilingual-e5-small@L1", "--train", "mlqa-r",
                "--languages", "en,de,es", "--data-dir", str(data_dir), "--sampling", "hybrid",
                "--batch-size", "8", "--max-steps", "16", "--save-steps", "2", "--eval-steps", "4",
                "--logging-steps", "3",
                "--query-max-length", "16", "--passage-max-length", "24", "--log-batches",
                "--freeze-embeddings", "--save-total-limit", "1",
                "--output-dir", str(out), *extra]  # fmt: skip

    _run(args(tmp_path / "whole"), tmp_path / "cache-whole")
    rng_moments = _kill_at_random_moments(
        args(tmp_path / "killed", "--resume"),
        tmp_path / "cache-killed",
        tmp_path / "killed",
        _lines_written(tmp_path / "whole"),
    )
    _run(args(tmp_path / "killed", "--resume"), tmp_path / "cache-killed")
    assert rng_moments, "no kill landed before the run finished"
    a = load_file(tmp_path / "whole" / "model" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "model" / "model.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), (key, rng_moments)
    for name in ("batches.jsonl", "train_log.jsonl"):
        whole = [json.loads(x) for x in (tmp_path / "whole" / name).read_text().splitlines()]
        killed = [json.loads(x) for x in (tmp_path / "killed" / name).read_text().splitlines()]
        if name == "train_log.jsonl":  # wall-clock fields differ, the numbers must not
            for row in whole + killed:
                row.pop("examples_per_s", None)
                row.pop("elapsed_s", None)
        assert whole == killed, name
