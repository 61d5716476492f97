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

    def collect(self) -> None:
        """Copy the answers filled in to the requests file into the store.

        Raises:
            ValueError: naming the file, line and value, for a label that is
                not anomaly, normal or skip, or a series not in the pool.
        """
        if not self.requests.exists():
            return
        with self.requests.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = {"series_id", "label"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(
                    f"{self.requests} has no {' or '.join(sorted(missing))} column; "
                    "keep the columns the run wrote and fill in only `label`"
                )
            answers = [
                (line, row)
                for line, row in enumerate(reader, start=2)
                if (row.get("label") or "").strip()
            ]
        added = 0
        for line, row in answers:
            where = f"{self.requests}, line {line}"
            text = row["label"].strip()
            label = parse_answer(text)
            if label is None:
                raise ValueError(
                    f"{where}: label {text!r} is not one of anomaly, normal or skip "
                    "(a, n, s or 1, 0 also work); correct it and run the same "
                    "command again"
                )
            try:
                position = self._position[int(row["series_id"])]
            except (KeyError, ValueError):
                raise ValueError(
                    f"{where}: series_id {row['series_id']!r} is no series of this "
                    "run's pool; the file belongs to another data set or seed. "
                    "Move it away and run the command again to get a new one"
                ) from None
            earlier = self.store.get(position)
            if earlier is None:
                self.store.record(position, label)
                added += 1
            elif earlier != label:
                log.warning(
                    "%s: series %s says %s, but the label store has %s from an "
                    "earlier answer, which the run already used; keeping %s",
                    where,
                    row["series_id"],
                    LABEL_NAMES[label],
                    LABEL_NAMES[earlier],
                    LABEL_NAMES[earlier],
                )
        if added:
            log.info(
                "%d answers copied from %s to the label store", added, self.requests
            )

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
