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


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable Hugging Face hub, deterministically, even on a machine with network."""
    for var in (
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
    ):
        monkeypatch.delenv(var, raising=False)
    # Port 9 (discard) on localhost refuses connections.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A langmix cache root holding a freshly built offline model (built once per session).

    The build goes to a temporary root rather than ``~/.cache/langmix`` so that the build
    itself is under test and a developer's cache is never touched.
    """
    from langmix.models.offline import offline_model_path

    root = tmp_path_factory.mktemp("langmix-cache")
    offline_model_path(root)
    return root


@pytest.fixture
def offline_cache(model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point langmix's cache (offline model, embeddings) at the session's test cache."""
    monkeypatch.setenv("LANGMIX_CACHE_DIR", str(model_cache))
    return model_cache
