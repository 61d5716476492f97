"""An annotator's answers, kept on disk from the moment they are given.

A person's labels cost far more than a run, so the human oracles (`web`,
`cli`, `file`) write every answer to a label store before the loop sees it.
The store is a CSV file outside the run directory, one line per answer:

    series_id,label,fingerprint,answered_at,oracle
    1234,1,3f9a0c51d2e87b64,2026-12-04T21:03:11Z,web

`series_id` is the series' row in the data source (`Split.ids`), so a label
holds for every split seed and every classifier. `label` is 1 (anomaly), 0
(normal) or -1 (skipped: the annotator could not tell). `fingerprint` is a
hash of the series' values, which catches a store used with other data. A
later line for the same series replaces an earlier one.

Before asking, an oracle looks the series up in the store, so a run that
stopped and started again asks for no label twice.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from framework.data import Split
from framework.interfaces import Round

log = logging.getLogger(__name__)

ANOMALY, NORMAL, SKIP = 1, 0, -1
LABEL_NAMES = {ANOMALY: "anomaly", NORMAL: "normal", SKIP: "skip"}
COLUMNS = ("series_id", "label", "fingerprint", "answered_at", "oracle")
# Accepted spellings of each label, lower case.
ANSWERS = {
    "anomaly": ANOMALY,
    "a": ANOMALY,
    "1": ANOMALY,
    "normal": NORMAL,
    "n": NORMAL,
    "0": NORMAL,
    "skip": SKIP,
    "s": SKIP,
    "-1": SKIP,
}


def parse_answer(text: str) -> int | None:
    """Return the label that `text` stands for, or None when it is none."""
    return ANSWERS.get(text.strip().lower())


def fingerprint(values: np.ndarray) -> str:
    """Hash of a series' values; equal values give equal hashes on any machine."""
    data = np.ascontiguousarray(values, dtype="<f8").tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


class LabelStore:
    """Labels of the pool's series, read from and appended to a CSV file.

    Args:
        path: The store's file; it and its directory are created when missing.
        pool: The pool split, whose `ids` name its series in the file.
        oracle: Name written in the `oracle` column of new answers.

    Raises:
        ValueError: a line of the file is not an answer, or names a pool
            series whose values differ from those it was labelled with.
    """

    def __init__(self, path: str | Path, pool: Split, oracle: str) -> None:
        self.path = Path(path).expanduser().absolute()
        self.oracle = oracle
        self._pool = pool
        self._position = {int(i): p for p, i in enumerate(pool.ids)}
        self._labels: dict[int, int] = {}
        self._read_up_to = 0
        self._lines = 0
        if self.path.exists() and self.path.stat().st_size:
            self.refresh()
            log.info(
                "label store %s: %d of the pool's series labelled before",
                self.path,
                len(self._labels),
            )
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _append(self.path, ",".join(COLUMNS) + "\n")
            self._read_up_to = self.path.stat().st_size
            self._lines = 1
            log.info("label store %s created", self.path)

    def __len__(self) -> int:
        return len(self._labels)

    def get(self, position: int) -> int | None:
        """Return the stored label of the pool series at `position`, or None."""
        return self._labels.get(int(position))

    def record(self, position: int, label: int) -> None:
        """Write the answer for the pool series at `position` to disk, then keep it.

        Raises:
            ValueError: `label` is not 1, 0 or -1.
        """
        if label not in LABEL_NAMES:
            raise ValueError(
                f"label {label!r} is not 1 (anomaly), 0 (normal) or -1 (skip)"
            )
        position = int(position)
        series_id = int(self._pool.ids[position])
        when = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        values = (series_id, label, self._fingerprint(position), when, self.oracle)
        _append(self.path, ",".join(str(value) for value in values) + "\n")
        self.refresh()

    def refresh(self) -> None:
        """Read the answers that were added to the file since the last read.

        Another run labelling the same data may append to the file too; its
        answers are taken over as well.
        """
        with self.path.open("rb") as handle:
            handle.seek(self._read_up_to)
            data = handle.read()
        if not data:
            return
        complete = data[: data.rfind(b"\n") + 1]
        # A line without its end is still being written, or was left by a
        # killed process; it is read once `_append` has ended it.
        for raw in complete.decode("utf-8").splitlines():
            self._lines += 1
            if self._lines == 1:
                if raw.strip() != ",".join(COLUMNS):
                    raise ValueError(
                        f"{self.path} starts with {raw.strip()!r}, not with the "
                        f"header {','.join(COLUMNS)!r} of a label store; point "
                        "oracle.store at another file"
                    )
                continue
            self._parse(raw)
        self._read_up_to += len(complete)

    def _parse(self, raw: str) -> None:
        if not raw.strip():
            return
        fields = next(csv.reader([raw]), [])
        where = f"{self.path}, line {self._lines}"
        try:
            series_id, label = int(fields[0]), int(fields[1])
            complete = len(fields) == len(COLUMNS) and label in LABEL_NAMES
        except (IndexError, ValueError):
            complete = False
        if not complete:
            # An answer that was never acknowledged, such as the part line of a
            # process killed while writing; the series will be asked again.
            log.warning(
                "%s is not an answer (series_id,label,fingerprint,answered_at,"
                "oracle with label 1, 0 or -1); it is left out",
                where,
            )
            return
        position = self._position.get(series_id)
        if position is None:
            # A series outside this pool, labelled in a run with another split.
            return
        if fields[2] != self._fingerprint(position):
            raise ValueError(
                f"{where}: series {series_id} was labelled with other values than "
                "this data set's series of that number, so the store belongs to "
                "other data; point oracle.store at another file"
            )
        self._labels[position] = label

    def _fingerprint(self, position: int) -> str:
        return fingerprint(self._pool.series[position])


