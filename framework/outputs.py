"""Files of a run: results.csv, queries.csv, summary.json, learning_curve.png.

Every file is written to a temporary name and renamed into place, so a reader
never reads half a file and a killed run keeps what it had written. The files
that change at every iteration are flushed to the disk once, when the run
finishes or stops (`RunRecorder.make_durable`), not at every write.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from framework.evaluation import METRICS

RESULT_COLUMNS = ("iteration", "split", "labels_used", "n_labelled", *METRICS)
QUERY_COLUMNS = ("iteration", "pool_index", "series_id", "label")
# queries.csv as runs before the series_id column wrote it; still read.
OLD_QUERY_COLUMNS = ("iteration", "pool_index", "label")
RUN_FILES = ("results.csv", "queries.csv", "summary.json", "learning_curve.png")
# Legend labels of the autoencoder's reference lines, by summary key.
REFERENCE_LABELS = {
    "initial_threshold": "autoencoder, initial threshold",
    "best_threshold": "autoencoder, best validation threshold",
    "best_on_test": "autoencoder, best test threshold (upper bound)",
}


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# Read once at import: os.umask can only be read by setting it.
FILE_MODE = _file_mode()


def write_atomic(path: Path, data: str | bytes, sync: bool = True) -> None:
    """Write `data` to `path` through a temporary file and a rename.

    With `sync`, the data reaches the disk before the rename, so the file
    survives a crash of the machine too. Without it, the write is still
    atomic for readers and survives the end of the process. In a profiled
    sweep of light runs, the waits for the disk took a fifth of the run time.
    """
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp creates the file readable by its owner only; give it the
        # mode that open() would, so colleagues can read shared results.
        os.chmod(temporary, FILE_MODE)
        with os.fdopen(handle, mode) as file:
            file.write(data)
            file.flush()
            if sync:
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def sync_to_disk(*paths: Path) -> None:
    """Flush the files in `paths` that exist, and their folders, to the disk."""
    folders = []
    for path in paths:
        if path.exists():
            _fsync(path, os.O_RDONLY)
            if path.parent not in folders:
                folders.append(path.parent)
    for folder in folders:
        _fsync(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync(path: Path, flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunRecorder:
    """Collect the rows, queries and summary of a run and keep them on disk.

    Temporary files that a killed run left behind are deleted.

    Args:
        run_dir: Directory of the run, usually Hydra's output directory.
        start_over: Delete the files of an earlier run in `run_dir` first.
    """

    def __init__(self, run_dir: str | Path, start_over: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            for temporary in self.run_dir.glob(f".{name}.*"):
                temporary.unlink(missing_ok=True)
            if start_over:
                # Files of an earlier, unfinished run here must not mix with ours.
                (self.run_dir / name).unlink(missing_ok=True)
        self.rows: list[dict[str, Any]] = []
        self.queries: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {"completed": False}

    @property
    def results_path(self) -> Path:
        return self.run_dir / "results.csv"

    @property
    def queries_path(self) -> Path:
        return self.run_dir / "queries.csv"

    @property
    def summary_path(self) -> Path:
        return self.run_dir / "summary.json"

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        """Append the rows of one iteration and rewrite results.csv."""
        self.rows.extend(rows)
        write_atomic(
            self.results_path, _csv_text(RESULT_COLUMNS, self.rows), sync=False
        )

    def add_queries(
        self,
        iteration: int,
        positions: np.ndarray,
        labels: np.ndarray,
        series_ids: np.ndarray | None = None,
    ) -> None:
        """Append the oracle's labels of one iteration and rewrite queries.csv.

        `series_ids` names the series in the data source (`Split.ids`), as the
        label store of a person's answers does; None repeats the positions.
        """
        if series_ids is None:
            series_ids = positions
        for position, series_id, label in zip(
            positions, series_ids, labels, strict=True
        ):
            self.queries.append(
                {
                    "iteration": iteration,
                    "pool_index": int(position),
                    "series_id": int(series_id),
                    "label": int(label),
                }
            )
        write_atomic(
            self.queries_path, _csv_text(QUERY_COLUMNS, self.queries), sync=False
        )

    def update_summary(self, **fields: Any) -> None:
        """Merge `fields` into the summary and rewrite summary.json."""
        self.summary.update(fields)
        text = json.dumps(_json_safe(self.summary), indent=2, sort_keys=False)
        write_atomic(self.summary_path, text + "\n", sync=False)

    def make_durable(self) -> None:
        """Flush results.csv, queries.csv and summary.json to the disk.

        Called once when the run finishes or stops, because the writes of each
        iteration do not wait for the disk.
        """
        sync_to_disk(self.results_path, self.queries_path, self.summary_path)


def _csv_text(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _format(row[key]) for key in columns})
    return buffer.getvalue()


def format_row(row: dict[str, Any]) -> dict[str, Any]:
    """Return `row` of results.csv as the text that the file stores."""
    return {key: _format(row[key]) for key in RESULT_COLUMNS}


def read_results(path: Path) -> list[dict[str, Any]]:
    """Read results.csv back into rows with numbers, as `add_rows` took them.

    Raises:
        ValueError: the file has other columns or a field that is not a number.
    """
    rows = _read_csv(path, RESULT_COLUMNS)
    for number, row in enumerate(rows, start=2):
        try:
            for key in ("iteration", "labels_used", "n_labelled"):
                row[key] = int(row[key])
            for key in METRICS:
                row[key] = float(row[key]) if row[key] != "" else math.nan
        except ValueError as error:
            raise ValueError(f"{path}, line {number}: {error}") from None
    return rows


def read_queries(path: Path) -> list[dict[str, int]]:
    """Read queries.csv back into rows of whole numbers.

    A file without the series_id column, as older runs wrote it, gets the
    pool positions as series ids.

    Raises:
        ValueError: the file has other columns or a field that is not a number.
    """
    try:
        rows = _read_csv(path, QUERY_COLUMNS)
    except ValueError:
        rows = _read_csv(path, OLD_QUERY_COLUMNS)
        for row in rows:
            row["series_id"] = row["pool_index"]
    try:
        return [{key: int(row[key]) for key in QUERY_COLUMNS} for row in rows]
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != columns:
            raise ValueError(
                f"{path} has the columns {reader.fieldnames}, expected {list(columns)}"
            )
        return list(reader)


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6f}"
    return value


def plot_learning_curve(
    rows: list[dict[str, Any]],
    references: dict[str, dict[str, float]],
    path: Path,
    title: str,
) -> None:
    """Plot test F1 against oracle labels used, with the threshold references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test_rows = [row for row in rows if row["split"] == "test"]
    labels_used = [row["labels_used"] for row in test_rows]
    f1 = [row["f1"] for row in test_rows]

    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(labels_used, f1, marker="o", markersize=3, label="active learning")
    styles = {
        "initial_threshold": ("--", "tab:gray"),
        "best_threshold": ("-.", "tab:red"),
        "best_on_test": (":", "k"),
    }
    for key, (style, colour) in styles.items():
        if key in references:
            value = references[key]["test_f1"]
            label = REFERENCE_LABELS[key]
            axes.axhline(value, linestyle=style, color=colour, label=label)
    axes.set_xlabel("oracle labels used")
    axes.set_ylabel("test F1 of the anomaly class")
    axes.set_ylim(0, 1)
    axes.set_title(title, fontsize="medium")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    write_atomic(path, buffer.getvalue())
