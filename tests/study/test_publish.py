"""langmix publish: the reduced results of a study, and a report that rebuilds from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_report import LAREQA, MIRACL, make_study

from langmix.cli import main
from langmix.data.errors import DataError
from langmix.study.publish import KEPT_ARRAYS, publish_study
from langmix.study.report import build_report
from langmix.study.results import load_rows
from langmix.study.statistics import headline


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("publish")
    study = root / "study"
    study.mkdir()
    make_study(study, eval_sets=(LAREQA, MIRACL), seeds=[0, 1])
    (study / "cells" / "L2" / "mono-s0" / "train").mkdir(parents=True, exist_ok=True)
    (study / "cells" / "L2" / "mono-s0" / "train" / "big.bin").write_bytes(b"\0" * 4096)
    target = root / "docs" / "results" / "synthetic"
    target.mkdir(parents=True)
    (target / "stale.txt").write_text("from an earlier publication")
    publish_study(study, target)
    return study, target


def test_publication_holds_the_rows_and_only_the_tested_arrays(published):
    study, target = published
    rows = load_rows(study / "results.jsonl").rows
    copied = load_rows(target / "results.jsonl")
    assert copied.rows == rows and not copied.skipped  # the cut line and stale duplicate go
    assert (target / "study.toml").read_bytes() == (study / "study.toml").read_bytes()
    assert not (target / "stale.txt").exists()  # the target is replaced, not merged
    assert not list(target.rglob("*.bin"))  # training state is not published
    for row in rows:
        with np.load(target / row["per_query"]) as npz:
            arrays = {k: npz[k] for k in npz.files}
        assert set(arrays) <= KEPT_ARRAYS
        assert all(a.dtype != np.float64 for a in arrays.values())
        # The reduced arrays still give the row's headlines (to float32 rounding).
        for metric in ("map_multi", "map_cross", "rank_distance", "ndcg@10"):
            if metric in row["metrics"]:
                assert headline(arrays, metric) == pytest.approx(
                    row["metrics"][metric], rel=1e-6, abs=1e-6
                )


def test_publication_rebuilds_to_the_same_report(published, tmp_path):
    _, target = published
    copy = tmp_path / "copy"
    shutil.copytree(target, copy)
    assert build_report(copy).read_text() == (target / "report.md").read_text()


def test_a_missing_per_query_file_is_named_and_nothing_is_replaced(published, tmp_path):
    study, target = published
    broken = tmp_path / "broken"
    shutil.copytree(study, broken)
    row = json.loads((broken / "results.jsonl").read_text().splitlines()[3])
    (broken / row["per_query"]).unlink()
    before = (target / "report.md").read_text()
    with pytest.raises(DataError, match="per-query file missing") as error:
        publish_study(broken, target)
    assert row["per_query"] in str(error.value)
    assert (target / "report.md").read_text() == before


def test_cli_publish(published, tmp_path, capsys):
    study, _ = published
    assert main(["publish", str(study), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.md").is_file()
    assert main(["publish", str(study)]) == 2
    assert "usage: langmix publish" in capsys.readouterr().out
