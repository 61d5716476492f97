"""Files of a run: results.csv, summary.json and learning_curve.png.

Every file is written to a temporary name and renamed into place, so a reader
never sees half a file and a killed run keeps what it had written.
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
# Legend labels of the autoencoder's reference lines, by summary key.
REFERENCE_LABELS = {
    "initial_threshold": "autoencoder, initial threshold",
    "best_threshold": "autoencoder, best validation threshold",
    "best_on_test": "autoencoder, best test threshold (upper bound)",
}


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, mode) as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
    """Collect the rows and the summary of a run and keep them on disk.

    Args:
        run_dir: Directory of the run, usually Hydra's output directory.
    """

    def __init__(self, run_dir: str | Path, start_over: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if start_over:
            # Files of an earlier, unfinished run here must not mix with ours.
            for name in ("results.csv", "summary.json", "learning_curve.png"):
                (self.run_dir / name).unlink(missing_ok=True)
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {"completed": False}

    @property
    def results_path(self) -> Path:
        return self.run_dir / "results.csv"

    @property
    def summary_path(self) -> Path:
        return self.run_dir / "summary.json"

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        """Append the rows of one iteration and rewrite results.csv."""
        self.rows.extend(rows)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({key: _format(row[key]) for key in RESULT_COLUMNS})
        write_atomic(self.results_path, buffer.getvalue())

    def update_summary(self, **fields: Any) -> None:
        """Merge `fields` into the summary and rewrite summary.json."""
        self.summary.update(fields)
        text = json.dumps(_json_safe(self.summary), indent=2, sort_keys=False)
        write_atomic(self.summary_path, text + "\n")


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
