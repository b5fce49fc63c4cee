"""One JSON object per line: the parsing every JSONL reader here shares."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langmix.data.errors import DataError


def json_object(path: Path, where: str, line: str) -> dict[str, Any]:
    """Parse one line as a JSON object; a DataError names ``path`` and ``where`` otherwise.

    Example:
        >>> json_object(Path("c.jsonl"), "line 1", '{"docid": "a"}')
        {'docid': 'a'}
    """
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON: {exc.msg}", record=where) from exc
    if not isinstance(row, dict):
        raise DataError(path, "expected a JSON object", record=where)
    return row
