"""Every key of a study TOML file, with what it means: the vocabulary the config validates
against and the source of ``docs/study-config.md``.

:mod:`langmix.study.config` refuses a key not listed here (naming the closest one), and
:func:`reference` renders the tables of keys, so the documentation cannot drift from what is
accepted (``tests/study/test_config_reference.py`` compares the committed page with it).
``[train]`` takes the options of :class:`langmix.training.arguments.TrainArguments`, listed
from its fields.

Regenerate the page with ``python -m langmix.study.config_keys > docs/study-config.md``.
"""

from __future__ import annotations

from dataclasses import MISSING, fields

__all__ = ["EVAL_KEYS", "MODEL_KEYS", "STUDY_KEYS", "reference"]

# Train settings the grid itself sets per cell; a config may not fix them in [train].
_CELL_SETTINGS = {"model", "output_dir", "sampling", "alpha", "seed", "resume", "run_name"}
# Train settings every model must share: the data and its split, so that all cells are
# evaluated on the same held-out questions.
_SHARED_SETTINGS = {
    "train",
    "languages",
    "data_dir",
    "validation_fraction",
    "test_fraction",
    "split_seed",
    "split_version",
    "with_context",
}
# Train settings that follow a [study] setting.
_STUDY_SETTINGS = {"report_to": "report_to", "save_model": "keep_models"}

#: ``[study]``: key -> (TOML type, default, meaning).
STUDY_KEYS: dict[str, tuple[str, str, str]] = {
    "name": ("string", "required", "The study's name; every row records it."),
    "description": (
        "string",
        '""',
        "What was run and what was cut, in words: printed in the report's 'What was run'.",
    ),
    "compare_with": (
        "string",
        '""',
        "A sibling study beside this one (another size family, the same sizes at another "
        "budget) whose claims the report pairs with this one's.",
    ),
    "strategies": (
        "list of strings",
        "all",
        "Batch strategies of the grid: mono, cross, hybrid, random.",
    ),
    "alphas": ("list of numbers", "[0.5]", "Hybrid's alphas, one cell per alpha."),
    "seeds": ("list of integers", "[0]", "Training seeds of every trained cell."),
    "strategy_seeds": (
        "table of lists",
        "{}",
        "Other seeds for some strategies, e.g. { random = [0, 1, 2] } (see langmix power).",
    ),
    "primary": (
        "string",
        "the first test set",
        "The evaluation set of the primary family of tests.",
    ),
    "equivalence_margin": (
        "number",
        "0.005",
        "The margin of the equivalence tests (TOST), in the metric's units.",
    ),
    "untrained": ("boolean", "true", "Evaluate each model before training, as the reference."),
    "keep_models": (
        "boolean",
        "true",
        "false: evaluate each trained model in memory and never write it.",
    ),
    "report_to": (
        "string",
        '"none"',
        "Training curves of every cell: none, tensorboard, wandb or mlflow (curves, settings and evaluation metrics; one store, STUDY/mlflow.db).",
    ),
}

#: ``[[models]]``: key -> (TOML type, default, meaning).
MODEL_KEYS: dict[str, tuple[str, str, str]] = {
    "name": (
        "string",
        "required",
        "offline:multilingual-e5-small[@Lk], offline:multilingual-e5-small-distilled@Lk, a "
        "local model directory or a hub id.",
    ),
    "label": (
        "string",
        "the part after '@', or the name",
        "The size's label in rows and the report.",
    ),
    "train": (
        "table",
        "{}",
        "[train] options for this size only (steps, learning rate, patience, ...); not the "
        "data, its split or the grid's own settings.",
    ),
    "alphas": ("list of numbers", "[study] alphas", "This size's hybrid alphas."),
}

#: ``[[eval]]``: key -> (TOML type, default, meaning).
EVAL_KEYS: dict[str, tuple[str, str, str]] = {
    "dataset": ("string", "required", "xquad-r, mlqa-r or miracl."),
    "split": (
        "string",
        '"all"',
        "all; heldout: the training set's test groups, never trained or validated on (needs "
        "test_fraction in [train]); validation: the groups that choose checkpoints.",
    ),
    "articles": ("integer", "all", "Only the first N articles (a cheaper subset)."),
    "languages": ("list of strings", "all", "Query and pool languages."),
    "with_context": ("boolean", "true", "Candidates with their paragraph as context."),
    "query_max_length": ("integer", "64", "Query truncation, in tokens."),
    "passage_max_length": ("integer", "128", "Passage truncation, in tokens."),
    "batch_size": ("integer", "64", "Encoding batch size."),
    "corpus": (
        "string",
        "none",
        "miracl: a JSONL corpus file or a directory of {lang}.jsonl.",
    ),
    "top_k": ("integer", "100", "miracl: passages retrieved per query."),
    "trec_depth": (
        "integer",
        "0",
        "LAReQA: also write the cell's multilingual ranking as a TREC run (run.trec, qrels.trec; "
        "top N candidates per query, qid language/question) for ranx or ir-measures; 0: none.",
    ),
}


def _table(keys: dict[str, tuple[str, str, str]]) -> list[str]:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {t} | {d} | {m} |" for k, (t, d, m) in keys.items()]
    return [*lines, ""]


def _train_table() -> list[str]:
    from langmix.training.arguments import TrainArguments

    lines = ["| key | default | meaning |", "|---|---|---|"]
    for f in fields(TrainArguments):
        if f.name in _CELL_SETTINGS or f.name in _STUDY_SETTINGS:
            continue  # the grid or [study] sets them
        if f.default is not MISSING:
            default = f"`{f.default!r}`"
        elif f.default_factory is not MISSING:
            default = f"`{f.default_factory()!r}`"
        else:
            default = "required"
        meaning = str(f.metadata.get("help", "")).replace("|", "\\|").replace("\n", " ")
        shared = " Shared by every size (not in a model's train table)." * (
            f.name in _SHARED_SETTINGS
        )
        lines.append(f"| `{f.name}` | {default} | {meaning}{shared} |")
    return [*lines, ""]


def reference() -> str:
    """``docs/study-config.md``: every table and key a study TOML accepts.

    Example:
        >>> reference().splitlines()[0]
        '# Study configuration reference'
    """
    lines = [
        "# Study configuration reference",
        "",
        "Every table and key `langmix study --config FILE` accepts, generated from the",
        "definitions the configuration is validated against (`langmix.study.config_keys`,",
        "`langmix.training.arguments.TrainArguments`); a key not listed here is refused, with the",
        "closest valid one named. Regenerate with",
        "`python -m langmix.study.config_keys > docs/study-config.md`; a test keeps this page in",
        "sync. Examples: `configs/demo.toml`, `configs/cpu-powered.toml`.",
        "",
        "## [study]",
        "",
        *_table(STUDY_KEYS),
        "## [[models]] (one per size, at least one)",
        "",
        *_table(MODEL_KEYS),
        "## [train] (any training option)",
        "",
        "The options of `langmix train`, minus those the grid sets per cell ("
        + ", ".join(f"`{k}`" for k in sorted(_CELL_SETTINGS))
        + ") and those [study] sets (`report_to`; `save_model` is `keep_models`).",
        "",
        *_train_table(),
        "## [[eval]] (one per evaluation set, at least one)",
        "",
        *_table(EVAL_KEYS),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(reference(), end="")
