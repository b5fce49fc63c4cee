"""Data sources: local directory, cache, verified download, and the message when all fail."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from langmix.data import DataUnavailableError, load_lareqa, sources
from langmix.data.checksums import SHA256


def test_checksums_match_the_real_files(data_dir: Path):
    for rel in ("xquad-r/en.json", "mlqa-r/de.json", "miracl/qrels/qrels.miracl-v1.0-de-dev.tsv"):
        assert sources._sha256(data_dir / rel) == SHA256[rel]


def test_env_var_is_used(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LANGMIX_DATA_DIR", str(data_dir))
    assert sources.resolve_file("xquad-r/de.json") == data_dir / "xquad-r" / "de.json"


def test_download_verifies_and_caches(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The download path, served from a file:// URL so the test needs no network."""
    monkeypatch.setenv("LANGMIX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "upstream_url", lambda rel: (data_dir / rel).as_uri())
    path = sources.resolve_file("xquad-r/el.json")
    assert path == tmp_path / "cache" / "data" / "xquad-r" / "el.json"
    assert path.read_bytes() == (data_dir / "xquad-r" / "el.json").read_bytes()
    # now cached: found without downloading
    monkeypatch.setattr(sources, "upstream_url", lambda rel: "file:///nonexistent")
    assert sources.resolve_file("xquad-r/el.json") == path


def test_corrupt_download_is_rejected_and_not_kept(data_dir: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LANGMIX_CACHE_DIR", str(tmp_path / "cache"))
    wrong = tmp_path / "wrong.json"
    shutil.copy(data_dir / "xquad-r" / "de.json", wrong)
    monkeypatch.setattr(sources, "upstream_url", lambda rel: wrong.as_uri())
    with pytest.raises(DataUnavailableError, match="checksum mismatch"):
        sources.resolve_file("xquad-r/en.json")
    target_dir = tmp_path / "cache" / "data" / "xquad-r"
    assert list(target_dir.iterdir()) == []  # neither the file nor a temporary is left


def test_unavailable_data_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LANGMIX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "upstream_url", lambda rel: "file:///nonexistent/x.json")
    with pytest.raises(DataUnavailableError) as info:
        load_lareqa("xquad-r", "en")
    message = str(info.value)
    assert "xquad-r/en.json is not available locally" in message
    assert "--data-dir" in message and "LANGMIX_DATA_DIR" in message
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_lareqa("xquad-r", "en", data_dir=tmp_path / "missing")


def test_upstream_urls_are_pinned():
    assert "/9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c/xquad-r/en.json" in sources.upstream_url(
        "xquad-r/en.json"
    )
    assert "/354d67d1cd066854cdfbf5ad0e6105528976141d/mlqa-r/" in sources.upstream_url(
        "mlqa-r/de.json"
    )
    url = sources.upstream_url("miracl/qrels/qrels.miracl-v1.0-sw-dev.tsv")
    assert url.endswith("/topics-and-qrels/qrels.miracl-v1.0-sw-dev.tsv")
    with pytest.raises(DataUnavailableError):
        sources.upstream_url("squad/en.json")
