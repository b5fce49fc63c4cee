"""SIGKILL a langmix subprocess at drawn points of its progress (shared by the resume tests).

A kill moment is a pair ``(target, delay)``: wait until the run's progress (lines it has
logged) reaches ``target``, then kill its whole process group if it is still running ``delay``
seconds later. Counting progress rather than time puts the kills at the same points of the
work however loaded the machine is, so a failure replays from its seed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable


def kill_at_progress(
    start: Callable[[], subprocess.Popen],
    progress: Callable[[], int],
    moments: Iterable[tuple[int, float]],
) -> list[tuple[int, float]]:
    """Start the run once per moment and SIGKILL it there; return the moments a kill landed.

    A run that finishes before its moment must have succeeded (its stderr is shown if not).
    ``start`` must open the process in a new session (``start_new_session=True``) with stderr
    piped, so the kill reaches its workers and the error can be read.
    """
    landed = []
    for target, delay in moments:
        process = start()
        while process.poll() is None and progress() < target:
            time.sleep(0.02)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            landed.append((target, round(delay, 3)))
        else:
            error = process.stderr.read() if process.stderr else ""
            assert process.returncode == 0, error[-3000:]
    return landed
