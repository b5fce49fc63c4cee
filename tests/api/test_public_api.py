"""The top-level API: every advertised name resolves, and importing langmix loads no torch."""

from __future__ import annotations

import subprocess
import sys

import langmix


def test_every_public_name_resolves():
    for name in langmix.__all__:
        assert getattr(langmix, name) is not None, name


def test_import_is_light():
    code = "import sys, langmix; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
