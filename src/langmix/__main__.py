"""``python -m langmix`` runs the command-line interface."""

from __future__ import annotations

from langmix.cli import main

raise SystemExit(main())
