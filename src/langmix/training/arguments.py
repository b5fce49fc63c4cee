"""Typed arguments of a training run (``langmix train``): every setting, validated up front.

Validation (the loss on the held-out split) runs only when something uses it, since on a CPU
it costs as much as a good share of the training steps:

* ``eval_steps`` given: every ``eval_steps`` steps and at the last step; the final model is
  the validated step with the lowest loss (the best-checkpoint choice);
* ``early_stopping_patience`` > 0 without ``eval_steps``: every ``total_steps // (4 *
  patience)`` steps, so that ``patience`` validations without improvement span a quarter of
  the run; the final model is again the best validated step;
* neither: no validation at all, and the final model is the last step's. The validation
  split is still held out (``validation_fraction``), so the training data do not change.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from typing import Any

from langmix.data.pairs import SPLIT_VERSIONS
from langmix.sampling.sampler import STRATEGIES


@dataclass
class TrainArguments:
    """Everything that shapes one fine-tuning run; saved verbatim to ``OUTPUT/config.json``.

    Example:
        >>> args = TrainArguments(model="offline:multilingual-e5-small@L2", train=["mlqa-r"],
        ...                       output_dir="runs/t", sampling="hybrid", max_steps=100)
        >>> args.alpha
        0.5
    """

    model: str = field(metadata={"help": "Model name, offline:NAME[@Lk], hub id or local path."})
    train: list[str] = field(
        metadata={"help": "Training sets: xquad-r, mlqa-r, mmarco or PATH.jsonl (one or more)."}
    )
    output_dir: str = field(metadata={"help": "Run directory (model/, config.json, logs)."})
    sampling: str = field(
        default="hybrid", metadata={"help": f"Batch composition: {', '.join(STRATEGIES)}."}
    )
    alpha: float = field(default=0.5, metadata={"help": "P(mono batch) under hybrid sampling."})
    batch_size: int = field(default=32, metadata={"help": "Global batch size (all devices)."})
    max_steps: int | None = field(default=None, metadata={"help": "Optimizer steps to run."})
    epochs: float | None = field(
        default=None, metadata={"help": "Epochs (1 epoch = training pairs // batch size steps)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of batches, initialisation, dropout."})
    languages: list[str] | None = field(
        default=None, metadata={"help": "Training languages (default: all in the data)."}
    )
    data_dir: str | None = field(default=None, metadata={"help": "Local data directory."})
    learning_rate: float = field(default=3e-5, metadata={"help": "Peak AdamW learning rate."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Share of steps of linear warmup."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping (0: off)."})
    temperature: float = field(default=0.05, metadata={"help": "InfoNCE temperature."})
    symmetric: bool = field(default=False, metadata={"help": "Add passage-to-query loss."})
    hard_negatives: int = field(
        default=0, metadata={"help": "Hard negatives per example (from the data's negatives)."}
    )
    query_max_length: int = field(default=64, metadata={"help": "Query truncation (tokens)."})
    passage_max_length: int = field(default=128, metadata={"help": "Passage truncation."})
    with_context: bool = field(
        default=True,
        metadata={"help": "LAReQA positives as sentence + paragraph (as evaluated)."},
    )
    language_weighting: str = field(
        default="uniform", metadata={"help": "Mono batch language: uniform or size."}
    )
    set_temperature: float = field(
        default=1.0, metadata={"help": "Training-set sampling temperature (several sets)."}
    )
    max_train_queries: int | None = field(
        default=None, metadata={"help": "mMARCO: number of training queries to use."}
    )
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Held-out share of article groups (0: no validation)."}
    )
    test_fraction: float = field(
        default=0.0,
        metadata={
            "help": "Share of article groups set aside as an untouched test part: never "
            "trained on, never used for validation (a study's split = 'heldout')."
        },
    )
    split_seed: int = field(
        default=0, metadata={"help": "Seed of the train/validation split (keep fixed in studies)."}
    )
    split_version: int = field(
        default=1,
        metadata={
            "help": "Split version: 1, or 2 (the same train and validation parts, and a test "
            "part without the groups that validated before a test part existed; see "
            "ParallelPairs.partition)."
        },
    )
    eval_steps: int | None = field(
        default=None,
        metadata={
            "help": "Validate every N steps and keep the best validated model as the final "
            "one. Default: none without early stopping (the final model is the last step's); "
            "with --early-stopping-patience P, every total_steps // (4 P) steps."
        },
    )
    early_stopping_patience: int = field(
        default=0,
        metadata={
            "help": "Stop after N validations without improvement (0: off); needs a "
            "validation split, and validates as --eval-steps says."
        },
    )
    save_steps: int | None = field(
        default=None,
        metadata={
            "help": "Checkpoint every N steps, and at the last step (default: the validation "
            "interval, else 10 times a run)."
        },
    )
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept (plus best)."})
    logging_steps: int = field(default=10, metadata={"help": "train_log.jsonl every N steps."})
    freeze_embeddings: bool = field(
        default=False,
        metadata={"help": "Freeze the word embeddings (saves much of a CPU step)."},
    )
    gradient_cache_chunk: int | None = field(
        default=None,
        metadata={
            "help": "GradCache: embed the batch this many texts at a time (same gradients, "
            "activation memory of one chunk); default off."
        },
    )
    mixed_precision: str = field(default="no", metadata={"help": "no, bf16 or fp16 (GPU)."})
    full_determinism: bool = field(
        default=False,
        metadata={
            "help": "Deterministic CUDA kernels (transformers' enable_full_determinism): "
            "bit-reproducible GPU runs without mixed precision, at some speed. CPU runs are "
            "deterministic without it."
        },
    )
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace a finished or foreign run in output_dir."}
    )
    log_batches: bool = field(default=False, metadata={"help": "Write batches.jsonl."})
    save_model: bool = field(
        default=True,
        metadata={
            "help": "Write the final model to OUTPUT/model (a study that keeps no models "
            "evaluates it in memory instead)."
        },
    )
    report_to: str = field(
        default="none",
        metadata={
            "help": "Training curves (loss, learning rate, validation loss): none, "
            "tensorboard (OUTPUT/tensorboard), wandb (needs the wandb package) or mlflow "
            "(with the settings; pip install langmix[mlflow])."
        },
    )
    run_name: str | None = field(
        default=None,
        metadata={"help": "Run name for --report-to wandb (default: the output directory's)."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.train, str):
            self.train = [self.train]
        if self.languages is not None:
            # Accept "--languages en de" and "--languages en,de" (as langmix eval does).
            items = [self.languages] if isinstance(self.languages, str) else self.languages
            self.languages = [part for item in items for part in item.split(",") if part]
        if not self.train:
            raise ValueError("--train needs at least one training set")
        if self.sampling not in STRATEGIES:
            raise ValueError(
                f"--sampling must be one of {', '.join(STRATEGIES)}, got {self.sampling!r}"
            )
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"--alpha must be in [0, 1], got {self.alpha}")
        if (self.max_steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of --max-steps and --epochs")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"--max-steps must be positive, got {self.max_steps}")
        if self.epochs is not None and self.epochs <= 0:
            raise ValueError(f"--epochs must be positive, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(f"--batch-size must be at least 2, got {self.batch_size}")
        if self.gradient_cache_chunk is not None and self.gradient_cache_chunk < 1:
            raise ValueError(
                f"--gradient-cache-chunk must be positive, got {self.gradient_cache_chunk}"
            )
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                f"--validation-fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(f"--test-fraction must be in [0, 1), got {self.test_fraction}")
        if self.test_fraction and not self.validation_fraction:
            raise ValueError("--test-fraction needs a validation split (--validation-fraction > 0)")
        if self.split_version not in SPLIT_VERSIONS:
            raise ValueError(
                f"--split-version must be one of {SPLIT_VERSIONS}, got {self.split_version}"
            )
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise ValueError("--validation-fraction + --test-fraction must leave training data")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(
                f"--mixed-precision must be no, bf16 or fp16, got {self.mixed_precision!r}"
            )
        if self.language_weighting not in ("uniform", "size"):
            raise ValueError(
                f"--language-weighting must be uniform or size, got {self.language_weighting!r}"
            )
        for name in ("query_max_length", "passage_max_length", "logging_steps", "save_total_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be positive")
        if self.hard_negatives < 0:
            raise ValueError(f"--hard-negatives must be >= 0, got {self.hard_negatives}")
        for name in ("eval_steps", "save_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.early_stopping_patience < 0:
            raise ValueError(
                f"--early-stopping-patience must be >= 0, got {self.early_stopping_patience}"
            )
        if self.early_stopping_patience and not self.validation_fraction:
            raise ValueError(
                "--early-stopping-patience needs a validation split (--validation-fraction > 0)"
            )
        check_report_to(self.report_to)

    def validation_interval(self, total_steps: int) -> int | None:
        """Steps between validations of a ``total_steps`` run; ``None``: no validation.

        Example:
            >>> args = TrainArguments(model="m", train=["mlqa-r"], output_dir="o", max_steps=80)
            >>> args.validation_interval(80) is None
            True
            >>> args.early_stopping_patience = 2
            >>> args.validation_interval(80)
            10
        """
        if self.eval_steps is not None:
            return self.eval_steps
        if self.early_stopping_patience:
            return max(1, total_steps // (4 * self.early_stopping_patience))
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Settings that do not change what a run computes: a resumed run may differ in these.
NON_SHAPING = frozenset(
    {
        "output_dir",
        "resume",
        "overwrite_output_dir",
        "data_dir",
        "logging_steps",
        "log_batches",
        "save_model",
        "report_to",
        "run_name",
    }
)

#: ``--report-to`` values and the package each needs.
#: Each tracker's module, and what installs it.
TRACKERS = {
    "none": None,
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow", "'langmix[mlflow]'"),
}


def check_report_to(value: str) -> None:
    """Refuse an unknown tracker, or one whose package is missing, before anything runs.

    Raises:
        ValueError: A one-line reason with the fix.

    Example:
        >>> check_report_to("none")
    """
    if value not in TRACKERS:
        raise ValueError(f"--report-to must be one of {', '.join(TRACKERS)}, got {value!r}")
    needed = TRACKERS[value]
    if needed is not None and importlib.util.find_spec(needed[0]) is None:
        raise ValueError(
            f"--report-to {value} needs the {needed[0]} package, which is not installed "
            f"(pip install {needed[1]}, or --report-to none)"
        )
