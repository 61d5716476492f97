"""Labelling in the terminal: a text plot of each queried series and a prompt."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from framework.data import Split
from framework.interfaces import Round
from framework.labels import LABEL_NAMES, Annotator, LabellingPaused, parse_answer

log = logging.getLogger(__name__)

PROMPT = "[n]ormal  [a]nomaly  [s]kip  [q]uit > "


def text_plot(
    values: np.ndarray,
    width: int,
    height: int,
    reference: np.ndarray | None = None,
) -> list[str]:
    """Draw a series as `height` lines of text, `reference` behind it in dots.

    Each column covers a stretch of the series and spans its lowest to its
    highest value, overlapping the previous column by one value, so that a
    narrow spike is never lost and a steep flank stays one connected line.
    The column's last value is marked `*`, the rest of its span `|`. The left
    margin gives the value range.
    """
    values = np.asarray(values, dtype=float)
    curves = [values] if reference is None else [np.asarray(reference), values]
    low = min(float(np.min(c)) for c in curves)
    high = max(float(np.max(c)) for c in curves)
    span = high - low or 1.0
    label_width = max(len(f"{high:.2f}"), len(f"{low:.2f}"))
    columns = max(width - label_width - 2, 10)
    grid = [[" "] * columns for _ in range(height)]

    def row_of(value: float) -> int:
        return int(np.rint((high - value) / span * (height - 1)))

    # The queried series is drawn last, over the reference.
    marks = [(".", ".")] * (len(curves) - 1) + [("*", "|")]
    for curve, (mark, joint) in zip(curves, marks, strict=True):
        if len(curve) < columns:
            curve = np.interp(
                np.linspace(0, len(curve) - 1, columns), np.arange(len(curve)), curve
            )
        edges = np.linspace(0, len(curve), columns + 1).astype(int)
        for column in range(columns):
            stretch = curve[max(edges[column] - 1, 0) : max(edges[column + 1], 1)]
            top, bottom = row_of(stretch.max()), row_of(stretch.min())
            for row in range(top, bottom + 1):
                grid[row][column] = joint
            grid[row_of(stretch[-1])][column] = mark
    lines = []
    for number, row in enumerate(grid):
        if number == 0:
            axis = f"{high:.2f}"
        elif number == height - 1:
            axis = f"{low:.2f}"
        else:
            axis = ""
        lines.append(f"{axis:>{label_width}} |" + "".join(row))
    return lines


class CliOracle(Annotator):
    """Ask a person for labels at a prompt in the terminal.

    Args:
        pool: The pool split.
        store: Path of the label store (see `framework.labels`).
        width: Characters per plot line; None fits the terminal.
        height: Lines of the plot.
        input_stream: Where answers are read; standard input by default.
        output: Where plots and prompts go; standard output by default.

    Raises:
        RuntimeError: the input is not a terminal, so nobody can answer.
        ValueError: `width` or `height` is too small.
    """

    name = "cli"

    def __init__(
        self,
        pool: Split,
        store: str | Path,
        width: int | None = None,
        height: int = 16,
        input_stream: TextIO | None = None,
        output: TextIO | None = None,
    ) -> None:
        self.input = input_stream or sys.stdin
        self.output = output or sys.stdout
        if input_stream is None and not self.input.isatty():
            raise RuntimeError(
                "oracle=cli reads answers from a terminal, and standard input is "
                "not one; run the command in a terminal, or use oracle=file to "
                "label through a file"
            )
        for key, value, least in (("width", width, 30), ("height", height, 4)):
            if value is None and key == "width":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(
                    f"oracle.{key}={value!r} is invalid: it must be a whole number "
                    f"of at least {least} characters"
                    + (" (or null to fit the terminal)" if key == "width" else "")
                )
        super().__init__(pool, store)
        self.width = width
        self.height = height

    def ask(self, positions: np.ndarray, round: Round) -> None:
        width = self.width or min(shutil.get_terminal_size((100, 24)).columns, 160)
        reference = self.pool.series[round.normals[0]] if len(round.normals) else None
        for number, position in enumerate(positions, start=1):
            probability = round.probability(position)
            chance = "unknown" if np.isnan(probability) else f"{probability:.0%}"
            where = (
                f"round {round.iteration} of {round.iterations}, "
                if round.iteration
                else ""
            )
            self._write(
                f"\nSeries {self.series_id(position)} ({number} of {len(positions)}"
                f" to label; {where}{round.labels_used} oracle labels used before). "
                f"Model's anomaly probability: {chance}.\n"
            )
            lines = text_plot(self.pool.series[position], width, self.height, reference)
            self._write("\n".join(lines) + "\n")
            if reference is not None:
                self._write("  * this series   . a labelled normal series\n")
            self.store.record(position, self._prompt())

    def _prompt(self) -> int:
        while True:
            self._write(PROMPT)
            line = self.input.readline()
            if not line:
                raise LabellingPaused(
                    f"the terminal closed; the {len(self.store)} labels given so far "
                    f"are in {self.store.path}. Run the same command again to go on"
                )
            answer = line.strip().lower()
            if answer in ("q", "quit"):
                raise LabellingPaused(
                    f"quit at the prompt; the {len(self.store)} labels given so far "
                    f"are in {self.store.path}. Run the same command again to go on"
                )
            label = parse_answer(answer)
            if label is not None:
                self._write(f"  -> {LABEL_NAMES[label]}\n")
                return label
            self._write(f"  {line.strip()!r} is no answer: type n, a, s or q.\n")

    def _write(self, text: str) -> None:
        self.output.write(text)
        self.output.flush()
