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
import os
from pathlib import Path

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
