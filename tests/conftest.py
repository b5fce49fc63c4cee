"""Shared fixtures: the real evaluation data beside the repository (../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LANGMIX_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real XQuAD-R / MLQA-R / MIRACL files; tests needing them skip if absent."""
    if not (SHARED_DATA / "xquad-r" / "en.json").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (set LANGMIX_TEST_DATA)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests pass data directories explicitly; a developer's LANGMIX_DATA_DIR must not leak in."""
    monkeypatch.delenv("LANGMIX_DATA_DIR", raising=False)
