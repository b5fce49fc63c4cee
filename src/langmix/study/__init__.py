"""Model-size scaling studies: a grid of models x batch strategies x seeds, trained and evaluated."""

from __future__ import annotations
