"""Errors raised for bad or missing input data.

Every error names the file and, where there is one, the record, so that a user can find and
fix the problem without reading a traceback.
"""

from __future__ import annotations

import os


class DataError(ValueError):
    """Malformed or inconsistent input data.

    Args:
        path: The file the problem is in.
        problem: What is wrong, in words.
        record: Where in the file (a line number, a record id, a JSON path), if known.
        fix: What the user can do about it, if there is something obvious.

    Example:
        >>> str(DataError("train.jsonl", "missing field 'query'", record="line 3"))
        "train.jsonl, line 3: missing field 'query'"
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        problem: str,
        *,
        record: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.path = str(path)
        self.problem = problem
        self.record = record
        self.fix = fix
        where = f"{self.path}, {record}" if record else self.path
        message = f"{where}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)


class DataUnavailableError(FileNotFoundError):
    """A data file is neither available locally nor downloadable.

    Example:
        >>> raise DataUnavailableError("xquad-r/en.json is not available")  # doctest: +SKIP
    """
