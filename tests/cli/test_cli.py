"""The command line: usage, and one-line errors (exit 2) for bad input before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from langmix.cli import main
from langmix.models import count_parameters, load_model


def test_usage(capsys: pytest.CaptureFixture[str]):
    assert main([]) == 2
    assert "usage: langmix COMMAND" in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_eval_unknown_language(data_dir: Path, tmp_path: Path, capsys):
    status = main(
        ["eval", "--model", "offline:multilingual-e5-small", "--dataset", "xquad-r",
         "--languages", "en,xx", "--data-dir", str(data_dir), "--output-dir", str(tmp_path)]
    )  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "langmix eval: error: unknown language(s) xx; available: ar, de, el" in err
    assert not (tmp_path / "metrics.json").exists()


def test_eval_missing_data_says_how_to_fix(tmp_path: Path, monkeypatch, capsys):
    from langmix.data import sources

    monkeypatch.setenv("LANGMIX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "upstream_url", lambda rel: "file:///nonexistent")
    status = main(
        ["eval", "--model", "offline:multilingual-e5-small", "--dataset", "mlqa-r",
         "--output-dir", str(tmp_path / "out")]
    )  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "mlqa-r/ar.json is not available locally" in err
    assert "LANGMIX_DATA_DIR" in err and "--data-dir" in err


def test_eval_rejects_bad_settings(tmp_path: Path, capsys):
    status = main(
        ["eval", "--model", "m", "--dataset", "xquad-r", "--output-dir", str(tmp_path),
         "--batch-size", "0"]
    )  # fmt: skip
    assert status == 2
    assert "--batch-size must be positive" in capsys.readouterr().err


def test_miracl_needs_languages_and_corpus(data_dir: Path, tmp_path: Path, capsys):
    base = ["eval", "--model", "m", "--dataset", "miracl", "--data-dir", str(data_dir),
            "--output-dir", str(tmp_path)]  # fmt: skip
    assert main(base) == 2
    assert "MIRACL evaluation needs --languages" in capsys.readouterr().err
    assert main([*base, "--languages", "sw", "--corpus", str(tmp_path / "none.jsonl")]) == 2
    assert "corpus file" in capsys.readouterr().err


def test_models_lists_the_offline_family(model_cache: Path, monkeypatch, capsys):
    monkeypatch.setenv("LANGMIX_CACHE_DIR", str(model_cache))
    assert main(["models"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [r[0] for r in rows] == [f"offline:multilingual-e5-small@L{k}" for k in range(1, 13)]
    assert rows[1][1:] == ["99,909,120", "3,697,536"]
    assert rows[11][1:] == ["117,653,760", "21,442,176"]
    # The listing counts shapes without loading: it agrees with a loaded cut.
    loaded = count_parameters(load_model("offline:multilingual-e5-small@L3"))
    assert rows[2][1:] == [f"{loaded.total:,d}", f"{loaded.non_embedding:,d}"]


@pytest.mark.parametrize("command", ["eval", "train", "encode-corpus"])
def test_unavailable_model_is_one_line(data_dir: Path, tmp_path: Path, capsys, no_hub, command):
    """A hub model with no network (or a typo) is a one-line error, not a traceback."""
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"docid": "d1", "title": "", "text": "Ein Satz."}\n')
    argv = {
        "eval": ["--dataset", "mlqa-r", "--languages", "en,de", "--data-dir", str(data_dir)],
        "train": ["--train", "mlqa-r", "--max-steps", "1", "--data-dir", str(data_dir)],
        "encode-corpus": ["--corpus", str(corpus)],
    }[command]
    status = main(
        [command, "--model", "nobody/no-such-model", "--output-dir", str(tmp_path / "o"), *argv]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith(f"langmix {command}: error: cannot load model 'nobody/no-such-model'")
    assert "offline:multilingual-e5-small" in err and "Traceback" not in err


def test_library_output_is_silenced_and_restored():
    """langmix study and eval hide the libraries' bars and messages unless --verbose: their
    records go to the root logger's handlers (a study's study.log), not to the console."""
    import logging

    from transformers.utils import logging as hf_logging

    from langmix.cli import library_output

    library = logging.getLogger("transformers")
    handlers, propagate = set(library.handlers), library.propagate
    records: list[logging.LogRecord] = []
    sink = logging.Handler()
    sink.emit = records.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(sink)
    try:
        with library_output(verbose=False):
            assert not hf_logging.is_progress_bar_enabled()
            # No console handler of its own (pytest may add its capture handlers).
            assert library.propagate
            assert not any(type(h) is logging.StreamHandler for h in library.handlers)
            hf_logging.get_logger("transformers.langmix_test").warning("a library warning")
        assert [r.getMessage() for r in records] == ["a library warning"]
    finally:
        logging.getLogger().removeHandler(sink)
    assert hf_logging.is_progress_bar_enabled()
    assert set(library.handlers) == handlers and library.propagate == propagate
    with library_output(verbose=True):
        assert hf_logging.is_progress_bar_enabled() and set(library.handlers) == handlers


def test_eval_and_study_take_verbose(capsys):
    import contextlib

    for command in ("eval", "study"):
        with contextlib.suppress(SystemExit):
            main([command, "--help"])
        assert "--verbose" in capsys.readouterr().out, command


def test_an_unknown_command_suggests_the_closest(capsys):
    assert main(["studdy"]) == 2
    assert "unknown command 'studdy' (did you mean study?)" in capsys.readouterr().err


def test_an_interrupted_command_says_how_to_go_on(monkeypatch, capsys):
    import langmix.cli as cli

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "study", interrupted)
    assert main(["study"]) == 130
    err = capsys.readouterr().err
    assert "langmix study: interrupted; finished work is kept" in err
    assert "rerun the same command" in err
