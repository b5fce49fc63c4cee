"""Errors raised for bad or missing input data.

Every error names the file and, where there is one, the record, so that a user can find and
fix the problem without reading a traceback.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable


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


# The fixes below are the same wherever the problem shows up; one wording keeps them so.
REFETCH = "if it was downloaded, delete it and rerun to fetch it again"


def not_utf8(
    path: str | os.PathLike[str], exc: UnicodeDecodeError, *, record: str | None = None
) -> DataError:
    """The error for a file that is not UTF-8, located at the first bad byte.

    Args:
        path: The file.
        exc: The decoding error.
        record: Where the decoded text started (a line or byte offset), if not the file start;
            the bad byte is then counted from there.
    """
    at = f"byte {exc.start}" if record is None else f"{record}, offset {exc.start} in that line"
    return DataError(
        path,
        f"not UTF-8 text ({exc.reason})",
        record=at,
        fix="save the file as UTF-8, e.g. with iconv -t UTF-8",
    )


def not_json(path: str | os.PathLike[str], exc: Exception, *, record: str) -> DataError:
    """The error for text that does not parse as JSON at ``record``."""
    message = getattr(exc, "msg", str(exc))
    return DataError(path, f"not valid JSON: {message}", record=record, fix=REFETCH)


def no_records(path: str | os.PathLike[str], what: str) -> DataError:
    """The error for a file that parses but holds nothing (an empty or truncated download)."""
    return DataError(
        path, f"the file holds no {what}", fix=f"check that this is the right file; {REFETCH}"
    )


def repeated(
    path: str | os.PathLike[str], what: str, *, record: str, first: str | None = None
) -> DataError:
    """The error for an id (or judgment) that occurs twice, at its second occurrence."""
    problem = f"{what} appears twice" + (f" (first at {first})" if first else "")
    return DataError(path, problem, record=record, fix="each may appear once; remove the repeat")


def did_you_mean(names: Iterable[str], choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest valid spelling of each unknown name, or ``""``.

    For every message that refuses an unknown name (TOML keys, tables, training options,
    strategies, datasets, model names, commands): a typo is the usual cause.

    Example:
        >>> did_you_mean(["learnig_rate"], ["learning_rate", "max_steps"])
        ' (did you mean learning_rate?)'
        >>> did_you_mean(["zzz"], ["learning_rate"])
        ''
    """
    choices = list(choices)
    close = [
        match[0]
        for name in names
        if (match := difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6))
    ]
    return f" (did you mean {', '.join(close)}?)" if close else ""
