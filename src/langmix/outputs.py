"""Output directories: checked for writability before work starts, disk errors made plain.

Every file langmix writes is written atomically (a temporary name, then ``os.replace``; JSONL
rows as one synced append), so an interrupted write never leaves a half file behind. What is
left is the case where the disk itself refuses: a read-only or full file system. Then the
best outcome is to find out before hours of work (:func:`ensure_writable`), and otherwise to
stop at once with a plain message rather than record every following cell as failed
(:func:`is_disk_error`).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM})


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
    tmp = path / f".{RUN_RECORD}.tmp"
    tmp.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, record)
    return path


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
