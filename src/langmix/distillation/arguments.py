"""The settings of a distillation run (``langmix distill``), validated up front.

A :class:`DistillArguments` is also the *recipe* of a student: every setting that shapes its
weights goes into :meth:`DistillArguments.recipe`, whose hash names the cached student, so a
changed recipe is a new model, never a silently reused one.

Example:
    >>> args = DistillArguments(layers=4, output_dir="runs/distill-L4")
    >>> args.recipe()["layers"], len(args.recipe_hash())
    (4, 12)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

#: Bump when the loop, the text selection or the student's initialisation changes, so that
#: students cached by an older recipe are distilled again.
DISTILL_VERSION = 1
#: Datasets whose text may be distilled on (their training part only).
DISTILL_DATASETS = ("mlqa-r",)
#: Evaluation-only data: never distilled on, whatever the split.
EVALUATION_ONLY = ("xquad-r",)
LOSSES = ("cosine", "mse")
#: Settings that do not change the student's weights (not part of the recipe).
NON_SHAPING = ("output_dir", "data_dir", "save_steps", "logging_steps", "overwrite")


@dataclass
class DistillArguments:
    """How a student is made from a teacher.

    Attributes mirror the ``langmix distill`` options; see each field's help.

    Example:
        >>> DistillArguments(layers=13, output_dir="o")
        Traceback (most recent call last):
        ...
        ValueError: --layers must be in 1..11 for a 12-layer teacher (a student is shallower than its teacher), got 13
    """

    layers: int = field(metadata={"help": "Transformer layers of the student (1..11)."})
    output_dir: str = field(metadata={"help": "Where the run and the finished student go."})
    teacher: str = field(
        default="offline:multilingual-e5-small",
        metadata={"help": "The 12-layer teacher (an offline name, a local directory or a hub id)."},
    )
    dataset: str = field(
        default="mlqa-r",
        metadata={"help": "Text to distil on: the training part of this set (mlqa-r)."},
    )
    data_dir: str | None = field(default=None, metadata={"help": "Local data directory."})
    languages: list[str] | None = field(
        default=None, metadata={"help": "Languages to distil on (default: all of the set's)."}
    )
    max_texts_per_language: int | None = field(
        default=None,
        metadata={"help": "Keep only each language's first N texts (quick runs and tests)."},
    )
    validation_fraction: float = field(
        default=0.1,
        metadata={
            "help": "The split whose training part is distilled on: its validation share (keep "
            "equal to the study's, so its validation and test parts stay unseen)."
        },
    )
    test_fraction: float = field(
        default=0.2, metadata={"help": "The split's test share (as the study's)."}
    )
    split_seed: int = field(default=0, metadata={"help": "The split's seed (as the study's)."})
    steps: int = field(default=1200, metadata={"help": "Optimizer steps."})
    batch_size: int = field(
        default=32, metadata={"help": "Texts per step, the languages in equal shares."}
    )
    max_length: int = field(
        default=64,
        metadata={
            "help": "Tokens per text (longer: cut). 64 is the study's passage length; a batch "
            "pads to its longest text, so longer limits cost the paragraphs' length on every "
            "step."
        },
    )
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak AdamW learning rate."})
    warmup_ratio: float = field(default=0.05, metadata={"help": "Share of steps of warm-up."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    loss: str = field(
        default="cosine",
        metadata={
            "help": "cosine: 1 - cos(student, teacher); mse: sentence-transformers' MSELoss "
            "on the normalised embeddings."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the text order and dropout."})
    save_steps: int = field(
        default=100, metadata={"help": "Checkpoint every N steps (resume point after a kill)."}
    )
    logging_steps: int = field(
        default=10, metadata={"help": "Log the mean loss every N steps (train_log.jsonl)."}
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace a distillation of another recipe in --output-dir."},
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, teacher_layers: int = 12) -> None:
        """Check every setting; raise ``ValueError`` naming the option and the valid range."""
        if not isinstance(self.layers, int) or not 1 <= self.layers < teacher_layers:
            raise ValueError(
                f"--layers must be in 1..{teacher_layers - 1} for a {teacher_layers}-layer "
                "teacher (a student is shallower than its teacher), got "
                f"{self.layers}"
            )
        name = self.dataset.lower()
        if name in EVALUATION_ONLY:
            raise ValueError(
                f"--dataset {self.dataset}: {name} is evaluation data (the zero-shot test set) "
                "and is never distilled on; use " + " or ".join(DISTILL_DATASETS)
            )
        if name not in DISTILL_DATASETS:
            raise ValueError(
                f"--dataset {self.dataset!r}: distillation text comes from "
                + " or ".join(DISTILL_DATASETS)
            )
        if not 0.0 <= self.validation_fraction < 1.0 or not 0.0 <= self.test_fraction < 1.0:
            raise ValueError("--validation-fraction and --test-fraction must be in [0, 1)")
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise ValueError("--validation-fraction + --test-fraction must leave a training part")
        if self.max_texts_per_language is not None and self.max_texts_per_language < 1:
            raise ValueError("--max-texts-per-language must be at least 1")
        for option in ("steps", "batch_size", "max_length", "save_steps", "logging_steps"):
            if getattr(self, option) < 1:
                raise ValueError(f"--{option.replace('_', '-')} must be at least 1")
        if not self.learning_rate > 0:
            raise ValueError(f"--learning-rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.loss not in LOSSES:
            raise ValueError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")

    def recipe(self) -> dict[str, Any]:
        """Every setting that shapes the student's weights, plus the loop's version."""
        settings = {k: v for k, v in asdict(self).items() if k not in NON_SHAPING}
        settings["dataset"] = settings["dataset"].lower()
        return {"distill_version": DISTILL_VERSION, **settings}

    def recipe_hash(self) -> str:
        """12 hex digits of the recipe's SHA-256: the name of the cached student."""
        text = json.dumps(self.recipe(), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


__all__ = [
    "DISTILL_DATASETS",
    "DISTILL_VERSION",
    "EVALUATION_ONLY",
    "LOSSES",
    "DistillArguments",
]
