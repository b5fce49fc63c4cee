"""A disk that refuses writes: caught before work starts, or stops a study with one plain line
and every finished row intact."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from langmix.cli import main as langmix
from langmix.outputs import OutputError, ensure_writable
from langmix.study import runner


def test_an_unwritable_directory_is_refused_up_front(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputError, match=f"cannot write to {blocker / 'out'}"):
        ensure_writable(blocker / "out")


def test_eval_refuses_before_encoding(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = langmix(["eval", "--model", "offline:multilingual-e5-small@L1", "--dataset",
                    "xquad-r", "--output-dir", str(blocker / "out")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nothing was run" in err


def test_full_disk_stops_the_study_and_keeps_finished_rows(
    tmp_path, data_dir, offline_cache, monkeypatch, capsys
):
    config = tmp_path / "study.toml"
    config.write_text(
        '[study]\nname = "disk"\nstrategies = ["mono"]\nseeds = [0]\nuntrained = true\n'
        '[[models]]\nname = "offline:multilingual-e5-small@L1"\n'
        '[[models]]\nname = "offline:multilingual-e5-small@L2"\n'
        '[train]\nmax_steps = 1\nbatch_size = 4\nlanguages = ["en", "de"]\n'
        "query_max_length = 16\npassage_max_length = 16\nvalidation_fraction = 0.0\n"
        '[[eval]]\ndataset = "xquad-r"\narticles = 1\nlanguages = ["en", "de"]\n'
        "query_max_length = 16\npassage_max_length = 16\nwith_context = false\n"
    )
    out = tmp_path / "out"
    original = runner.append_jsonl
    written = {"rows": 0}

    def append(path: Path, row):
        if path.name == runner.RESULTS:
            if written["rows"] == 1:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            written["rows"] += 1
        original(path, row)

    monkeypatch.setattr(runner, "append_jsonl", append)
    code = langmix(["study", "--config", str(config), "--output-dir", str(out),
                    "--data-dir", str(data_dir), "--progress", "false"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "No space left on device" in err and "rerun the same command" in err
    rows = [json.loads(line) for line in (out / runner.RESULTS).read_text().splitlines()]
    assert [r["cell"] for r in rows] == ["L1/untrained"]
    # The disk error is not blamed on a cell, and the grid did not run on regardless.
    assert not (out / runner.FAILURES).exists()

    monkeypatch.setattr(runner, "append_jsonl", original)
    assert langmix(["study", "--config", str(config), "--output-dir", str(out),
                    "--data-dir", str(data_dir), "--progress", "false"]) == 0  # fmt: skip
    rows = [json.loads(line) for line in (out / runner.RESULTS).read_text().splitlines()]
    assert sorted(r["cell"] for r in rows) == [
        "L1/mono-s0", "L1/untrained", "L2/mono-s0", "L2/untrained",
    ]  # fmt: skip
