"""Distil the offline size family and measure it against the cuts and the teacher, untrained.

For each size K (default 2, 4, 8): the default recipe's student
(``offline:multilingual-e5-small-distilled@L{K}``, distilled on first use and cached) and the
layer cut of the same depth (``offline:multilingual-e5-small@L{K}``), plus the 12-layer
teacher, are evaluated untrained on the whole of XQuAD-R (11 languages, 48 articles) with
the study's settings (answer sentences without their paragraph, queries up to 48 and
passages up to 64 tokens). The figures go to ``docs/results/distilled-family/family.json``
(committed) and the table in ``docs/distillation.md`` is generated from that file alone.

Resumable: a finished student is reused from the cache, a finished evaluation (its
``metrics.json``) is not redone.

Usage:
    python scripts/distilled_family.py [--data-dir DIR] [--sizes 2 4 8]   # measure, write
    python scripts/distilled_family.py --render  # the doc's table from family.json alone
    python scripts/distilled_family.py --check   # the doc's table equals family.json's
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

RESULTS = REPO / "docs" / "results" / "distilled-family" / "family.json"
DOC = REPO / "docs" / "distillation.md"
RUNS = REPO / "runs" / "distilled-family"
TEACHER = "offline:multilingual-e5-small"
EVAL = {"query_max_length": 48, "passage_max_length": 64, "with_context": False}
BLOCK = "distilled-family"


def _metrics(model: str, data_dir: str | None) -> dict[str, Any]:
    from langmix.evaluation.arguments import EvalArguments
    from langmix.evaluation.run import run_eval
    from langmix.models.offline import offline_parameter_counts
    from langmix.outputs import safe_name

    out = RUNS / "eval" / safe_name(model)
    path = out / "metrics.json"
    if not path.is_file():
        run_eval(EvalArguments(model=model, dataset="xquad-r", output_dir=str(out),
                               data_dir=data_dir, **EVAL))  # fmt: skip
    doc = json.loads(path.read_text(encoding="utf-8"))
    counts = offline_parameter_counts(model)  # shapes only: the evaluation loaded it
    return {
        "model": model,
        "non_embedding_parameters": counts.non_embedding,
        "map": doc["map"],
        "recall": doc["recall"],
        "rank_distance": doc["rank_distance"],
        "n_queries": doc["n_queries"],
        "n_candidates": doc["n_candidates"],
    }


def measure(sizes: list[int], data_dir: str | None) -> dict[str, Any]:
    from langmix.distillation import distilled_model_dir

    students = {}
    for k in sizes:
        started = time.perf_counter()
        model_dir = distilled_model_dir(k, data_dir=data_dir)
        summary = json.loads((model_dir.parent / "summary.json").read_text(encoding="utf-8"))
        students[str(k)] = {
            "recipe": summary["recipe"],
            "recipe_hash": summary["recipe_hash"],
            "texts": summary["texts"],
            "texts_dropped_as_evaluation_text": summary["texts_dropped_as_evaluation_text"],
            "final_loss": summary["final_loss"],
            "teacher_seconds": summary["teacher_seconds"],
            "loop_seconds": summary["loop_seconds"],
            "seconds_per_step": summary["seconds_per_step"],
            "resumed_from": summary["resumed_from"],
            "wall_seconds_this_call": round(time.perf_counter() - started, 1),
        }
    rows = {"teacher": _metrics(TEACHER, data_dir)}
    for k in sizes:
        rows[f"cut-L{k}"] = _metrics(f"{TEACHER}@L{k}", data_dir)
        rows[f"distilled-L{k}"] = _metrics(f"{TEACHER}-distilled@L{k}", data_dir)
    sys.path.insert(0, str(REPO / "bench"))
    from _common import environment

    return {
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "evaluation": {"dataset": "xquad-r (all 48 articles, 11 languages)", **EVAL},
        "sizes": sizes,
        "students": students,
        "models": rows,
        "environment": environment(),
    }


def _pct(value: float, reference: float) -> str:
    return f"{100 * value / reference:.0f}%"


def table(doc: dict[str, Any]) -> str:
    """The generated block: one row per model, students beside the cut of their depth."""
    teacher = doc["models"]["teacher"]
    ref = teacher["map"]
    lines = [
        f"Untrained, on {doc['evaluation']['dataset']}: answer sentences without their "
        f"paragraph, queries up to {doc['evaluation']['query_max_length']} and passages up to "
        f"{doc['evaluation']['passage_max_length']} tokens. Percentages are of the teacher's "
        "mAP. Rank distance: mean max − min rank of a question's parallel answers in the "
        "pooled ranking (lower is less language bias).",
        "",
        "| model | non-embedding params | mAP mono | mAP cross | mAP multi | rank distance "
        "| distillation (2 cores) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def row(label: str, m: dict[str, Any], cost: str) -> str:
        cells = []
        for metric in ("mono", "cross", "multi"):
            value = m["map"][metric]
            share = "" if m is teacher else f" ({_pct(value, ref[metric])})"
            cells.append(f"{value:.3f}{share}")
        return (
            f"| {label} | {m['non_embedding_parameters'] / 1e6:.1f}M | {' | '.join(cells)} "
            f"| {m['rank_distance']:.0f} | {cost} |"
        )

    for k in doc["sizes"]:
        s = doc["students"][str(k)]
        minutes = (s["teacher_seconds"] + s["loop_seconds"]) / 60
        cost = f"{minutes:.1f} min ({s['recipe']['steps']} steps)"
        lines.append(row(f"cut L{k}", doc["models"][f"cut-L{k}"], "—"))
        lines.append(row(f"**distilled L{k}**", doc["models"][f"distilled-L{k}"], cost))
    lines.append(row("teacher (12 layers)", teacher, "—"))
    first = doc["students"][str(doc["sizes"][0])]
    lines += ["", _aims(doc)]
    lines += [
        "",
        f"Teacher targets (computed once, shared by all sizes): "
        f"{sum(first['texts'].values()):,} texts; the first student's time includes them "
        f"({first['teacher_seconds'] / 60:.1f} min). Measured {doc['finished_at'][:10]} on "
        f"{doc['environment']['cpu']}, {doc['environment']['cores']} cores.",
    ]
    return "\n".join(lines)


#: The share of the teacher's mono and cross mAP each student was meant to keep, untrained.
AIMS = {8: 0.90, 4: 0.75}
#: ... and the distillation time each was meant to fit in (minutes, teacher targets included).
AIM_MINUTES = 20


def _aims(doc: dict[str, Any]) -> str:
    teacher = doc["models"]["teacher"]["map"]
    parts = []
    for k, aim in AIMS.items():
        if f"distilled-L{k}" not in doc["models"]:
            continue
        student = doc["models"][f"distilled-L{k}"]["map"]
        shares = {m: student[m] / teacher[m] for m in ("mono", "cross")}
        met = [m for m, v in shares.items() if v >= aim]
        verdict = "met" if len(met) == 2 else f"met for {met[0]} only" if met else "not met"
        parts.append(
            f"L{k} ≥ {aim:.0%} of the teacher's mono and cross mAP: {verdict} "
            f"({shares['mono']:.0%} and {shares['cross']:.0%})"
        )
    minutes = {
        k: (s["teacher_seconds"] + s["loop_seconds"]) / 60 for k, s in doc["students"].items()
    }
    slow = [f"L{k} ({m:.1f} min)" for k, m in minutes.items() if m > AIM_MINUTES]
    parts.append(
        f"at most {AIM_MINUTES} min of distillation per student on 2 cores: "
        + (f"exceeded by {', '.join(slow)}" if slow else "met")
    )
    return "Aims: " + "; ".join(parts) + "."


def render(text: str, doc: dict[str, Any]) -> str:
    pattern = re.compile(rf"(<!-- {BLOCK} -->\n)(.*?)(<!-- /{BLOCK} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{DOC}: no <!-- {BLOCK} --> block")
    return pattern.sub(lambda m: m.group(1) + table(doc) + "\n" + m.group(3), text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--check", action="store_true", help="exit 1 if the doc is stale")
    parser.add_argument(
        "--render", action="store_true", help="rewrite the doc from family.json, measure nothing"
    )
    args = parser.parse_args()
    if not (args.check or args.render):
        doc = measure(args.sizes, args.data_dir)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    doc = json.loads(RESULTS.read_text(encoding="utf-8"))
    text = DOC.read_text(encoding="utf-8")
    new = render(text, doc)
    if args.check:
        if new != text:
            print(f"{DOC} is stale: run python scripts/distilled_family.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
