"""Contrastive fine-tuning of a sentence-transformers model with language-aware batches.

Why a loop on accelerate rather than ``SentenceTransformerTrainer``: the HF trainer hands
each DDP rank *different* whole batches from the batch sampler, so ranks would train on
different batch types in the same step, and it sees rows, not the batch type and language
pairs this method is about. Here every rank builds the same global batch from the seed and
trains on its slice (:meth:`Batch.shard`), the loss gathers the global batch, and the batch
record (``batches.jsonl``) is the sampler's own. accelerate still does what it is good at:
device placement, DDP under ``torchrun``/``accelerate launch``, mixed precision and saving
and restoring optimizer, scheduler and RNG state. The model stays a ``SentenceTransformer``
and is saved in its format, so ``SentenceTransformer(OUTPUT/model)`` loads it.

Output directory::

    config.json          everything that shaped the run (arguments, data sizes, versions)
    train_log.jsonl      {"step", "loss", "learning_rate", "examples_per_s", ...} per log
                         step, and {"step", "validation_loss"} per evaluation
    batches.jsonl        with --log-batches: one line per step (type, language pairs, ids)
    checkpoints/step-N/  trainable tensors, optimizer, scheduler and RNG state, for --resume
    checkpoints/best.safetensors   trainable tensors with the lowest validation loss
    model/               the final model, a complete sentence-transformers directory: the
                         validation-best one when the run validates (--eval-steps, or early
                         stopping), else the last step's; its README.md card says what made
                         it (langmix.training.model_card)
    tensorboard/         with --report-to tensorboard: loss, learning rate, validation loss
    summary.json         steps, best step, losses, throughput, wall time

Checkpoints hold only what training changes (:mod:`langmix.training.checkpoints`); the frozen
weights come from the base model again on resume.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from langmix.models.model_card import fill_model_card
from langmix.outputs import OutputDirError, append_jsonl, ensure_writable, write_json_atomic
from langmix.sampling.examples import ExampleTable, TrainingSet
from langmix.sampling.sampler import Batch, LanguageBatchSampler
from langmix.training import checkpoints
from langmix.training.arguments import TrainArguments
from langmix.training.checkpoints import MODEL_DIR, TrainerState
from langmix.training.data import (
    describe_sets,
    load_training_sets,
    split_digests,
    split_training_sets,
)
from langmix.training.loss import InfoNCELoss, text_key
from langmix.training.model_card import training_facts
from langmix.training.optimization import (
    adamw_with_warmup,
    freeze_poolers,
    freeze_word_embeddings,
)
from langmix.training.reporting import ProgressCallback, Reporter, TrainEvent


def _tokenize(model: Any, texts: Sequence[str], prompt: str, max_length: int, device: Any):
    features = model.tokenizer(
        [prompt + text for text in texts],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return {key: value.to(device) for key, value in features.items()}


def check_mixed_precision(mode: str) -> None:
    """Refuse fp16/bf16 autocast on a machine without a GPU before anything is loaded.

    Raises:
        ValueError: ``mode`` is not ``"no"`` and CUDA is unavailable.
    """
    if mode != "no" and not torch.cuda.is_available():
        raise ValueError(
            f"mixed precision {mode!r} needs a GPU and none is available; use "
            '--mixed-precision no (mixed_precision = "no" in a study file)'
        )


#: The batch kinds validation is scored on, in equal shares.
VALIDATION_STRATEGIES = ("mono", "cross", "random")


class Trainer:
    """Fine-tunes a dual encoder with InfoNCE over language-aware batches.

    Args:
        args: The run's settings.
        show_progress: Show a progress bar (main process only) when no ``progress`` is given.
        progress: Called with every :class:`TrainEvent` instead of drawing a bar and printing
            messages: how a study shows one display for all its cells.
        base_model: The untrained model ``args.model`` names, already loaded (a study loads
            each base model once and passes a copy per cell). The trainer trains it in place;
            without it the model is loaded from ``args.model``.

    After :meth:`train`, ``trainer.model`` is the final model in memory (in eval mode): the
    one saved to ``OUTPUT/model``.

    Example:
        >>> args = TrainArguments(model="offline:multilingual-e5-small@L2", train=["mlqa-r"],
        ...                       output_dir="runs/h", sampling="hybrid", max_steps=200)  # doctest: +SKIP
        >>> summary = Trainer(args).train()  # doctest: +SKIP
    """

    def __init__(
        self,
        args: TrainArguments,
        *,
        show_progress: bool = True,
        progress: ProgressCallback | None = None,
        base_model: Any | None = None,
    ) -> None:
        from accelerate import Accelerator

        self.args = args
        self.out = Path(args.output_dir)
        self.base_model = base_model
        self.model: Any | None = None
        check_mixed_precision(args.mixed_precision)
        if args.full_determinism:
            from transformers import enable_full_determinism

            # Before any CUDA work: cuBLAS reads its workspace setting at first use.
            enable_full_determinism(args.seed)
        self.reporter = Reporter(args, progress=progress, show_progress=show_progress)
        # accelerate treats a torchrun launch as multi-process only on GPUs unless told that
        # this is a CPU job; without cpu=True every CPU rank would think it trains alone.
        # step_scheduler_with_optimizer=False: accelerate would otherwise step the learning
        # rate schedule once per process per step, since it assumes each rank consumes its own
        # batches; here all ranks share one global batch per step.
        self.accelerator = Accelerator(
            mixed_precision=args.mixed_precision,
            cpu=not torch.cuda.is_available(),
            step_scheduler_with_optimizer=False,
            log_with=[self.reporter.tracker] if self.reporter.tracker is not None else None,
        )
        self.rank = self.accelerator.process_index
        self.world_size = self.accelerator.num_processes
        self.reporter.is_main = self.accelerator.is_main_process
        # Data first: a bad file should fail in a second, not after the model is loaded.
        sets = load_training_sets(args)
        self.train_sets, self.validation_sets = split_training_sets(
            sets, args.validation_fraction, args.split_seed, args.test_fraction, args.split_version
        )
        # Which groups each part held, by hash: a study's test rows carry the same hashes,
        # so anyone can check that no test group was trained on or validated on.
        self.split = split_digests(
            sets, args.validation_fraction, args.split_seed, args.test_fraction, args.split_version
        )
        self.sampler = LanguageBatchSampler(
            self.train_sets,
            args.batch_size,
            args.sampling,  # type: ignore[arg-type]
            alpha=args.alpha,
            seed=args.seed,
            language_weighting=args.language_weighting,  # type: ignore[arg-type]
            set_temperature=args.set_temperature,
            rank=self.rank,
            world_size=self.world_size,
        )
        # Recorded in the config and the summary, so a report can say which strategies trained
        # on fewer languages.
        self.mono_languages_dropped = self.sampler.dropped_languages()
        self._check_hard_negatives()
        steps_per_epoch = self.sampler.steps_per_epoch
        if args.max_steps is not None:
            self.total_steps = args.max_steps
        else:
            self.total_steps = max(1, math.ceil(args.epochs * steps_per_epoch))
        self.reporter.total_steps = self.total_steps
        self.eval_steps = args.validation_interval(self.total_steps)
        self.validation_batches: list[Batch] = []
        self.validation_table: ExampleTable | None = None
        if self.eval_steps is not None:
            self.validation_batches, self.validation_table = self._validation_batches()
        if not self.validation_batches:
            self.eval_steps = None  # no validation split (--validation-fraction 0)
        self.save_steps = args.save_steps or self.eval_steps or max(1, self.total_steps // 10)
        self.loss_fn = InfoNCELoss(args.temperature, symmetric=args.symmetric)

    # -- setup ----------------------------------------------------------------------------
    def _validation_batches(self) -> tuple[list[Batch], ExampleTable | None]:
        """Fixed validation batches, the same for every strategy and seed of a study.

        Equal shares of mono, cross and pooled (random) batches, so that checkpoint
        selection rewards no strategy's own batch type (hybrid batches would be hybrid
        α = 0.5's own distribution).
        """
        if not self.validation_sets:
            return [], None

        limits = []
        for pairs in self.validation_sets:
            tset = TrainingSet(pairs)
            per_language = (tset.pair_index >= 0).sum(axis=0).max()
            limits.append(min(int(per_language), len(tset.multilingual_items())))
        size = min(self.args.batch_size, *limits)
        size -= size % self.world_size
        if size < 2:
            raise ValueError(
                "the validation split is too small for one batch; raise --validation-fraction "
                "or set it to 0"
            )
        samplers = [
            LanguageBatchSampler(
                self.validation_sets, size, kind, seed=self.args.split_seed, rank=self.rank,
                world_size=self.world_size,
            )
            for kind in VALIDATION_STRATEGIES
        ]  # fmt: skip
        count = max(1, min(samplers[0].steps_per_epoch, 50) // len(samplers))
        # Interleaved kinds; one table serves all, as every sampler indexes the same pairs.
        per_kind = [list(sampler.batches(0, count)) for sampler in samplers]
        return [b for group in zip(*per_kind, strict=True) for b in group], samplers[0].table

    def _check_hard_negatives(self) -> None:
        k = self.args.hard_negatives
        if k == 0:
            return
        for tset in self.sampler.table.sets:
            for pair in tset.pairs.pairs:
                if len(pair.negatives) < k:
                    raise ValueError(
                        f"--hard-negatives {k}: item {pair.parallel_id!r} ({pair.language}) of "
                        f"{tset.pairs.name!r} has only {len(pair.negatives)} negative(s)"
                    )

    def config_document(self, parameters: dict[str, int] | None = None) -> dict[str, Any]:
        import sentence_transformers
        import transformers

        import langmix

        return {
            "arguments": self.args.to_dict(),
            "world_size": self.world_size,
            "steps_per_epoch": self.sampler.steps_per_epoch,
            "total_steps": self.total_steps,
            "eval_steps": self.eval_steps,
            "save_steps": self.save_steps,
            "validation_batches": len(self.validation_batches),
            "split": self.split,
            "mono_languages_dropped": self.mono_languages_dropped,
            "training_sets": describe_sets(self.train_sets),
            "validation_sets": describe_sets(self.validation_sets),
            "model_parameters": parameters,
            "versions": {
                "langmix": langmix.__version__,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "sentence_transformers": sentence_transformers.__version__,
            },
        }

    def _load_model(self):
        from langmix.models import load_model
        from langmix.models.loading import count_parameters

        device = self.accelerator.device
        if self.base_model is not None:
            model, self.base_model = self.base_model.to(device), None  # trained in place
        else:
            model = load_model(self.args.model, device=str(device))
        # Seeded with the model in hand: loading draws no random numbers and neither does a
        # copy, so dropout starts from the same state for a loaded and a given base model.
        torch.manual_seed(self.args.seed)
        freeze_poolers(model)
        if self.args.freeze_embeddings and freeze_word_embeddings(model) == 0:
            raise ValueError(f"--freeze-embeddings: no word embeddings found in {self.args.model}")
        counts = count_parameters(model)
        return model, {
            "total": counts.total,
            "embedding": counts.embedding,
            "non_embedding": counts.non_embedding,
        }

    def _optimizer(self, model):
        # The fused kernel (CPU and CUDA) is what the HF trainer uses by default; the
        # per-parameter loop measured 4% slower and 12% more peak memory (bench/bench_train.py).
        return adamw_with_warmup(
            model,
            learning_rate=self.args.learning_rate,
            weight_decay=self.args.weight_decay,
            warmup_steps=round(self.args.warmup_ratio * self.total_steps),
            total_steps=self.total_steps,
            fused=True,
        )

    # -- the loop -------------------------------------------------------------------------
    def _embed(self, model, st_model, texts, kind: str, max_length: int):
        prompt = (getattr(st_model, "prompts", None) or {}).get(kind, "")
        features = _tokenize(st_model, texts, prompt, max_length, self.accelerator.device)
        return model(features)["sentence_embedding"]

    def _batch_inputs(self, batch: Batch, table: ExampleTable):
        """This rank's item ids and its text groups (queries, positives[, hard negatives]),
        each with the prompt kind and truncation it is embedded with."""
        examples = [table.example(int(c)) for c in batch.shard(self.rank, self.world_size)]
        device = self.accelerator.device
        items = torch.tensor([e.item for e in examples], device=device)
        groups = [[e.query for e in examples], [e.positive for e in examples]]
        kinds = [("query", self.args.query_max_length), ("passage", self.args.passage_max_length)]
        if self.args.hard_negatives:
            groups.append([n for e in examples for n in e.negatives[: self.args.hard_negatives]])
            kinds.append(("passage", self.args.passage_max_length))
        # Text keys let the loss mask identical passages that are not the same item.
        keys = [
            torch.tensor([text_key(t) for t in texts], dtype=torch.int64, device=device)
            for texts in groups[1:]
        ]
        return (items, *keys), groups, kinds

    def _group_loss(self, ids: tuple, q, p, negatives=None) -> torch.Tensor:
        items, positive_keys, *negative_keys = ids
        return self.loss_fn(
            q.float(),
            p.float(),
            items,
            None if negatives is None else negatives.float(),
            positive_keys=positive_keys,
            negative_keys=negative_keys[0] if negative_keys else None,
        )

    def _batch_loss(self, model, st_model, batch: Batch, table: ExampleTable) -> torch.Tensor:
        ids, groups, kinds = self._batch_inputs(batch, table)
        with self.accelerator.autocast():
            embedded = [
                self._embed(model, st_model, texts, kind, length)
                for texts, (kind, length) in zip(groups, kinds, strict=True)
            ]
        return self._group_loss(ids, *embedded)

    def _cached_batch_loss(
        self, model, st_model, batch: Batch, table: ExampleTable
    ) -> torch.Tensor:
        """The batch's loss with its gradients accumulated by GradCache (already backward)."""
        from langmix.training.gradcache import grad_cache_step

        ids, groups, kinds = self._batch_inputs(batch, table)

        def embed(group: int, texts) -> torch.Tensor:
            kind, length = kinds[group]
            with self.accelerator.autocast():
                return self._embed(model, st_model, list(texts), kind, length)

        return grad_cache_step(
            groups,
            embed,
            lambda *embedded: self._group_loss(ids, *embedded),
            self.args.gradient_cache_chunk,
            backward=self.accelerator.backward,
            no_sync=lambda: self.accelerator.no_sync(model),
            device=self.accelerator.device,
        )

    def train(self) -> dict[str, Any]:
        """Run (or resume) training; returns the summary also written to ``summary.json``."""
        accelerator = self.accelerator
        self.out.mkdir(parents=True, exist_ok=True)
        if accelerator.is_main_process:
            ensure_writable(self.out)
        resume_from = checkpoints.prepare_output_dir(self.out, self.args, accelerator)
        st_model, parameters = self._load_model()
        optimizer, scheduler = self._optimizer(st_model)
        model, optimizer, scheduler = accelerator.prepare(st_model, optimizer, scheduler)
        checkpoints.register_trainable_state(accelerator, st_model)
        state = TrainerState()
        logs = (self.out / "train_log.jsonl", self.out / "batches.jsonl")
        if resume_from is not None:
            state = checkpoints.load_checkpoint(accelerator, resume_from)
            if accelerator.is_main_process:
                for path in logs:
                    checkpoints.truncate_jsonl(path, state.step)
            self.reporter.say(
                f"Resuming from {resume_from} (step {state.step} of {self.total_steps})", state.step
            )
        elif self.args.resume and accelerator.is_main_process:
            # Killed before the first checkpoint: start over, dropping what lost steps logged
            # (the step-0 validation included: it runs again).
            for path in logs:
                checkpoints.truncate_jsonl(path, -1)
        if accelerator.is_main_process:
            write_json_atomic(self.out / "config.json", self.config_document(parameters))
        accelerator.wait_for_everyone()
        self.reporter.start(accelerator, state.step)
        try:
            self._loop(model, st_model, optimizer, scheduler, state)
            summary = self._finish(model, state, parameters)
        finally:
            self.reporter.finish()
        # The prepared model, optimizer and scheduler: only self.model lives on.
        accelerator.free_memory()
        return summary

    def _loop(self, model, st_model, optimizer, scheduler, state: TrainerState) -> None:
        accelerator = self.accelerator
        log_path = self.out / "train_log.jsonl"
        batches_path = self.out / "batches.jsonl"
        progress = self.reporter.bar(state.step)
        window_seconds, timed_steps = 0.0, 0  # this process's share of the window, for the rate
        window_masked: dict[str, int] = {}  # masked logit entries of this rank, per kind
        model.train()
        if self.eval_steps and state.step == 0 and not state.history:
            # The untrained model's validation loss, as the curve's reference point. It is not
            # a candidate for the best step: a trained arm is a trained model (a study checks
            # it against the untrained one separately), and early stopping counts only
            # trained steps, so a curve that first rises (random batches) is not cut at once.
            self.reporter.emit("validate", 0)
            self._evaluate(model, st_model, state, log_path, candidate=False)
        loop_started = time.perf_counter()
        for batch in self.sampler.batches(state.step, self.total_steps):
            started = time.perf_counter()
            if self.args.gradient_cache_chunk:
                loss = self._cached_batch_loss(model, st_model, batch, self.sampler.table)
            else:
                loss = self._batch_loss(model, st_model, batch, self.sampler.table)
                accelerator.backward(loss)
            if self.args.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.examples_seen += self.args.batch_size
            step_seconds = time.perf_counter() - started
            state.train_seconds += step_seconds
            window_seconds += step_seconds
            timed_steps += 1
            loss_value = float(accelerator.reduce(loss.detach(), reduction="mean"))
            state.window_loss += loss_value
            state.window_steps += 1
            for kind, count in self.loss_fn.last_masked.items():
                window_masked[kind] = window_masked.get(kind, 0) + count
            learning_rate = scheduler.get_last_lr()[0]
            self.reporter.track(
                {"train/loss": loss_value, "train/learning_rate": learning_rate}, state.step
            )
            if accelerator.is_main_process and self.args.log_batches:
                self._log_batch(batches_path, batch, state.step)
            progress.update(1)
            self.reporter.emit("step", state.step)
            if state.step % self.args.logging_steps == 0 or state.step == self.total_steps:
                # Throughput of the training steps themselves (tokenization, forward,
                # backward, optimizer), not of validation or checkpoint writing.
                rate = timed_steps * self.args.batch_size / window_seconds
                record = {
                    "step": state.step,
                    "epoch": round(state.step / self.sampler.steps_per_epoch, 4),
                    "loss": round(state.window_loss / state.window_steps, 6),
                    "learning_rate": learning_rate,
                    "examples_per_s": round(rate, 3),
                    # Wall clock since this process entered the loop: everything included
                    # (batch sampling, validation, checkpoints), unlike examples_per_s.
                    "elapsed_s": round(time.perf_counter() - loop_started, 3),
                    # In-batch entries masked as relevant (not negatives), per batch on
                    # average over the window, on this rank.
                    "masked_per_batch": {
                        kind: round(count / state.window_steps, 3)
                        for kind, count in window_masked.items()
                    },
                }
                progress.set_postfix(loss=f"{record['loss']:.4f}", ex_s=f"{rate:.1f}")
                if accelerator.is_main_process:
                    append_jsonl(log_path, record)
                self.reporter.track({"train/examples_per_s": rate}, state.step)
                self.reporter.emit("log", state.step, record=record)
                state.window_loss, state.window_steps = 0.0, 0
                window_seconds, timed_steps = 0.0, 0
                window_masked = {}
            if self.eval_steps and (
                state.step % self.eval_steps == 0 or state.step == self.total_steps
            ):
                self.reporter.emit("validate", state.step)
                self._evaluate(model, st_model, state, log_path)
                if (
                    self.args.early_stopping_patience
                    and state.evaluations_without_improvement >= self.args.early_stopping_patience
                ):
                    state.stopped_early = True
            if (
                state.step % self.save_steps == 0
                or state.step == self.total_steps
                or state.stopped_early
            ):
                self.reporter.emit("save", state.step)
                checkpoints.save_checkpoint(
                    accelerator, self.out, state, self.args.save_total_limit
                )
            if state.stopped_early:
                break
        progress.close()

    def _validation_loss(self, model, st_model) -> float:
        model.eval()
        total = 0.0
        with torch.no_grad():
            for batch in self.validation_batches:
                loss = self._batch_loss(model, st_model, batch, self.validation_table)
                total += float(self.accelerator.reduce(loss, reduction="mean"))
        model.train()
        return total / len(self.validation_batches)

    def _evaluate(
        self, model, st_model, state: TrainerState, log_path: Path, *, candidate: bool = True
    ) -> None:
        value = self._validation_loss(model, st_model)
        improved = state.best_validation_loss is None or value < state.best_validation_loss
        if candidate and improved:
            state.best_validation_loss = value
            state.best_step = state.step
            state.evaluations_without_improvement = 0
            checkpoints.save_best(self.accelerator, st_model, self.out, state.step)
        elif candidate:
            state.evaluations_without_improvement += 1
        state.history.append({"step": state.step, "validation_loss": round(value, 6)})
        if self.accelerator.is_main_process:
            append_jsonl(log_path, {"step": state.step, "validation_loss": round(value, 6)})
        self.reporter.track({"validation/loss": value}, state.step)

    def _finish(self, model, state: TrainerState, parameters: dict[str, int]) -> dict[str, Any]:
        # Without accelerate's mixed-precision forward wrapper: the model as loaded, for use
        # (and saving) outside the training loop.
        final = self.accelerator.unwrap_model(model, keep_fp32_wrapper=False)
        validated = self.eval_steps is not None
        if validated and state.best_step is not None:
            checkpoints.load_best(final, self.out, state.best_step)
        final.eval()
        target = self.out / MODEL_DIR
        if self.args.save_model:
            self.reporter.emit("save", state.step)
            kept = state.best_step if validated else None
            facts = training_facts(self.args, self.train_sets, self.split, state.history, kept)
            fill_model_card(final, facts)
            checkpoints.save_model(self.accelerator, final, target)
        self.model = final
        summary = {
            "finished": True,
            "steps": state.step,
            "total_steps": self.total_steps,
            "stopped_early": state.stopped_early,
            "best_step": state.best_step,
            "best_validation_loss": state.best_validation_loss,
            "validation_history": state.history,
            "split": self.split,
            "mono_languages_dropped": self.mono_languages_dropped,
            "temperature": self.args.temperature,
            "learning_rate": self.args.learning_rate,
            "model": str(target) if self.args.save_model else None,
            "model_is": "best" if validated else "final",
            "examples_seen": state.examples_seen,
            "train_seconds": round(state.train_seconds, 3),
            "examples_per_s": round(state.examples_seen / state.train_seconds, 3)
            if state.train_seconds
            else None,
            "parameters": parameters,
        }
        if self.accelerator.is_main_process:
            write_json_atomic(self.out / "summary.json", summary)
        self.accelerator.wait_for_everyone()
        return summary

    def _log_batch(self, path: Path, batch: Batch, step: int) -> None:
        tset = self.sampler.table.sets[batch.set_index]
        languages = tset.languages
        record = {
            "step": step,
            "type": batch.batch_type,
            "set": tset.pairs.name,
            "pairs": [
                [languages[q], languages[p]]
                for q, p in zip(batch.query_languages, batch.passage_languages, strict=True)
            ],
            "ids": [tset.item_ids[i] for i in batch.items],
        }
        append_jsonl(path, record)


def train(args: TrainArguments, *, show_progress: bool = True) -> dict[str, Any]:
    """Train as ``langmix train`` does; returns the run summary.

    Example:
        >>> summary = train(TrainArguments(model="offline:multilingual-e5-small@L2",
        ...     train=["mlqa-r"], output_dir="runs/x", max_steps=10))  # doctest: +SKIP
    """
    return Trainer(args, show_progress=show_progress).train()


__all__ = ["OutputDirError", "ProgressCallback", "TrainEvent", "Trainer", "TrainerState", "train"]
