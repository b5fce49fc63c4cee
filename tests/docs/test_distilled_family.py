"""The students-against-cuts table in docs/distillation.md is generated from the committed
docs/results/distilled-family/family.json (scripts/distilled_family.py), never typed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "distilled_family.py"
RESULTS = REPO / "docs" / "results" / "distilled-family" / "family.json"


def test_the_table_regenerates_from_the_committed_results():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_the_results_cover_each_student_its_cut_and_the_teacher():
    doc = json.loads(RESULTS.read_text(encoding="utf-8"))
    models = doc["models"]
    assert "teacher" in models
    for k in doc["sizes"]:
        student, cut = models[f"distilled-L{k}"], models[f"cut-L{k}"]
        # Same depth, same shapes: the two differ only in their weights.
        assert student["non_embedding_parameters"] == cut["non_embedding_parameters"]
        assert student["n_queries"] == cut["n_queries"] == models["teacher"]["n_queries"]
        recipe = doc["students"][str(k)]["recipe"]
        assert recipe["layers"] == k and recipe["dataset"] == "mlqa-r"
