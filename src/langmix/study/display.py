"""The console display of a running study: one line for the whole grid.

A study of many cells used to print a wall of the libraries' progress bars (loading weights,
encoding batches, writing model shards) between its own lines; the study now silences those
(``langmix study`` unless ``--verbose``) and shows this display instead.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, TextIO

import numpy as np

if TYPE_CHECKING:
    from langmix.study.config import Cell


class StudyDisplay:
    """The one console display of a running study.

    It shows the cells done out of all cells, the current cell and its phase (``train 12/80``,
    ``encode xquad-r[:16]``, ``metrics ...``) and the time left (:func:`estimate_remaining`,
    counted down through the current cell). On a terminal it is a single tqdm line updated in
    place; elsewhere (a pipe, a CI log) one plain line per cell. Messages print above it.

    Args:
        name: The study's name.
        total: Cells in the grid.
        done: Cells already done before this run.
        enabled: Show the display at all; without it only the messages are printed.
        stream: Where to draw (default: standard error).

    Example:
        >>> import io
        >>> display = StudyDisplay("demo", 3, 1, stream=io.StringIO())
        >>> display.start_cell("L1/mono-s0", 0.0, 0.0, exact=False)
        >>> display.stream.getvalue()
        '[2/3] L1/mono-s0: started; 2 cells left\\n'
    """

    def __init__(
        self,
        name: str,
        total: int,
        done: int,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.done, self.enabled = total, done, enabled
        self.cell, self.phase_text = "", ""
        self.cell_started, self.cell_eta, self.rest_eta, self.exact = 0.0, 0.0, 0.0, False
        self.bar = None
        if enabled and _is_terminal(self.stream):
            from tqdm.auto import tqdm

            title = f"study {name}".replace("{", "{{").replace("}", "}}")
            self.bar = tqdm(
                total=total,
                initial=done,
                unit="cell",
                file=self.stream,
                dynamic_ncols=True,
                # The cell, its phase and the time left go where tqdm puts a description.
                bar_format=title + ": {n_fmt}/{total_fmt} cells |{bar:12}| {desc}",
            )

    def start_cell(self, key: str, cell_eta: float, rest_eta: float, *, exact: bool) -> None:
        """A cell starts; ``cell_eta`` and ``rest_eta`` estimate it and the cells after it."""
        self.cell, self.phase_text = key, "starting"
        self.cell_started = time.perf_counter()
        self.cell_eta, self.rest_eta, self.exact = cell_eta, rest_eta, exact
        if self.bar is not None:
            self._refresh()
        elif self.enabled:
            left = self.total - self.done
            print(
                f"[{self.done + 1}/{self.total}] {key}: started; {left} cell"
                f"{'' if left == 1 else 's'} left" + (f", {self._left()}" if self._left() else ""),
                file=self.stream,
                flush=True,
            )

    def phase(self, text: str) -> None:
        """The current cell's phase changed (or its step count moved on)."""
        self.phase_text = text
        if self.bar is not None:
            self._refresh()

    def end_cell(self) -> None:
        """The current cell is done (finished or failed)."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def write(self, message: str) -> None:
        """Print ``message`` above the display."""
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _left(self) -> str:
        if not (self.cell_eta or self.rest_eta):
            return ""  # nothing measured yet
        elapsed = time.perf_counter() - self.cell_started
        seconds = max(self.cell_eta - elapsed, 0.0) + self.rest_eta
        return f"{'about' if self.exact else 'at least'} {format_duration(seconds)} left"

    def _refresh(self) -> None:
        parts = [f"{self.cell} {self.phase_text}", self._left()]
        self.bar.set_description_str(" · ".join(p for p in parts if p))  # type: ignore[union-attr]


def format_duration(seconds: float) -> str:
    """Seconds as a person reads them.

    Example:
        >>> format_duration(42.4), format_duration(150), format_duration(5400)
        ('42 s', '2.5 min', '1.5 h')
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _is_terminal(stream: TextIO) -> bool:
    """A terminal the bar can be drawn on (a pseudo-terminal without a size shows nothing)."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, ValueError, OSError):
        return False


def cell_kind(cell: Cell) -> tuple[str, bool]:
    """What a cell's time is estimated by: its model and whether it trains."""
    return cell.model.label, cell.strategy != "untrained"


def estimate_remaining(
    durations: dict[tuple[str, bool], list[float]], cells: list[Cell]
) -> tuple[float, bool]:
    """Seconds left: each cell at the mean time of finished cells of its model and kind.

    A model not reached yet is costed at the last measured model's time, a lower bound when
    the grid runs from small to large models; the flag says whether every cell was measured.

    Example:
        >>> estimate_remaining({}, [])
        (0.0, True)
    """
    total, exact = 0.0, True
    last: dict[bool, float] = {}
    for (_, trained), values in durations.items():
        last[trained] = float(np.mean(values))
    for cell in cells:
        measured = durations.get(cell_kind(cell))
        if measured:
            total += float(np.mean(measured))
        else:
            exact = False
            total += last.get(cell_kind(cell)[1], max(last.values(), default=0.0))
    return total, exact


__all__ = ["StudyDisplay", "cell_kind", "estimate_remaining", "format_duration"]
