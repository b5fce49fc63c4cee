"""docs/study-config.md is the configuration's own vocabulary, and stays so."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from langmix.study.config import _EVAL_TYPES, _STUDY_TYPES, EvalSpec, load_study_config
from langmix.study.config_keys import EVAL_KEYS, MODEL_KEYS, STUDY_KEYS, reference

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_page_is_the_generated_one():
    page = (ROOT / "docs" / "study-config.md").read_text(encoding="utf-8")
    assert page == reference(), (
        "regenerate: python -m langmix.study.config_keys > docs/study-config.md"
    )


def test_every_accepted_key_is_documented_and_no_other():
    assert set(EVAL_KEYS) == {f.name for f in fields(EvalSpec)}
    assert set(_STUDY_TYPES) <= set(STUDY_KEYS) and set(_EVAL_TYPES) <= set(EVAL_KEYS)
    page = reference()
    for key in (*STUDY_KEYS, *MODEL_KEYS, *EVAL_KEYS):
        assert f"| `{key}` |" in page


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_the_shipped_configs_use_only_documented_keys(config: Path):
    raw = tomllib.loads(config.read_text(encoding="utf-8"))
    page = reference()
    keys = set(raw.get("study", {}))
    keys |= {k for m in raw.get("models", []) for k in m}
    keys |= set(raw.get("train", {})) | {k for e in raw.get("eval", []) for k in e}
    assert all(f"| `{k}` |" in page for k in keys), sorted(
        k for k in keys if f"| `{k}` |" not in page
    )
    load_study_config(config)  # and the config loads


def test_an_unknown_key_is_refused_with_the_closest_documented_one(tmp_path: Path):
    from langmix.data.errors import DataError

    config = tmp_path / "s.toml"
    config.write_text(
        '[study]\nname = "s"\nequivalence_margn = 0.01\n\n[[models]]\n'
        'name = "offline:multilingual-e5-small@L1"\n\n[[eval]]\ndataset = "xquad-r"\n'
    )
    with pytest.raises(DataError, match=r"did you mean equivalence_margin\?"):
        load_study_config(config)
