"""The trainer end to end on a 1-layer cut of the real offline model and real MLQA-R pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from langmix.cli import main
from langmix.training import OutputDirError, TrainArguments, Trainer, train

MODEL = "offline:multilingual-e5-small@L1"


def _args(out: Path, data_dir: Path, **overrides) -> TrainArguments:
    settings = {
        "model": MODEL,
        "train": ["mlqa-r"],
        "output_dir": str(out),
        "data_dir": str(data_dir),
        "languages": ["en,de", "es"],
        "sampling": "cross",
        "batch_size": 8,
        "max_steps": 4,
        "seed": 1,
        "query_max_length": 16,
        "passage_max_length": 32,
        "freeze_embeddings": True,
        "eval_steps": 2,
        "logging_steps": 1,
        "log_batches": True,
        "learning_rate": 1e-4,
    }
    settings.update(overrides)
    return TrainArguments(**settings)


def _hf_name(key: str) -> str:
    """A sentence-transformers state-dict key ("0.model.encoder...") as saved by transformers."""
    return key.split(".", 2)[2]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_train_writes_a_loadable_model_and_the_batch_record(tmp_path, data_dir, offline_cache):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "run"
    summary = train(_args(out, data_dir), show_progress=False)
    assert summary["steps"] == 4 and summary["examples_seen"] == 32
    assert summary["examples_per_s"] > 0
    for name in ("config.json", "train_log.jsonl", "batches.jsonl", "summary.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["arguments"]["sampling"] == "cross"
    assert config["training_sets"][0]["languages"] == ["de", "en", "es"]
    assert config["model_parameters"]["non_embedding"] < config["model_parameters"]["total"]

    batches = _lines(out / "batches.jsonl")
    assert [b["step"] for b in batches] == [1, 2, 3, 4]
    for b in batches:
        assert b["type"] == "cross"
        assert len(b["pairs"]) == len(b["ids"]) == 8
        assert all(q != p and {q, p} <= {"en", "de", "es"} for q, p in b["pairs"])
        assert len(set(b["ids"])) == 8

    log = _lines(out / "train_log.jsonl")
    validations = [r for r in log if "validation_loss" in r]
    assert [r["step"] for r in validations] == [0, 2, 4]  # the untrained model first
    # Wall-clock progress grows step by step and covers more than the steps alone.
    elapsed = [r["elapsed_s"] for r in log if "loss" in r]
    assert len(elapsed) == 4 and elapsed == sorted(elapsed) and elapsed[0] > 0
    assert elapsed[-1] >= summary["train_seconds"] - 1e-3
    assert all(r["loss"] > 0 for r in log if "loss" in r)

    model = SentenceTransformer(str(out / "model"))
    embeddings = model.encode(["query: Wer schrieb Faust?"], normalize_embeddings=True)
    assert embeddings.shape == (1, 384)
    # The saved model is the best checkpoint and differs from the untrained cut.
    from langmix.models import load_model

    untrained = load_model(MODEL)
    trained = load_model(str(out / "model"))
    assert not torch.equal(
        untrained[0].auto_model.encoder.layer[0].output.dense.weight,
        trained[0].auto_model.encoder.layer[0].output.dense.weight,
    )
    assert torch.equal(  # frozen embeddings stay as they were
        untrained[0].auto_model.embeddings.word_embeddings.weight,
        trained[0].auto_model.embeddings.word_embeddings.weight,
    )


class _Interrupt(Exception):
    pass


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(
    tmp_path, data_dir, offline_cache, monkeypatch
):
    settings = {"sampling": "hybrid", "max_steps": 6, "save_steps": 2, "eval_steps": 3}
    whole = tmp_path / "whole"
    train(_args(whole, data_dir, **settings), show_progress=False)

    broken = tmp_path / "broken"
    original = Trainer._batch_loss
    calls = {"n": 0}

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        n_val = len(self.validation_batches)
        # Validation at steps 0 and 3 (n_val calls each) and steps 1-4: dies during step 5,
        # after the step-4 checkpoint.
        if n_val and calls["n"] > 2 * n_val + 4:
            raise _Interrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_batch_loss", failing)
    with pytest.raises(_Interrupt):
        train(_args(broken, data_dir, **settings), show_progress=False)
    monkeypatch.setattr(Trainer, "_batch_loss", original)
    assert (broken / "checkpoints" / "step-4").is_dir()
    assert not (broken / "model").exists()

    summary = train(_args(broken, data_dir, resume=True, **settings), show_progress=False)
    assert summary["steps"] == 6
    a = load_file(whole / "model" / "model.safetensors")
    b = load_file(broken / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert _lines(whole / "batches.jsonl") == _lines(broken / "batches.jsonl")

    def losses(path):
        return [(r["step"], r.get("loss"), r.get("validation_loss")) for r in _lines(path)]

    assert losses(whole / "train_log.jsonl") == losses(broken / "train_log.jsonl")


def test_output_dir_of_another_run_is_refused(tmp_path, data_dir, offline_cache):
    out = tmp_path / "run"
    train(_args(out, data_dir, max_steps=2, validation_fraction=0.0), show_progress=False)
    with pytest.raises(OutputDirError, match="--resume"):
        Trainer(_args(out, data_dir, max_steps=2, validation_fraction=0.0)).train()
    with pytest.raises(OutputDirError, match="sampling"):
        Trainer(
            _args(out, data_dir, max_steps=2, validation_fraction=0.0, sampling="mono", resume=True)
        ).train()
    summary = train(
        _args(out, data_dir, max_steps=2, validation_fraction=0.0, overwrite_output_dir=True),
        show_progress=False,
    )
    assert summary["model_is"] == "final"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sampling", "bilingual"], "--sampling must be one of"),
        (["--alpha", "2"], "--alpha must be in"),
        (["--max-steps", "3", "--epochs", "1"], "exactly one of"),
        (["--mixed-precision", "fp16"], "needs a GPU"),
        (["--train", "nosuchset"], "unknown training set"),
        (["--languages", "en", "xx"], "xx"),
    ],
)
def test_cli_train_errors_are_one_line(tmp_path, data_dir, capsys, extra, message):
    argv = [
        "train", "--model", MODEL, "--train", "mlqa-r", "--data-dir", str(data_dir),
        "--output-dir", str(tmp_path / "o"),
    ]  # fmt: skip
    if "--max-steps" not in extra:
        argv += ["--max-steps", "2"]
    status = main(argv + extra)
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and "Traceback" not in err


def test_early_stopping_keeps_the_best_checkpoint(tmp_path, data_dir, offline_cache, monkeypatch):
    # Step 0 (the untrained model) scores best, but only trained steps are candidates.
    values = iter([0.5, 2.0, 1.5, 1.7, 1.6, 1.0])
    monkeypatch.setattr(Trainer, "_validation_loss", lambda self, model, st_model: next(values))
    out = tmp_path / "run"
    summary = train(
        _args(out, data_dir, max_steps=8, eval_steps=1, early_stopping_patience=2),
        show_progress=False,
    )
    # Step 2 is best; steps 3 and 4 do not improve; patience 2 stops the run after step 4.
    assert summary["stopped_early"] and summary["steps"] == 4
    assert summary["best_step"] == 2 and summary["best_validation_loss"] == 1.5
    assert summary["model_is"] == "best"
    best = load_file(out / "checkpoints" / "best.safetensors")
    final = load_file(out / "model" / "model.safetensors")
    assert best and all(torch.equal(v, final[_hf_name(k)]) for k, v in best.items())
    assert (out / "checkpoints" / "step-4").is_dir()  # the stop point is checkpointed too


def test_checkpoints_hold_only_what_training_changes(tmp_path, data_dir, offline_cache):
    """Frozen word embeddings stay out of checkpoints; the final model is complete."""
    from langmix.training.checkpoints import TRAINABLE_FILE

    out = tmp_path / "run"
    train(_args(out, data_dir, max_steps=2, eval_steps=2), show_progress=False)
    trainable = load_file(out / "checkpoints" / "step-2" / TRAINABLE_FILE)
    final = load_file(out / "model" / "model.safetensors")
    assert not any("word_embeddings" in key for key in trainable)
    assert any("word_embeddings" in key for key in final)
    for key, value in trainable.items():  # the final model is the trained tensors
        assert torch.equal(value, final[_hf_name(key)]), key
    assert not (out / "checkpoints" / "step-2" / "model.safetensors").exists()
    sizes = {
        name: sum(f.stat().st_size for f in (out / name).rglob("*") if f.is_file())
        for name in ("checkpoints", "model")
    }
    # Trainable tensors (twice: the step and the best) and AdamW's two moments of them.
    assert sizes["checkpoints"] < sizes["model"] / 5, sizes


def test_validation_only_when_something_uses_it(tmp_path, data_dir, offline_cache):
    plain = Trainer(_args(tmp_path / "a", data_dir, max_steps=40, eval_steps=None))
    assert plain.eval_steps is None and not plain.validation_batches
    assert plain.save_steps == 4  # checkpoints: 10 a run without validation
    patient = Trainer(
        _args(tmp_path / "b", data_dir, max_steps=40, eval_steps=None, early_stopping_patience=2)
    )
    assert patient.eval_steps == 5 and patient.validation_batches  # 2 x 5 = a quarter of 40
    explicit = Trainer(_args(tmp_path / "c", data_dir, max_steps=40, eval_steps=7))
    assert explicit.eval_steps == explicit.save_steps == 7
    summary = train(
        _args(tmp_path / "d", data_dir, max_steps=2, eval_steps=None), show_progress=False
    )
    assert summary["model_is"] == "final" and summary["best_step"] is None
    assert not any("validation_loss" in r for r in _lines(tmp_path / "d" / "train_log.jsonl"))
    with pytest.raises(ValueError, match="needs a validation split"):
        _args(tmp_path / "e", data_dir, early_stopping_patience=2, validation_fraction=0.0)


def test_given_base_model_trains_like_a_loaded_one(tmp_path, data_dir, offline_cache):
    """A study hands the trainer a copy of the base model it holds; the result is the same."""
    import copy

    from langmix.models import load_model

    events = []
    loaded = train(_args(tmp_path / "loaded", data_dir, max_steps=3), show_progress=False)
    trainer = Trainer(
        _args(tmp_path / "given", data_dir, max_steps=3, save_model=False),
        progress=events.append,
        base_model=copy.deepcopy(load_model(MODEL)),
    )
    given = trainer.train()
    assert given["model"] is None and not (tmp_path / "given" / "model").exists()
    assert loaded["best_validation_loss"] == given["best_validation_loss"]
    saved = load_file(tmp_path / "loaded" / "model" / "model.safetensors")
    in_memory = trainer.model[0].auto_model.state_dict()
    assert all(torch.equal(saved[k], in_memory[k]) for k in saved)
    assert not trainer.model.training
    kinds = [e.kind for e in events]
    assert kinds.count("step") == 3 and "validate" in kinds and "save" in kinds
    assert [e.step for e in events if e.kind == "log"] == [1, 2, 3]


def test_tensorboard_curves(tmp_path, data_dir, offline_cache):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    argv = [
        "train", "--model", MODEL, "--train", "mlqa-r", "--languages", "en,de",
        "--data-dir", str(data_dir), "--output-dir", str(out), "--max-steps", "3",
        "--batch-size", "8", "--query-max-length", "16", "--passage-max-length", "32",
        "--freeze-embeddings", "--eval-steps", "3", "--logging-steps", "1",
        "--report-to", "tensorboard",
    ]  # fmt: skip
    assert main(argv) == 0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    losses = events.Scalars("train/loss")
    assert [e.step for e in losses] == [1, 2, 3]
    logged = [r["loss"] for r in _lines(out / "train_log.jsonl") if "loss" in r]
    assert [round(e.value, 6) for e in losses] == pytest.approx(logged, abs=1e-5)
    assert [e.step for e in events.Scalars("train/learning_rate")] == [1, 2, 3]
    assert [e.step for e in events.Scalars("validation/loss")] == [0, 3]


def test_report_to_wandb_without_wandb_is_one_line(tmp_path, data_dir, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    out = tmp_path / "o"
    argv = ["train", "--model", MODEL, "--train", "mlqa-r", "--data-dir", str(data_dir),
            "--output-dir", str(out), "--max-steps", "2", "--report-to", "wandb"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs the wandb package" in err and "pip install" in err
    assert not out.exists()  # refused before anything ran


def test_epochs_are_training_pairs_over_batch_size(tmp_path, data_dir):
    trainer = Trainer(_args(tmp_path / "e", data_dir, max_steps=None, epochs=1.5))
    pairs = sum(len(p) for p in trainer.train_sets)
    assert trainer.sampler.steps_per_epoch == pairs // 8
    assert trainer.total_steps == -(-3 * trainer.sampler.steps_per_epoch // 2)
    assert not (tmp_path / "e").exists()  # nothing is written before train() runs


def test_cli_train_help(capsys):
    import contextlib

    with contextlib.suppress(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for option in ("--sampling", "--alpha", "--log-batches", "--resume", "--hard-negatives"):
        assert option in out


def test_validation_batches_are_strategy_neutral(tmp_path, data_dir):
    """Checkpoints are chosen on equal shares of mono, cross and pooled batches, the same
    batches for every strategy (issue 23: they were hybrid alpha = 0.5's own)."""
    from collections import Counter

    chosen = {}
    for sampling in ("mono", "cross", "hybrid"):
        trainer = Trainer(
            _args(tmp_path / sampling, data_dir, max_steps=40, eval_steps=20, sampling=sampling)
        )
        chosen[sampling] = trainer.validation_batches
    kinds = Counter(b.batch_type for b in chosen["mono"])
    assert set(kinds) == {"mono", "cross", "random"} and len(set(kinds.values())) == 1
    for batch in chosen["mono"]:
        same = batch.query_languages == batch.passage_languages
        assert same.all() if batch.batch_type in ("mono", "random") else not same.any()
    codes = [[b.codes.tolist() for b in batches] for batches in chosen.values()]
    assert codes[0] == codes[1] == codes[2]
