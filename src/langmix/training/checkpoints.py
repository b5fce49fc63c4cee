"""A training run's directory: refusing to mix runs, checkpoints to resume from, the best and
the final model.

What a checkpoint holds is what training changes and nothing else: the *trainable* tensors
(parameters with ``requires_grad`` and the modules' persistent buffers), the optimizer and
learning-rate schedule state, the RNG state of every process and the :class:`TrainerState`.
The frozen parameters are the base model's and are read from it again on resume. With frozen
word embeddings (``--freeze-embeddings``; off by default, on in the shipped studies) they are
~80 % of a multilingual model's weights: ~96M of the 98M parameters of the 1-layer cut of
multilingual-e5-small, which made every full checkpoint ~390 MB where the trainable part is ~8 MB.

accelerate saves and restores the optimizer, scheduler and RNG state (``save_state`` /
``load_state``); its model file is replaced by ``trainable.safetensors`` through its state hooks
(:func:`register_trainable_state`), so a resumed run is bit-identical to an uninterrupted one.

Layout under the run directory::

    checkpoints/step-N/trainable.safetensors   trainable tensors at step N
    checkpoints/step-N/optimizer.bin, scheduler.bin, random_states_R.pkl   (accelerate)
    checkpoints/step-N/trainer_state.json      step, best validation loss, log window
    checkpoints/best.safetensors               trainable tensors with the lowest validation
                                               loss (metadata: its step)
    model/                                     the final model: a complete sentence-transformers
                                               directory, base weights plus trained tensors
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from langmix.outputs import OutputDirError, atomic_path, remove_outputs, write_text_atomic
from langmix.training.arguments import NON_SHAPING, TrainArguments

if TYPE_CHECKING:
    from accelerate import Accelerator

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
TRAINABLE_FILE = "trainable.safetensors"
BEST_FILE = "best.safetensors"
MODEL_DIR = "model"
#: Everything a training run writes besides ``config.json`` (which a new run replaces): what
#: ``--overwrite-output-dir`` deletes, and nothing else.
RUN_OUTPUTS = (
    CHECKPOINTS,
    MODEL_DIR,
    "train_log.jsonl",
    "batches.jsonl",
    "summary.json",
    "tensorboard",
)


@dataclass
class TrainerState:
    """What a checkpoint needs besides the tensors: where the run is and how it is going."""

    step: int = 0
    best_validation_loss: float | None = None
    best_step: int | None = None
    evaluations_without_improvement: int = 0
    train_seconds: float = 0.0
    examples_seen: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    # The logging window in progress, so a resumed run logs the same averaged losses.
    window_loss: float = 0.0
    window_steps: int = 0


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Drop lines logged after ``last_step`` (work lost with an interrupted run), atomically."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            break  # a line cut by the interruption ends the valid part
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def list_checkpoints(out: Path, marker: str = STATE_FILE) -> list[Path]:
    """The complete checkpoints of a run directory (those holding ``marker``), oldest first."""
    root = out / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.glob("step-*") if (p / marker).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-", 1)[1]))


def prepare_output_dir(out: Path, args: TrainArguments, accelerator: Accelerator) -> Path | None:
    """Refuse to mix runs in ``out``; return the checkpoint to resume from, if any.

    A directory holding a run may be resumed (``args.resume``) only with the same settings
    (those in :data:`~langmix.training.arguments.NON_SHAPING` may differ), or replaced with
    ``args.overwrite_output_dir``, which deletes only what a run writes (:data:`RUN_OUTPUTS`).

    Raises:
        OutputDirError: ``out`` holds another run and neither flag allows using it.
    """
    config_path = out / "config.json"
    if config_path.exists():
        previous = json.loads(config_path.read_text(encoding="utf-8"))["arguments"]
        current = args.to_dict()
        if args.resume:
            differing = sorted(
                key
                for key in set(previous) | set(current)
                if key not in NON_SHAPING and previous.get(key) != current.get(key)
            )
            if differing:
                raise OutputDirError(
                    f"{out} holds a run with different settings ({', '.join(differing)}); "
                    f"it cannot be resumed with these. Use another --output-dir."
                )
        elif not args.overwrite_output_dir:
            raise OutputDirError(
                f"{out} already holds a training run; pass --resume to continue it or "
                f"--overwrite-output-dir to replace it"
            )
        elif accelerator.is_main_process:
            remove_outputs(out, RUN_OUTPUTS)
    accelerator.wait_for_everyone()
    if args.resume:
        checkpoints = list_checkpoints(out)
        return checkpoints[-1] if checkpoints else None
    return None


# -- trainable tensors --------------------------------------------------------------------
def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The tensors training can change: parameters with ``requires_grad`` and persistent buffers.

    Buffers are included: an encoder's are constant, but a module with running statistics
    changes them in training, and they are small.

    Example:
        >>> layer = torch.nn.Linear(2, 2)
        >>> _ = layer.bias.requires_grad_(False)
        >>> sorted(trainable_state(layer))
        ['weight']
    """
    # Every name of every parameter: a tied parameter appears under each of its names in the
    # state dict and must be judged by its flag there too, not mistaken for a buffer.
    parameters = dict(model.named_parameters(remove_duplicate=False))
    return {
        name: tensor.detach()
        for name, tensor in model.state_dict().items()
        if name not in parameters or parameters[name].requires_grad
    }


