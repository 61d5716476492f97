"""Labelling offline: the run writes the series to label to a file and stops.

A person fills in the file's `label` column, later and anywhere, and runs
the same command again. The rerun copies the answers into the label store,
repeats the finished rounds with the labels the store holds, and stops again
at the next round that needs a person.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np

from framework.data import Split
from framework.interfaces import Round
from framework.labels import LABEL_NAMES, Annotator, LabellingPaused, parse_answer
from framework.outputs import write_atomic

log = logging.getLogger(__name__)

FIXED_COLUMNS = ("series_id", "label", "anomaly_probability", "round")


class FileOracle(Annotator):
    """Ask a person for labels through a CSV file.

    Args:
        pool: The pool split.
        store: Path of the label store (see `framework.labels`).
        requests: CSV file that lists the series of a round, one per row:
            series_id, an empty label column, the classifier's anomaly
            probability, the round and the values. A PNG of their plots is
            written next to it.
        references: Labelled normal series drawn behind each plot.
    """

    name = "file"

    def __init__(
        self,
        pool: Split,
        store: str | Path,
        requests: str | Path,
        references: int = 3,
    ) -> None:
        super().__init__(pool, store)
        self.requests = Path(requests).expanduser().absolute()
        self.picture = self.requests.with_suffix(".png")
        self.references = references
        self._position = {int(i): p for p, i in enumerate(pool.ids)}
        # Read the answers now, before the encoder trains, so that a mistake
        # in the file stops the run at once.
        self.collect()

    def collect(self) -> None:
        """Copy the answers filled in to the requests file into the store.

        Every row is checked before any answer is stored, so a file with a
        mistake adds nothing until it is corrected.

        Raises:
            ValueError: naming the file, line and value, for a label that is
                not anomaly, normal or skip, a series not in the pool, or a
                series_id that does not match the values of its row.
        """
        if not self.requests.exists():
            return
        answers = [
            (line, self._checked(line, row)) for line, row in self._filled_rows()
        ]
        added = 0
        for line, (position, label) in answers:
            earlier = self.store.get(position)
            if earlier is None:
                self.store.record(position, label)
                added += 1
            elif earlier != label:
                log.warning(
                    "%s, line %d: series %d says %s, but the label store has %s "
                    "from an earlier answer, which runs have used; keeping %s (to "
                    "correct it, see docs/annotating.md)",
                    self.requests,
                    line,
                    self.series_id(position),
                    LABEL_NAMES[label],
                    LABEL_NAMES[earlier],
                    LABEL_NAMES[earlier],
                )
        if added:
            log.info(
                "answers copied from %s to the label store: %d", self.requests, added
            )

    def _filled_rows(self) -> list[tuple[int, dict[str, str]]]:
        """Return (line, row) of every row with something in its label column."""
        with self.requests.open(newline="", encoding="utf-8-sig") as handle:
            text = handle.read()
        header = text.splitlines()[0] if text else ""
        # A spreadsheet may save the file with semicolons or tabs instead.
        delimiter = max(",;\t", key=header.count)
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        missing = {"series_id", "label"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"{self.requests} has no {' or '.join(sorted(missing))} column in "
                f"its header {header[:80]!r}; keep the columns the run wrote and "
                "fill in only `label`"
            )
        return [
            (line, row)
            for line, row in enumerate(reader, start=2)
            if (row.get("label") or "").strip()
        ]

    def _checked(self, line: int, row: dict[str, str]) -> tuple[int, int]:
        """Return the pool position and label of a filled-in row, or raise."""
        where = f"{self.requests}, line {line}"
        text = row["label"].strip()
        label = parse_answer(text)
        if label is None:
            raise ValueError(
                f"{where}: label {text!r} is not one of anomaly, normal or skip "
                "(a, n, s or 1, 0 also work); correct it and run the same command "
                "again. No answer of the file is used until then"
            )
        try:
            position = self._position[int(row["series_id"])]
        except (KeyError, ValueError, TypeError):
            raise ValueError(
                f"{where}: series_id {row['series_id']!r} is not found in this "
                "run's pool, so the file was written for another data set or seed, "
                "or the id was changed. Correct the id, or move the file away and "
                "run the command again to get a new one"
            ) from None
        series = self.pool.series[position]
        columns = [f"v{i}" for i in range(1, len(series) + 1)]
        if all(row.get(column) for column in columns):
            try:
                values = np.array([float(row[column]) for column in columns])
            except ValueError:
                values = None
            if values is None or not np.allclose(values, series, rtol=1e-4, atol=1e-4):
                raise ValueError(
                    f"{where}: the values v1 to v{len(series)} are not those of "
                    f"series {row['series_id']}, so its series_id or values were "
                    "changed; restore the row as the run wrote it"
                )
        return position, label

    def ask(self, positions: np.ndarray, round: Round) -> None:
        self.requests.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.requests, self._table(positions, round))
        self._draw(positions, round)
        where = f"round {round.iteration} of {round.iterations}"
        raise LabellingPaused(
            f"{len(positions)} series of {where} await labels in {self.requests} "
            f"(their plots are in {self.picture.name}); fill in the label column "
            "with anomaly, normal or skip, then run the same command again"
        )

    def _table(self, positions: np.ndarray, round: Round) -> str:
        length = self.pool.series.shape[1]
        columns = [*FIXED_COLUMNS, *(f"v{i}" for i in range(1, length + 1))]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for position in positions:
            probability = round.probability(position)
            writer.writerow(
                [
                    self.series_id(position),
                    "",
                    "" if np.isnan(probability) else f"{probability:.4f}",
                    round.iteration,
                    *(f"{value:.6g}" for value in self.pool.series[position]),
                ]
            )
        return buffer.getvalue()

    def _draw(self, positions: np.ndarray, round: Round) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        columns = min(len(positions), 3)
        rows = -(-len(positions) // columns)
        figure, axes = plt.subplots(
            rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False
        )
        normals = round.normals[: self.references]
        for axis, position in zip(axes.flat, positions, strict=False):
            for normal in normals:
                axis.plot(self.pool.series[normal], color="#9bb7a0", linewidth=1)
            axis.plot(self.pool.series[position], color="#1d2330", linewidth=1.6)
            probability = round.probability(position)
            chance = "" if np.isnan(probability) else f", model {probability:.0%}"
            axis.set_title(f"series {self.series_id(position)}{chance}", fontsize=9)
            axis.tick_params(labelsize=7)
        for axis in axes.flat[len(positions) :]:
            axis.set_visible(False)
        figure.suptitle(
            f"Round {round.iteration}: label each series in {self.requests.name} "
            "(green: labelled normal series)",
            fontsize=10,
        )
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
        write_atomic(self.picture, buffer.getvalue())
