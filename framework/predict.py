"""Command line: score new series with the detector that a run saved.

    python -m framework.predict outputs/2024-05-01/12-00-00 beats.txt \\
        --output predictions.csv

Each series of each file gets one row in the output CSV with its anomaly
probability, predicted label and the encoder's anomaly score. docs/predict.md
describes the file formats and the columns.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from framework.detector import DetectorError, load_detector
from framework.outputs import write_atomic
from framework.series_files import SeriesFile, SeriesFileError, read_csv, read_ucr

log = logging.getLogger("framework.predict")

READERS = {"ucr": read_ucr, "csv": read_csv}
# File formats by suffix, for --format auto.
SUFFIXES = {".txt": "ucr", ".tsv": "ucr", ".csv": "csv"}
COLUMNS = ("file", "row", "class", "anomaly_probability", "label", "score")
# Exit status of a usage or input error, as argparse uses.
EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m framework.predict",
        description=(
            "Score series with the detector that a run saved: its encoder's "
            "anomaly score and its classifier's anomaly probability and label "
            "for every series, written to one CSV file."
        ),
        epilog=(
            "File formats: UCR text (.txt, .tsv) has one series per line, the "
            "class label first, then the values, separated by whitespace, tabs "
            "or commas; the label goes to the output column 'class'. CSV (.csv) "
            "has one series per row and a value in every column, below an "
            "optional header row of names. Every series must have the length "
            "the detector was trained on. See docs/predict.md."
        ),
    )
    parser.add_argument(
        "detector",
        type=Path,
        metavar="DETECTOR",
        help="the run directory, or its detector/ subdirectory",
    )
    parser.add_argument(
        "files",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="series files to score, in UCR text or CSV format",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        default=Path("predictions.csv"),
        help="CSV file to write, replaced if it exists (default: %(default)s)",
    )
    parser.add_argument(
        "--format",
        choices=("auto", *READERS),
        default="auto",
        help=(
            "format of every FILE; auto picks it by suffix: .txt and .tsv are "
            "UCR text, .csv is CSV (default: %(default)s)"
        ),
    )
    return parser


def file_format(path: Path, requested: str) -> str:
    """Return the format of `path`: `requested`, or the one its suffix implies."""
    if requested != "auto":
        return requested
    try:
        return SUFFIXES[path.suffix.lower()]
    except KeyError:
        known = ", ".join(SUFFIXES)
        raise SeriesFileError(
            f"{path}: the suffix {path.suffix or '(none)'!r} names no known "
            f"format ({known}); pass --format ucr or --format csv"
        ) from None


def prediction_rows(
    path: Path, parsed: SeriesFile, predictions: pd.DataFrame
) -> list[dict[str, Any]]:
    """Pair each series of one file with its prediction, as rows of the output."""
    # Only UCR text files carry a class label.
    classes: list[int | str] = [""] * len(parsed.line_numbers)
    if parsed.classes is not None:
        classes = [int(label) for label in parsed.classes]
    columns = zip(
        parsed.line_numbers,
        classes,
        predictions["anomaly_probability"],
        predictions["label"],
        predictions["score"],
        strict=True,
    )
    return [
        {
            "file": str(path),
            "row": int(line),
            "class": series_class,
            "anomaly_probability": f"{probability:.6f}",
            "label": int(label),
            "score": f"{score:.6g}",
        }
        for line, series_class, probability, label, score in columns
    ]


def score_files(
    detector_path: Path, files: Sequence[Path], requested: str = "auto"
) -> list[dict[str, Any]]:
    """Score every series of `files` with the detector at `detector_path`.

    Every file is read and checked before the first is scored, so a bad file
    stops the command before it spends time on the others.

    Returns:
        One row of the output per series, in the order of `files` and their
        lines.

    Raises:
        DetectorError: the detector is missing or cannot be loaded.
        SeriesFileError: a file is missing, empty or malformed.
    """
    formats = [file_format(path, requested) for path in files]
    detector = load_detector(detector_path)
    parsed = [
        (path, READERS[name](path, length=detector.length))
        for path, name in zip(files, formats, strict=True)
    ]

    rows: list[dict[str, Any]] = []
    for path, series_file in parsed:
        predictions = detector.predict(series_file.series)
        log.info(
            "%s: %d series, %d flagged as anomalies",
            path,
            len(predictions),
            int(predictions["label"].sum()),
        )
        rows.extend(prediction_rows(path, series_file, predictions))
    return rows


def write_predictions(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write `rows` to the CSV file `path` through a temporary file."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status, 2 for a bad detector or file."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    output = Path(arguments.output).resolve()
    if any(Path(file).resolve() == output for file in arguments.files):
        print(
            f"{parser.prog}: error: --output {arguments.output} is also an input "
            "file and would be overwritten; write the predictions elsewhere",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        rows = score_files(arguments.detector, arguments.files, arguments.format)
    except (DetectorError, SeriesFileError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_ERROR

    try:
        write_predictions(arguments.output, rows)
    except OSError as error:
        print(
            f"{parser.prog}: error: cannot write {arguments.output} ({error}); "
            "pass --output with a path in an existing, writable directory",
            file=sys.stderr,
        )
        return EXIT_ERROR
    log.info(
        "predictions of %d series written to %s; %d flagged as anomalies",
        len(rows),
        arguments.output,
        sum(row["label"] for row in rows),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