def save_trainable(
    model: torch.nn.Module, path: Path, metadata: dict[str, str] | None = None
) -> None:
    """Write :func:`trainable_state` of ``model`` to ``path`` (safetensors), atomically."""
    from safetensors.torch import save_file

    # Copies: safetensors refuses tensors that share memory (tied or viewed parameters).
    tensors = {k: v.cpu().clone() for k, v in trainable_state(model).items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_trainable(model: torch.nn.Module, path: Path) -> dict[str, str]:
    """Load a :func:`save_trainable` file into ``model``; returns the file's metadata.

    Raises:
        ValueError: The file's tensors are not exactly ``model``'s trainable ones (a file of
            another model or of other frozen settings).
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    tensors = load_file(str(path), device="cpu")
    expected = set(trainable_state(model))
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise ValueError(
            f"{path} does not fit this model (missing {missing[:3]}, unexpected {extra[:3]}); "
            "was it written with other --freeze-embeddings or model settings?"
        )
    model.load_state_dict(tensors, strict=False)
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def register_trainable_state(accelerator: Accelerator, model: torch.nn.Module) -> None:
    """Make ``accelerator.save_state``/``load_state`` handle only ``model``'s trainable tensors.

    accelerate would write (and read back) the whole model; the hooks take the model out of its
    lists and write/read :data:`TRAINABLE_FILE` instead, on the main process only for writing.
    ``model`` is the unwrapped module (the state of a DDP wrapper's module is the same).
    """

    def save_hook(models: list[Any], weights: list[Any], output_dir: str) -> None:
        weights.clear()
        if accelerator.is_main_process:
            save_trainable(model, Path(output_dir) / TRAINABLE_FILE)

    def load_hook(models: list[Any], input_dir: str) -> None:
        models.clear()
        load_trainable(model, Path(input_dir) / TRAINABLE_FILE)

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def save_checkpoint(accelerator: Accelerator, out: Path, state: TrainerState, keep: int) -> Path:
    """Write ``checkpoints/step-N`` (staged, then renamed) and drop all but the last ``keep``."""
    root = out / CHECKPOINTS
    target = root / f"step-{state.step}"
    staging = root / f".step-{state.step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    if accelerator.is_main_process:
        write_text_atomic(staging / STATE_FILE, json.dumps(state.__dict__, indent=2) + "\n")
        shutil.rmtree(target, ignore_errors=True)  # a rerun of a step an earlier run reached
        os.replace(staging, target)
        for old in list_checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return target


def load_checkpoint(accelerator: Accelerator, checkpoint: Path) -> TrainerState:
    """Restore a :func:`save_checkpoint` directory into the prepared objects; its state."""
    accelerator.load_state(str(checkpoint))
    return TrainerState(**json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8")))


def save_best(accelerator: Accelerator, model: torch.nn.Module, out: Path, step: int) -> None:
    """Record ``model``'s trainable tensors as the best so far (at ``step``)."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (out / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        save_trainable(model, out / CHECKPOINTS / BEST_FILE, {"step": str(step)})
    accelerator.wait_for_everyone()


def load_best(model: torch.nn.Module, out: Path, step: int) -> None:
    """Put the best tensors (recorded at ``step``) back into ``model``.

    Raises:
        ValueError: The recorded best is of another step (the run directory was tampered with).
    """
    path = out / CHECKPOINTS / BEST_FILE
    metadata = load_trainable(model, path)
    if metadata.get("step") != str(step):
        raise ValueError(f"{path} holds step {metadata.get('step')}, expected step {step}")


def save_model(accelerator: Accelerator, model: Any, target: Path) -> None:
    """Write ``model`` (a ``SentenceTransformer``) as a complete directory at ``target``.

    Staged beside the target and renamed, so ``target`` is never half written.
    """
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        model.save(str(staging))
        old = target.with_name(target.name + ".old")
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


__all__ = [
    "BEST_FILE",
    "CHECKPOINTS",
    "RUN_OUTPUTS",
    "STATE_FILE",
    "TRAINABLE_FILE",
    "TrainerState",
    "list_checkpoints",
    "load_best",
    "load_checkpoint",
    "load_trainable",
    "prepare_output_dir",
    "register_trainable_state",
    "save_best",
    "save_checkpoint",
    "save_model",
    "trainable_state",
    "truncate_jsonl",
]
