"""``langmix distill``: a shallower student trained to reproduce its teacher's embeddings.

The loop is written here rather than run through ``SentenceTransformerTrainer`` with
``MSELoss`` (sentence-transformers' own distillation recipe, whose loss is used for
``loss = "mse"``) because four things a scaling study needs are not in that recipe:

* **Equal language weighting, by position.** Slot ``g`` of the text stream belongs to
  language ``g mod L`` and takes that language's next text in a per-epoch shuffle, so every
  batch holds the languages in equal shares whatever their sizes, and any step's batch can be
  rebuilt from the step number alone.
* **Shared teacher targets.** The teacher's normalised embeddings of the distillation text
  are computed once, cached by (teacher, text, length), and reused by every student size.
* **Light, exact resumption.** A checkpoint holds only the trainable tensors (word
  embeddings stay frozen: ~96M of the parameters), the optimizer and the schedule; dropout
  is seeded per step, so a run killed at any point and resumed ends bit-identical to an
  uninterrupted one.
* **No evaluation text** (:mod:`langmix.distillation.texts`).

Example:
    >>> summary = distill(DistillArguments(layers=4, output_dir="runs/distill-L4"))  # doctest: +SKIP
    >>> load_model("runs/distill-L4/model")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from langmix.data.sources import cache_dir as default_cache_dir
from langmix.distillation.arguments import DistillArguments
from langmix.distillation.student import encoder_layers, make_student
from langmix.distillation.texts import PASSAGE, QUERY, DistillationTexts, distillation_texts
from langmix.models.model_card import CardFacts, TrainingData, fill_model_card
from langmix.outputs import append_jsonl, claim_output_dir, write_json_atomic
from langmix.training.checkpoints import (
    list_checkpoints,
    load_trainable,
    save_trainable,
    truncate_jsonl,
)
from langmix.training.optimization import (
    adamw_with_warmup,
    freeze_poolers,
    freeze_word_embeddings,
)

SUMMARY_FILE = "summary.json"
LOG_FILE = "train_log.jsonl"
MODEL_DIR = "model"
CHECKPOINTS = "checkpoints"
OPTIMIZER_FILE = "optimizer.pt"
#: Written into the student's model directory: how it was made.
STUDENT_RECORD = "langmix_distill.json"


@dataclass
class Stream:
    """The distillation text as one array per language, and the order steps read it in.

    Attributes:
        offsets: Start of each language's texts in the flat arrays.
        sizes: Number of texts per language.
        seed: Seed of the per-epoch shuffles.
    """

    offsets: np.ndarray
    sizes: np.ndarray
    seed: int

    def __post_init__(self) -> None:
        self._orders: dict[tuple[int, int], np.ndarray] = {}

    def batch(self, step: int, batch_size: int) -> np.ndarray:
        """Flat indices of step ``step``'s texts (a pure function of the step)."""
        n_languages = len(self.sizes)
        positions = np.arange(step * batch_size, (step + 1) * batch_size)
        languages, rank = positions % n_languages, positions // n_languages
        out = np.empty(batch_size, dtype=np.int64)
        for j, (lang, r) in enumerate(zip(languages.tolist(), rank.tolist(), strict=True)):
            epoch, within = divmod(r, int(self.sizes[lang]))
            out[j] = self.offsets[lang] + self._order(lang, epoch)[within]
        return out

    def _order(self, language: int, epoch: int) -> np.ndarray:
        key = (language, epoch)
        if key not in self._orders:
            rng = np.random.default_rng([self.seed, language, epoch])
            self._orders[key] = rng.permutation(int(self.sizes[language]))
        return self._orders[key]


def _flatten(texts: DistillationTexts, seed: int) -> tuple[list[str], list[str], Stream]:
    kinds, flat, offsets, sizes = [], [], [], []
    for lang in texts.languages:
        offsets.append(len(flat))
        sizes.append(len(texts.by_language[lang]))
        for kind, text in texts.by_language[lang]:
            kinds.append(kind)
            flat.append(text)
    if min(sizes, default=0) == 0:
        raise ValueError("a language has no distillation text left")
    return kinds, flat, Stream(np.array(offsets), np.array(sizes), seed)


def teacher_targets(
    teacher: Any,
    kinds: list[str],
    texts: list[str],
    *,
    max_length: int,
    cache_file: Path | None,
    show_progress: bool,
) -> np.ndarray:
    """The teacher's normalised embedding of every text (float32), cached in ``cache_file``.

    Queries get the model's ``query`` prompt and passages its ``passage`` prompt, as in use.
    """
    if cache_file is not None and cache_file.is_file():
        targets = np.load(cache_file)
        if targets.shape[0] == len(texts):
            return targets
    previous = teacher.max_seq_length
    teacher.max_seq_length = max_length
    try:
        targets = np.zeros((len(texts), teacher.get_embedding_dimension()), np.float32)
        for kind in (QUERY, PASSAGE):
            rows = [i for i, k in enumerate(kinds) if k == kind]
            if not rows:
                continue
            encoded = teacher.encode(
                [texts[i] for i in rows],
                prompt_name=kind if kind in (teacher.prompts or {}) else None,
                batch_size=64,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=show_progress,
            )
            targets[rows] = encoded
    finally:
        teacher.max_seq_length = previous
    if cache_file is not None:
        from langmix.outputs import atomic_path

        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache_file) as tmp:
            np.save(tmp, targets)
    return targets


