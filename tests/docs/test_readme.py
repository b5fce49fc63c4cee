"""The README and docs/ stay true: generated blocks regenerate, links resolve, the size holds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_readme_generated_blocks_are_current() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "update_readme.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_readme_is_short() -> None:
    # The README is a front page (what, two commands, an example, the CLI, a result, links);
    # everything else lives in docs/.
    assert len((REPO / "README.md").read_bytes()) <= 10_500


def test_links_between_pages_resolve() -> None:
    broken = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert broken == []
