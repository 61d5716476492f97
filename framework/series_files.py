"""Series stored as text: the UCR archive's format and CSV.

A UCR text file has one series per line: the class label, then the values,
separated by whitespace or commas. A CSV file has one series per row and a
value in every column, optionally below a header row of column names.

Both readers return the 1-based line number of each series, so that a caller
can point at the line that a result or an error belongs to.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class SeriesFileError(ValueError):
    """A series file is missing, empty or malformed."""


@dataclass(frozen=True)
class SeriesFile:
    """Series read from one file.

    Attributes:
        series: Values, shape (n_series, length).
        classes: Class label of each series, or None for a CSV file.
        line_numbers: 1-based line of each series in the file.
    """

    series: np.ndarray
    classes: np.ndarray | None
    line_numbers: np.ndarray


def read_ucr(path: str | os.PathLike, length: int | None = None) -> SeriesFile:
    """Read a UCR text file: on each line a class label, then the values.

    Blank lines are skipped. Every other line must contain the same number of
    finite numbers, and the label must be a whole number.

    Args:
        path: The file.
        length: Values expected per series after the label; None accepts the
            length of the first series.

    Raises:
        SeriesFileError: naming the file, and the line and field at fault.
    """
    path = Path(path)
    rows, line_numbers = _read_rows(path, _ucr_rows)
    if len(rows[0]) < 2:
        raise SeriesFileError(
            f"{path}, line {line_numbers[0]}: a label and at least one sample "
            "are needed per line"
        )
    # The class label comes before the values on each line.
    fields = None if length is None else length + 1
    _check_lengths(path, rows, line_numbers, fields, has_label=True)
    values = _to_numbers(path, rows, line_numbers)

    labels = values[:, 0]
    if not np.array_equal(labels, np.round(labels)):
        row = int(np.flatnonzero(labels != np.round(labels))[0])
        raise SeriesFileError(
            f"{path}, line {line_numbers[row]}: class label {rows[row][0]!r} "
            "is not a whole number"
        )
    return SeriesFile(values[:, 1:], labels.astype(int), np.array(line_numbers))


def read_csv(path: str | os.PathLike, length: int | None = None) -> SeriesFile:
    """Read a CSV file with one series per row and a value in every column.

    Blank lines are skipped. A first row in which no field is a number is a
    header and is skipped too.

    NOTE: a header of numbers, such as the column names 0, 1, 2, ... that
    pandas writes by default, looks like a series and is read as one.

    Args:
        path: The file.
        length: Values expected per series; None accepts the length of the
            first series.

    Raises:
        SeriesFileError: naming the file, and the line and field at fault.
    """
    path = Path(path)
    rows, line_numbers = _read_rows(path, _csv_rows)
    if not any(_is_number(field) for field in rows[0]):
        rows, line_numbers = rows[1:], line_numbers[1:]
        if not rows:
            raise SeriesFileError(
                f"{path} contains no series, only the header row; add one series "
                "per row below it"
            )
    _check_lengths(path, rows, line_numbers, length, has_label=False)
    values = _to_numbers(path, rows, line_numbers)
    return SeriesFile(values, None, np.array(line_numbers))


def _ucr_rows(path: Path) -> list[tuple[int, list[str]]]:
    rows = []
    with path.open(encoding="ascii", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.replace(",", " ").split()
            if fields:
                rows.append((number, fields))
    return rows


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    rows = []
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        for record in reader:
            fields = [field.strip() for field in record]
            if any(fields):
                # For a record that spans lines (a quoted line break), the
                # number of its last line.
                rows.append((reader.line_num, fields))
    return rows


def _read_rows(
    path: Path, split: Callable[[Path], list[tuple[int, list[str]]]]
) -> tuple[list[list[str]], list[int]]:
    """Return the fields and the line number of each non-blank row."""
    if not path.is_file():
        raise SeriesFileError(f"{path} does not exist or is not a file")
    numbered = split(path)
    if not numbered:
        raise SeriesFileError(f"{path} is empty: it contains no series")
    line_numbers = [number for number, _ in numbered]
    rows = [fields for _, fields in numbered]
    return rows, line_numbers


def _check_lengths(
    path: Path,
    rows: list[list[str]],
    line_numbers: list[int],
    expected: int | None,
    has_label: bool,
) -> None:
    """Raise for the first row with another number of fields than `expected`.

    When `expected` is None, every row must have as many fields as the first.
    """
    reference = len(rows[0]) if expected is None else expected
    for fields, number in zip(rows, line_numbers, strict=True):
        if len(fields) == reference:
            continue
        if expected is None:
            raise SeriesFileError(
                f"{path}, line {number}: {len(fields)} fields where line "
                f"{line_numbers[0]} has {reference}; every series of a file must "
                "have the same length"
            )
        offset = 1 if has_label else 0
        after = " after the class label" if has_label else ""
        length = expected - offset
        hint = f"crop or resample every series to {length} values"
        if len(fields) == expected + 1 and not has_label:
            # pandas' to_csv writes the row index as a first column.
            hint = (
                "if the first column is a row number, as pandas' to_csv writes "
                "by default, write the file with index=False or delete that "
                f"column; else {hint}"
            )
        raise SeriesFileError(
            f"{path}, line {number}: a series of {len(fields) - offset} values"
            f"{after}, expected {length}; {hint}"
        )


def _to_numbers(
    path: Path, rows: list[list[str]], line_numbers: list[int]
) -> np.ndarray:
    """Convert equally long rows of fields to floats, rejecting any non-finite."""
    try:
        values = np.array(rows, dtype=float)
    except ValueError:
        raise _non_number_error(path, rows, line_numbers) from None

    bad = ~np.isfinite(values)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise SeriesFileError(
            f"{path}, line {line_numbers[row]}, field {column + 1}: "
            f"{rows[row][column]!r} is not a finite number; fill in or drop "
            "missing values before using the file"
        )
    return values


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _non_number_error(
    path: Path, rows: list[list[str]], line_numbers: list[int]
) -> SeriesFileError:
    for fields, number in zip(rows, line_numbers, strict=True):
        for column, field in enumerate(fields, start=1):
            if field == "":
                return SeriesFileError(
                    f"{path}, line {number}, field {column} is empty; fill in or "
                    "drop missing values before using the file"
                )
            if not _is_number(field):
                return SeriesFileError(
                    f"{path}, line {number}, field {column}: {field!r} is not a "
                    "number; correct the value or delete the line"
                )
    raise AssertionError("numpy rejected a row that float() accepts")