def _append(path: Path, text: str) -> None:
    """Append `text` on a line of its own and wait until it is on disk."""
    with path.open("ab+") as handle:
        if handle.tell():
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                # The end of a line that a killed process left unfinished.
                text = "\n" + text
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


class LabellingPaused(Exception):
    """The run stopped to wait for an annotator's labels.

    The message says where the labels are awaited. Running the same command
    again continues the run; the labels given so far are in the store.
    """


class Annotator(ABC):
    """Base of the oracles that ask a person, through a `LabelStore`.

    Each call takes what the store already knows and asks for the rest with
    `ask`, which must record every answer in `self.store` as it is given.

    Args:
        pool: The pool split.
        store: Path of the label store.
    """

    name = "annotator"

    def __init__(self, pool: Split, store: str | Path) -> None:
        self.pool = pool
        self.store = LabelStore(store, pool, oracle=self.name)

    def __call__(self, indices: np.ndarray, round: Round | None = None) -> np.ndarray:
        indices = np.asarray(indices).reshape(-1)
        round = round or Round.unknown(indices)
        self.collect()
        self.store.refresh()
        missing = np.array([p for p in indices if self.store.get(p) is None], int)
        known = len(indices) - len(missing)
        if known:
            log.info(
                "iteration %d: %d of %d labels taken from the label store %s",
                round.iteration,
                known,
                len(indices),
                self.store.path,
            )
        if len(missing):
            self.ask(missing, round)
        labels = [self.store.get(p) for p in indices]
        unanswered = [
            int(p) for p, label in zip(indices, labels, strict=True) if label is None
        ]
        if unanswered:
            raise RuntimeError(
                f"{type(self).__qualname__}.ask returned without answers for the "
                f"pool positions {unanswered}"
            )
        return np.array(labels, dtype=int)

    def collect(self) -> None:
        """Take in answers given outside `ask`, before the store is read."""
        return None

    @abstractmethod
    def ask(self, positions: np.ndarray, round: Round) -> None:
        """Ask the person for the labels of the pool series at `positions`."""

    def close(self) -> None:
        """Release what the oracle holds open, such as a server."""
        return None

    def series_id(self, position: int) -> int:
        return int(self.pool.ids[position])
