"""Where evaluation data comes from: a local directory, the cache, or a verified download.

Resolution order for every file (relative path such as ``xquad-r/en.json``):

1. an explicit ``data_dir`` argument (the CLI's ``--data-dir``);
2. the ``LANGMIX_DATA_DIR`` environment variable;
3. the cache, ``$LANGMIX_CACHE_DIR/data`` (default ``~/.cache/langmix/data``);
4. a download from the dataset's official public repository, pinned to a commit, into the
   cache. A download is accepted only if its SHA-256 matches :mod:`langmix.data.checksums`.

A local directory is trusted as the user's copy (it may hold their own edits), so it is not
checksum-verified; downloaded files always are.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from langmix.data.checksums import SHA256
from langmix.data.errors import DataUnavailableError
from langmix.outputs import atomic_path

# Pinned upstream commits: MLQA-R was deleted from the LAReQA repository after 354d67d, and
# pinning XQuAD-R and the MIRACL topics keeps every downloaded byte identical to the checksums.
_GITHUB_RAW = "https://raw.githubusercontent.com"
_LAREQA_XQUAD_COMMIT = "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c"
_LAREQA_MLQA_COMMIT = "354d67d1cd066854cdfbf5ad0e6105528976141d"
_ANSERINI_TOOLS_COMMIT = "5b819c1a45c8a0a3ec9426f476694f44a29dfaf3"

DATA_DIR_ENV = "LANGMIX_DATA_DIR"
CACHE_DIR_ENV = "LANGMIX_CACHE_DIR"


def cache_dir() -> Path:
    """Return langmix's cache root (``$LANGMIX_CACHE_DIR`` or ``~/.cache/langmix``).

    Example:
        >>> cache_dir() == Path(os.environ.get("LANGMIX_CACHE_DIR", "~/.cache/langmix")).expanduser()
        True
    """
    root = os.environ.get(CACHE_DIR_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "langmix"


def upstream_url(relative_path: str) -> str:
    """Return the pinned public URL a data file is downloaded from.

    Args:
        relative_path: Path inside the data directory, e.g. ``"xquad-r/de.json"``.

    Raises:
        DataUnavailableError: If langmix knows no public source for the path.

    Example:
        >>> upstream_url("xquad-r/en.json").endswith("/xquad-r/en.json")
        True
    """
    head, _, name = relative_path.partition("/")
    if head == "xquad-r":
        return (
            f"{_GITHUB_RAW}/google-research-datasets/lareqa/{_LAREQA_XQUAD_COMMIT}/xquad-r/{name}"
        )
    if head == "mlqa-r":
        return f"{_GITHUB_RAW}/google-research-datasets/lareqa/{_LAREQA_MLQA_COMMIT}/mlqa-r/{name}"
    if head == "miracl":
        # Local layout is miracl/{topics,qrels}/FILE; upstream keeps both in one folder.
        file_name = relative_path.rsplit("/", 1)[-1]
        return (
            f"{_GITHUB_RAW}/castorini/anserini-tools/{_ANSERINI_TOOLS_COMMIT}/"
            f"topics-and-qrels/{file_name}"
        )
    raise DataUnavailableError(f"no public source is known for {relative_path!r}")


def local_roots(data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Local data directories in resolution order: ``data_dir``, the environment, the cache."""
    roots = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    if os.environ.get(DATA_DIR_ENV):
        roots.append(Path(os.environ[DATA_DIR_ENV]).expanduser())
    roots.append(cache_dir() / "data")
    return roots


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(relative_path: str, destination: Path, *, timeout: float = 30.0) -> Path:
    """Download one data file to ``destination`` atomically, verifying its checksum.

    The bytes go to a temporary file in the destination folder and are renamed into place
    only after the SHA-256 matches, so an interrupted or corrupted download never leaves a
    file that a later run would trust.

    Args:
        relative_path: Path inside the data directory, e.g. ``"mlqa-r/de.json"``.
        destination: Where the verified file is written.
        timeout: Socket timeout in seconds.

    Raises:
        DataUnavailableError: If the download fails or the checksum does not match.

    Example:
        >>> target = cache_dir() / "data" / "xquad-r" / "en.json"
        >>> download("xquad-r/en.json", target)  # doctest: +SKIP
    """
    url = upstream_url(relative_path)
    expected = SHA256.get(relative_path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Raising inside atomic_path (a failed read, a checksum mismatch) removes the
        # temporary file and leaves ``destination`` untouched.
        with atomic_path(destination) as tmp:
            with tmp.open("wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
            actual = _sha256(tmp)
            if expected is not None and actual != expected:
                raise DataUnavailableError(
                    f"checksum mismatch for {relative_path} downloaded from {url}: "
                    f"expected sha256 {expected}, got {actual}"
                )
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataUnavailableError(f"could not download {relative_path} from {url}: {exc}") from exc
    return destination


def find_local(relative_path: str, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The first local copy of a data file in :func:`local_roots` order, or ``None``.

    Raises:
        DataUnavailableError: If an explicit ``data_dir`` does not exist (a typo must not
            fall through to a download).
    """
    for root in local_roots(data_dir):
        candidate = root / relative_path
        if candidate.is_file():
            return candidate
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DataUnavailableError(f"data directory {data_dir} does not exist")
    return None


def resolve_file(
    relative_path: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = True,
) -> Path:
    """Find a data file locally, or download it into the cache.

    Args:
        relative_path: Path inside the data directory, e.g. ``"xquad-r/en.json"``.
        data_dir: A local directory laid out like ``xquad-r/``, ``mlqa-r/``, ``miracl/``.
        allow_download: Whether to fall back to the pinned public source.

    Returns:
        The path of an existing file.

    Raises:
        DataUnavailableError: If no local copy exists and the download is impossible; the
            message says how to point langmix at a local copy.

    Example:
        >>> path = resolve_file("xquad-r/en.json", "../shared/data")  # doctest: +SKIP
    """
    local = find_local(relative_path, data_dir)
    if local is not None:
        return local
    roots = local_roots(data_dir)
    if not allow_download:
        raise DataUnavailableError(_missing_message(relative_path, roots, None))
    destination = cache_dir() / "data" / relative_path
    try:
        return download(relative_path, destination)
    except DataUnavailableError as exc:
        raise DataUnavailableError(_missing_message(relative_path, roots, exc)) from exc


def _missing_message(relative_path: str, roots: list[Path], error: Exception | None) -> str:
    looked = ", ".join(str(root) for root in roots)
    reason = f"\n  download failed: {error}" if error else ""
    return (
        f"{relative_path} is not available locally (looked in: {looked}).{reason}\n"
        f"  Point langmix at a local copy with --data-dir DIR or {DATA_DIR_ENV}=DIR, where DIR "
        f"holds xquad-r/{{lang}}.json, mlqa-r/{{lang}}.json and miracl/{{topics,qrels}}/ as "
        f"released by LAReQA and MIRACL."
    )
