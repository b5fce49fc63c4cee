"""Line-oriented files: the reading and JSON parsing every TSV/JSONL reader here shares."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langmix.data.errors import DataError, not_json, not_utf8


def json_object(path: Path, where: str, line: str) -> dict[str, Any]:
    """Parse one line as a JSON object; a DataError names ``path`` and ``where`` otherwise.

    Example:
        >>> json_object(Path("c.jsonl"), "line 1", '{"docid": "a"}')
        {'docid': 'a'}
    """
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise not_json(path, exc, record=where) from exc
    if not isinstance(row, dict):
        raise DataError(path, "expected a JSON object", record=where)
    return row


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The non-blank lines of a UTF-8 file with their 1-based numbers, line ends stripped.

    Lines are decoded one at a time so that a bad byte is reported on its own line (a text
    stream would count its offset from an internal buffer instead).

    Raises:
        DataError: The file cannot be opened, or a line is not UTF-8.

    Example:
        >>> list(text_lines(Path("topics.tsv")))  # doctest: +SKIP
        [(1, '0#0\tWhat is ...?'), ...]
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(path, f"cannot open: {exc.strerror}") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise not_utf8(path, exc, record=f"line {number}") from exc
            line = line.rstrip("\n").rstrip("\r")
            if line.strip():
                yield number, line
