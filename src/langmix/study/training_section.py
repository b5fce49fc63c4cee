"""The report's Training section: how far each cell trained and whether training helped.

Per size and strategy, the steps each seed kept and how many stopped early; whether the
step cap or the validation criterion ended training (:func:`budget_sentence`, the report's
"fixed budget"); and a check, on the validation part only, that some strategy beat the
untrained model at every size.
"""

from __future__ import annotations

from typing import Any

from langmix.study.comparisons import is_test_set
from langmix.study.results import Arm, Study, cell_summary, markdown_table

__all__ = ["budget_sentence", "section_training"]


def _training(row: dict[str, Any]) -> dict[str, Any]:
    return row.get("training") or {}


def section_training(study: Study) -> list[str]:
    """How far each size trained, and whether training beat the untrained model.

    Steps come from the validation curve (early stopping on the validation part); the check
    against the untrained model reads the ``…:validation`` evaluation set, never a test set.

    Example:
        >>> section_training(study)[0]  # doctest: +SKIP
        '## Training'
    """
    lines = ["## Training", ""]
    trained = [r for r in study.rows if r["strategy"] != "untrained" and _training(r)]
    if not trained:
        return []
    # By seed, so that the per-cell lists below are in seed order whatever the row order.
    one_per_cell = sorted({r["cell"]: r for r in trained}.values(), key=lambda r: r["seed"] or 0)
    temperatures = sorted({_training(r).get("temperature") for r in one_per_cell} - {None})
    if temperatures:
        lines += [
            "InfoNCE temperature: "
            + ", ".join(f"{t:g}" for t in temperatures)
            + " (the paper states none; sentence-transformers' MultipleNegativesRankingLoss "
            "uses 0.05, E5 fine-tunes at 0.01).",
            "",
        ]
    dropped = sorted(
        {
            f"{r['cell']}: {', '.join(langs)}"
            for r in one_per_cell
            for langs in (_training(r).get("mono_languages_dropped") or {}).values()
        }
    )
    lines += [
        (
            "Languages left out of monolingual batches (fewer items than a batch): "
            + "; ".join(dropped)
            + ". These cells trained on fewer languages than the others."
        )
        if dropped
        else "Every strategy trained on the same languages: no language had fewer items than "
        "a batch.",
        "",
    ]
    body = []
    for size in study.sizes:
        for arm in study.arms:
            cells = [
                _training(r)
                for r in one_per_cell
                if r["model"] == size.model
                and (r["strategy"], r.get("alpha")) == (arm.strategy, arm.alpha)
            ]
            if not cells:
                continue
            best = [c.get("best_step") for c in cells]
            body.append(
                [
                    size.label,
                    arm.label,
                    str(cells[0].get("total_steps")),
                    ", ".join("?" if b is None else str(b) for b in best),
                    str(sum(bool(c.get("stopped_early")) for c in cells)),
                    f"{cells[0].get('learning_rate', float('nan')):g}",
                ]
            )
    lines += [
        "Steps kept per cell (seeds in order): the trained step with the lowest validation "
        "loss (step 0, the untrained model, is scored as the curve's reference but never kept; "
        "the check below compares the kept model with it).",
        "",
        *markdown_table(
            ["size", "strategy", "max steps", "steps kept", "stopped early", "lr"], body
        ),
        "",
        budget_sentence(study, one_per_cell),
    ]
    lines += _untrained_check(study)
    return lines


def budget_sentence(study: Study, cells: list[dict[str, Any]]) -> str:
    """Whether the step cap or the validation criterion ended training: the report's
    "fixed budget" or "trained to the criterion", from the cells' records.

    A cell is *capped* when it kept its last step without stopping early: its validation
    loss was still falling when the step cap ended it.

    Example:
        >>> budget_sentence(study, cells)  # doctest: +SKIP
        'Budget: fixed. 30 of 32 trained cells kept their last step ...'
    """
    capped: dict[str, list[bool]] = {}
    for row in cells:
        record = _training(row)
        if record.get("best_step") is None or record.get("steps") is None:
            continue
        last = record["best_step"] == record["steps"] and not record.get("stopped_early")
        capped.setdefault(row["model"], []).append(last)
    if not capped:
        return "Budget: the cells' records do not say which step they kept."
    n_capped = sum(sum(v) for v in capped.values())
    n_cells = sum(len(v) for v in capped.values())
    per_size = ", ".join(
        f"{size.label} {sum(capped[size.model])}/{len(capped[size.model])}"
        for size in study.sizes
        if size.model in capped
    )
    if 2 * n_capped > n_cells:
        return (
            f"Budget: **fixed**. {n_capped} of {n_cells} trained cells kept their last step "
            f"without stopping early ({per_size}): their validation loss was still falling "
            "when the step cap ended training, so every claim here is about this budget, not "
            "about training run to convergence."
        )
    return (
        f"Budget: trained to the validation criterion. {n_cells - n_capped} of {n_cells} "
        f"trained cells stopped early or kept an earlier step than their last (capped: "
        f"{per_size})."
    )


def _untrained_check(study: Study) -> list[str]:
    validation = [e for e in study.eval_sets if not is_test_set(e)]
    if not validation:
        return [
            "No validation evaluation set, so the report cannot check that training beat the "
            "untrained model without looking at test data.",
            "",
        ]
    eval_set = validation[0]
    lines = [
        f"Did training beat the untrained model? Seed-mean mAP on `{eval_set}` minus the "
        "untrained model's (the checkpoint-choosing data, not a test set):",
        "",
    ]
    body, flagged = [], []
    for size in study.sizes:
        base = study.cell_rows(eval_set, size, Arm("untrained"))
        if not base:
            continue
        beats_any = False
        for arm in study.arms_for(eval_set):
            if arm.strategy == "untrained":
                continue
            rows = study.cell_rows(eval_set, size, arm)
            if not rows:
                continue
            deltas = []
            for metric in ("map_mono", "map_cross"):
                mean, _ = cell_summary(rows, metric)
                ref, _ = cell_summary(base, metric)
                deltas.append(mean - ref)
            beats = any(d > 0 for d in deltas)
            beats_any |= beats
            body.append(
                [
                    size.label,
                    arm.label,
                    *(f"{d:+.3f}" for d in deltas),
                    "yes" if beats else "**no**",
                ]
            )
        if not beats_any:
            flagged.append(size.label)
    lines += markdown_table(
        ["size", "strategy", "Δ mAP mono", "Δ mAP cross", "beats untrained"], body
    )
    if flagged:
        lines += [
            f"**Flagged: {', '.join(flagged)}** — no strategy beat the untrained model on "
            "the validation part in mono or cross mAP, so effects at these sizes describe how "
            "batches damage a model, not how it learns.",
            "",
        ]
    else:
        lines += [
            "Every size has a strategy that beats its untrained model on the validation part.",
            "",
        ]
    return lines
