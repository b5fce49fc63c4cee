"""langmix: language-aware batch composition for multilingual dense retrieval."""

from __future__ import annotations

__version__ = "0.1.0"
