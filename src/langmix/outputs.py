"""Output directories: checked for writability before work starts, disk errors made plain.

Every file langmix writes is written atomically (a temporary name, then ``os.replace``; JSONL
rows as one synced append), so an interrupted write never leaves a half file behind. What is
left is the case where the disk itself refuses: a read-only or full file system. Then the
best outcome is to find out before hours of work (:func:`ensure_writable`), and otherwise to
stop at once with a plain message rather than record every following cell as failed
(:func:`is_disk_error`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM})


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it replaces ``path`` only on success.

    The one temp-file-then-rename writer every langmix output goes through: readers (and a
    process killed mid-write) see either the old file or the complete new one, never a half.
    The temporary name keeps ``path``'s suffix, so writers that pick a format from it
    (``np.savez``, matplotlib) behave as for the real name. On an exception the temporary
    file is removed and ``path`` is left as it was.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "rows.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    target = Path(path)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike[str], document: Any) -> None:
    """Write ``document`` as indented UTF-8 JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line, in one write, flushed and synced.

    A kill leaves either the whole line or a cut last line, which langmix's JSONL readers
    drop and the next run redoes; ``fsync`` makes the same hold for a power cut.

    Example:
        >>> import tempfile
        >>> log = Path(tempfile.mkdtemp()) / "log.jsonl"
        >>> append_jsonl(log, {"step": 1}); append_jsonl(log, {"step": 2})
        >>> log.read_text().splitlines()
        ['{"step": 1}', '{"step": 2}']
    """
    data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def safe_name(name: str) -> str:
    """A file-name-safe form of a model, cell or evaluation-set name (one rule everywhere).

    Example:
        >>> safe_name("mlqa-r:heldout"), safe_name("xquad-r[:12]"), safe_name("offline:e5@L2")
        ('mlqa-r-heldout', 'xquad-r-12', 'offline-e5@L2')
    """
    cleaned = re.sub(r"[^A-Za-z0-9._,@=+-]", "-", name)
    return re.sub(r"-{2,}", "-", cleaned).strip("-")


class OutputError(ValueError):
    """An output directory cannot be written."""


def is_disk_error(exc: BaseException) -> bool:
    """True for errors of the file system itself (full, read-only, no permission)."""
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


def ensure_writable(directory: str | os.PathLike[str]) -> Path:
    """Create ``directory`` if needed and prove a file can be written and synced in it.

    Raises:
        OutputError: Naming the directory and the system's reason.

    Example:
        >>> ensure_writable("runs/x")  # doctest: +SKIP
        PosixPath('runs/x')
    """
    path = Path(directory)
    probe = path / f".langmix-write-test-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as handle:
            handle.write(b"ok")
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as exc:
        raise OutputError(
            f"cannot write to {path}: {exc.strerror or exc}; nothing was run "
            "(choose another output directory or free the disk)"
        ) from exc
    return path


class OutputDirError(ValueError):
    """An output directory holds another run's results; refused unless told to overwrite."""


RUN_RECORD = "langmix-run.json"


def claim_output_dir(
    directory: str | os.PathLike[str],
    command: str,
    settings: dict[str, Any],
    *,
    overwrite: bool = False,
    outputs: tuple[str, ...] = (),
) -> Path:
    """Make ``directory`` this run's, refusing one that holds another configuration's results.

    The settings that shape the results are recorded in ``langmix-run.json``. Where any of
    ``outputs`` exists, the same command with the same settings may reuse the directory (a
    rerun replaces its files atomically) and other settings are refused unless ``overwrite``,
    which first deletes the named ``outputs`` (never anything else in the directory) so no
    stale file is mistaken for the new run's. Results without a record are refused too.

    Args:
        directory: The output directory (created if needed, and checked for writability).
        command: The langmix command, e.g. ``"eval"``.
        settings: JSON-serialisable settings that determine the results.
        overwrite: Replace another configuration's results.
        outputs: File and directory names this command writes.

    Raises:
        OutputDirError: The directory holds results of other settings and not ``overwrite``.
        OutputError: The directory cannot be written.

    Example:
        >>> claim_output_dir("runs/x", "eval", {"model": "m", "dataset": "xquad-r"})  # doctest: +SKIP
        PosixPath('runs/x')
    """
    path = ensure_writable(directory)
    record = path / RUN_RECORD
    wanted = {"command": command, "settings": json.loads(json.dumps(settings))}
    refuse_foreign_run(path, command)
    found: dict[str, Any] | None = None
    # Only results are protected: a run that stopped before writing any (bad arguments, a
    # kill during set-up) leaves nothing that a corrected command could lose.
    if any((path / name).exists() for name in outputs):
        try:
            found = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = {}  # results without a record (an older langmix, or copied in): not ours
    if found is not None and found != wanted:
        if not overwrite:
            raise OutputDirError(
                f"{path} holds results of {_describe(found, command, wanted['settings'])}; use "
                "another output directory or pass --overwrite to replace them"
            )
        remove_outputs(path, outputs)
    write_json_atomic(record, wanted)
    return path


#: Files that mark a study's directory (langmix.study.runner writes them).
STUDY_MARKS = ("study.toml", "results.jsonl")


def refuse_foreign_run(directory: str | os.PathLike[str], command: str) -> None:
    """Refuse a directory that belongs to another langmix command, even with --overwrite.

    A directory is one command's: ``langmix-run.json`` names it (train, eval, distill,
    index, ...), a study's ``study.toml`` and ``results.jsonl`` name a study. Another
    command's files are never deleted, and writing beside them would mix two runs, so
    ``--overwrite`` (which deletes only this command's own outputs) does not apply.

    Raises:
        OutputDirError: The directory holds another command's run.

    Example:
        >>> refuse_foreign_run("runs/new", "train")  # doctest: +SKIP
    """
    path = Path(directory)
    owner = None
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no record, or not ours
        owner = json.loads((path / RUN_RECORD).read_text(encoding="utf-8")).get("command")
    if owner is None and all((path / name).is_file() for name in STUDY_MARKS):
        owner = "study"
    if owner is not None and owner != command:
        raise OutputDirError(
            f"{path} holds a `langmix {owner}` run; `langmix {command}` never writes into "
            "another command's directory (even with --overwrite, which only replaces a "
            "command's own results): use another output directory"
        )


def remove_outputs(directory: Path, names: tuple[str, ...]) -> None:
    """Delete the named files and folders of ``directory`` (what a command wrote), nothing else."""
    for name in names:
        target = directory / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def _describe(found: dict[str, Any], command: str, settings: dict[str, Any]) -> str:
    if found.get("command") != command:
        return f"`langmix {found['command']}`" if "command" in found else "an unrecorded run"
    previous = found.get("settings", {})
    differ = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
    return f"other settings ({', '.join(differ)} differ)"