def _teacher_identity(name: str) -> str:
    """The teacher's name, with the SHA-256 of its weights' source for the offline model."""
    from langmix.models.offline import OFFLINE_PREFIX, SOURCE_RECORD, offline_model_path

    if not name.startswith(OFFLINE_PREFIX):
        return name
    record = json.loads((offline_model_path() / SOURCE_RECORD).read_text(encoding="utf-8"))
    return f"{name}@{record['source_sha256']}"


def _save_checkpoint(out: Path, student: Any, optimizer: Any, scheduler: Any, step: int) -> None:
    root = out / CHECKPOINTS
    staging = root / f".step-{step}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_trainable(student, staging / "trainable.safetensors")
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
        staging / OPTIMIZER_FILE,
    )
    os.replace(staging, root / f"step-{step}")
    for old in root.glob("step-*"):
        if old.name != f"step-{step}":
            shutil.rmtree(old, ignore_errors=True)


def distill(args: DistillArguments, *, show_progress: bool = True) -> dict[str, Any]:
    """Distil (or resume distilling) a student into ``args.output_dir``.

    Writes ``langmix-run.json`` (the recipe), ``train_log.jsonl`` (the mean loss every
    ``logging_steps``), ``checkpoints/`` (the latest only), and at the end ``model/`` (a
    sentence-transformers directory with the teacher's prompts and ``langmix_distill.json``)
    and ``summary.json``. A finished run is returned as is.

    Raises:
        ValueError: Bad settings, evaluation data as text, or a teacher that is not deeper
            than the student.
        OutputDirError: ``output_dir`` holds a run of another recipe and not ``overwrite``.
    """
    from langmix.models import load_model

    args.validate()
    out = Path(args.output_dir)
    recipe = args.recipe()
    # Checkpoints and the model are only ever resumed under the recipe that made them.
    claim_output_dir(
        out,
        "distill",
        recipe,
        overwrite=args.overwrite,
        outputs=(CHECKPOINTS, LOG_FILE, MODEL_DIR, SUMMARY_FILE),
    )
    summary_path = out / SUMMARY_FILE
    if summary_path.is_file() and (out / MODEL_DIR / STUDENT_RECORD).is_file():
        return json.loads(summary_path.read_text(encoding="utf-8"))

    started = time.perf_counter()
    texts = distillation_texts(args)
    kinds, flat, stream = _flatten(texts, args.seed)
    teacher = load_model(args.teacher, device="cpu")
    teacher.eval()
    args.validate(teacher_layers=len(encoder_layers(teacher)))
    key = f"{_teacher_identity(args.teacher)}|{texts.digest()}|{args.max_length}"
    cache_file = (
        default_cache_dir()
        / "distill"
        / ("teacher-" + hashlib.sha256(key.encode()).hexdigest()[:16] + ".npy")
    )
    targets = torch.from_numpy(
        teacher_targets(
            teacher,
            kinds,
            flat,
            max_length=args.max_length,
            cache_file=cache_file,
            show_progress=show_progress,
        )
    )
    teacher_seconds = time.perf_counter() - started

    student = make_student(teacher, args.layers)
    del teacher
    # Word embeddings are ~96M of the parameters and the teacher's vocabulary.
    freeze_poolers(student)
    freeze_word_embeddings(student)
    student.train()
    optimizer, scheduler = adamw_with_warmup(
        student,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        warmup_steps=round(args.warmup_ratio * args.steps),
        total_steps=args.steps,
    )
    start = 0
    # A checkpoint folder appears whole (renamed from its staging folder), optimizer.pt last.
    checkpoint = next(reversed(list_checkpoints(out, marker=OPTIMIZER_FILE)), None)
    if checkpoint is not None:
        load_trainable(student, checkpoint / "trainable.safetensors")
        states = torch.load(checkpoint / OPTIMIZER_FILE, weights_only=False)
        optimizer.load_state_dict(states["optimizer"])
        scheduler.load_state_dict(states["scheduler"])
        start = int(checkpoint.name[5:])
        truncate_jsonl(out / LOG_FILE, start)
    elif (out / LOG_FILE).exists():
        (out / LOG_FILE).unlink()

    prompts = student.prompts or {}
    mse = None
    if args.loss == "mse":
        from sentence_transformers.losses import MSELoss

        mse = MSELoss(student)
    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=args.steps, initial=start, desc=f"distil L{args.layers}", unit="step")
    loop_started = time.perf_counter()
    window: list[float] = []
    for step in range(start, args.steps):
        # Dropout drawn from the step alone: a resumed run repeats an uninterrupted one.
        torch.manual_seed(args.seed * 1_000_003 + step)
        rows = stream.batch(step, args.batch_size)
        inputs = [prompts.get(kinds[i], "") + flat[i] for i in rows]
        features = student.tokenizer(
            inputs, padding=True, truncation=True, max_length=args.max_length, return_tensors="pt"
        )
        target = targets[torch.from_numpy(rows)]
        if mse is not None:
            loss = mse([dict(features)], target)
        else:
            embedding = student(dict(features))["sentence_embedding"]
            loss = (1.0 - (embedding * target).sum(dim=1)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in student.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        scheduler.step()
        window.append(float(loss.detach()))
        done = step + 1
        if done % args.logging_steps == 0 or done == args.steps:
            append_jsonl(
                out / LOG_FILE,
                {
                    "step": done,
                    "loss": round(float(np.mean(window)), 6),
                    "learning_rate": scheduler.get_last_lr()[0],
                },
            )
            if bar is not None:
                bar.set_postfix(loss=f"{np.mean(window):.4f}")
            window = []
        if bar is not None:
            bar.update(1)
        if done % args.save_steps == 0 and done < args.steps:
            _save_checkpoint(out, student, optimizer, scheduler, done)
    if bar is not None:
        bar.close()
    loop_seconds = time.perf_counter() - loop_started

    student.eval()
    record = {
        "recipe": recipe,
        "recipe_hash": args.recipe_hash(),
        "teacher": args.teacher,
        "texts": texts.counts(),
        "texts_dropped_as_evaluation_text": texts.dropped,
        # A study leaves these articles out of its zero-shot sets (langmix.data.overlap).
        "evaluation_titles_shared": texts.shared_titles,
        "text_digest": texts.digest(),
    }
    target_dir = out / MODEL_DIR
    staging = out / f".{MODEL_DIR}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    fill_model_card(student, _card(args, recipe, texts))
    student.save(str(staging))
    write_json_atomic(staging / STUDENT_RECORD, record)
    if target_dir.exists():
        shutil.rmtree(target_dir)
    os.replace(staging, target_dir)
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    last_loss = _last_loss(out / LOG_FILE)
    summary = {
        "finished": True,
        **record,
        "steps": args.steps,
        "resumed_from": start or None,
        "final_loss": last_loss,
        "teacher_seconds": round(teacher_seconds, 1),
        "loop_seconds": round(loop_seconds, 1),
        "seconds_per_step": round(loop_seconds / max(1, args.steps - start), 3),
        "model": str(target_dir),
    }
    write_json_atomic(summary_path, summary)
    return summary


def _card(args: DistillArguments, recipe: dict[str, Any], texts: DistillationTexts) -> CardFacts:
    """The student's model card: its teacher, cut, distillation texts and recipe."""
    loss = (
        "sentence_transformers.sentence_transformer.losses.MSELoss"
        if args.loss == "mse"
        else "langmix.distillation.distill (1 - cosine to the teacher's embedding)"
    )
    counts = texts.counts()
    return CardFacts(
        title=f"{args.teacher} distilled to {args.layers} layers by langmix",
        base_model=args.teacher,
        languages=sorted(counts),
        training_data=[
            TrainingData(
                name=f"{args.dataset} texts, training part (no evaluation text)",
                size=sum(counts.values()),
                columns=("text", "teacher embedding"),
                loss=loss,
            )
        ],
        hyperparameters={**recipe, "recipe_hash": args.recipe_hash()},
    )


def _last_loss(path: Path) -> float | None:
    if not path.is_file():
        return None
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return lines[-1]["loss"] if lines else None


def distilled_model_dir(
    layers: int,
    *,
    cache_dir: str | Path | None = None,
    data_dir: str | None = None,
    build: bool = True,
) -> Path:
    """The default recipe's student of ``layers`` layers: ``<cache>/models/...-L{k}-{hash}/model``.

    Distilled on first use (minutes on 2 cores; the bar shows the time left).

    Raises:
        FileNotFoundError: With ``build=False`` and no finished student.
    """
    args = DistillArguments(layers=layers, output_dir="-", data_dir=data_dir)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    out = root / "models" / f"multilingual-e5-small-distilled-L{layers}-{args.recipe_hash()}"
    model = out / MODEL_DIR
    if (model / STUDENT_RECORD).is_file():
        return model
    if not build:
        raise FileNotFoundError(f"no distilled student at {model}")
    args.output_dir = str(out)
    distill(args)
    return model


__all__ = ["Stream", "distill", "distilled_model_dir", "teacher_targets"]
