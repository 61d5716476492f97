"""Anomaly labels and the pool/validation/test split shared by every data source.

A data source plugin only returns series and their class labels. This module
turns the classes into binary anomaly labels and splits the series, so that
every source is evaluated under the same protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

log = logging.getLogger(__name__)

SPLIT_NAMES = ("pool", "validation", "test")


@dataclass(frozen=True)
class Split:
    """Series of one split with their original classes and binary labels.

    Attributes:
        series: Values, shape (n_series, length).
        classes: Class label of each series in the source data set.
        labels: 1 for an anomaly, 0 for a normal series.
        ids: Row of each series in the data source (for UCR data, the TRAIN
            file's rows, then the TEST file's). It names a series whatever the
            split, so an annotator's labels hold for every seed. None numbers
            the series of the split from 0.
    """

    series: np.ndarray
    classes: np.ndarray
    labels: np.ndarray
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.ids is None:
            object.__setattr__(self, "ids", np.arange(len(self.series)))

    def __len__(self) -> int:
        return len(self.series)

    @property
    def n_anomalies(self) -> int:
        return int(self.labels.sum())


@dataclass(frozen=True)
class Splits:
    """The pool the learner queries from, and the held-out splits."""

    pool: Split
    validation: Split
    test: Split

    def items(self) -> list[tuple[str, Split]]:
        return [(name, getattr(self, name)) for name in SPLIT_NAMES]


def anomaly_labels(classes: np.ndarray, anomaly_classes: Sequence[int]) -> np.ndarray:
    """Label each series 1 when its class is one of `anomaly_classes`, else 0.

    Raises:
        ValueError: when `anomaly_classes` is empty, names a class that the data
            does not contain, or covers every class in the data.
    """
    present = set(np.unique(classes).tolist())
    requested = _class_list(anomaly_classes)
    if not requested:
        raise ValueError(
            "data.anomaly_classes is empty; list the classes that count as "
            f"anomalies, chosen from {sorted(present)}"
        )
    missing = sorted(set(requested) - present)
    if missing:
        raise ValueError(
            f"data.anomaly_classes contains {missing}, which the data does not "
            f"contain; the classes present are {sorted(present)}"
        )
    if present <= set(requested):
        raise ValueError(
            f"data.anomaly_classes={sorted(requested)} covers every class in the "
            "data, so no series is normal; leave at least one class out"
        )
    return np.isin(classes, requested).astype(np.int64)


def _class_list(anomaly_classes: Any) -> list[int]:
    if isinstance(anomaly_classes, (str, bytes)) or not isinstance(
        anomaly_classes, Iterable
    ):
        raise ValueError(
            f"data.anomaly_classes={anomaly_classes!r} is invalid: it must be a "
            "list of class labels, for example [3,4,5]"
        )
    requested = []
    for value in anomaly_classes:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not number.is_integer():
            raise ValueError(
                f"data.anomaly_classes contains {value!r}, which is not a whole "
                "number; list the integer class labels of the data"
            )
        requested.append(int(number))
    return requested


def split_series(
    series: np.ndarray,
    classes: np.ndarray,
    anomaly_classes: Sequence[int],
    fractions: dict[str, float],
    seed: int,
) -> Splits:
    """Split series into pool, validation and test, stratified by anomaly label.

    Args:
        series: All series, shape (n_series, length).
        classes: Class label of each series.
        anomaly_classes: Classes labelled as anomalies.
        fractions: Share of the series for each of "pool", "validation" and
            "test"; the shares must add up to 1.
        seed: Seed of the shuffle, so one seed always gives the same split.
    """
    shares = _check_fractions(fractions)
    labels = anomaly_labels(classes, anomaly_classes)
    indices = np.arange(len(series))

    held_out = shares["validation"] + shares["test"]
    try:
        pool_idx, rest_idx = train_test_split(
            indices, test_size=held_out, stratify=labels, random_state=seed
        )
        validation_idx, test_idx = train_test_split(
            rest_idx,
            test_size=shares["test"] / held_out,
            stratify=labels[rest_idx],
            random_state=seed,
        )
    except ValueError as error:
        raise ValueError(
            f"data.split={shares} cannot be stratified over {len(series)} series "
            f"with {int(labels.sum())} anomalies ({error}); raise the smallest "
            "share"
        ) from error

    def take(idx: np.ndarray) -> Split:
        idx = np.sort(idx)
        return Split(series[idx], classes[idx], labels[idx], ids=idx)

    splits = Splits(take(pool_idx), take(validation_idx), take(test_idx))
    for name, split in splits.items():
        if split.n_anomalies == 0 or split.n_anomalies == len(split):
            kind = "no anomaly" if split.n_anomalies == 0 else "only anomalies"
            raise ValueError(
                f"the {name} split ({len(split)} series) has {kind}, so F1 and the "
                f"areas under the curves are undefined there; raise "
                f"data.split.{name}={shares[name]:g}"
            )
        log.info(
            "%s split: %d series, %d anomalies (%.1f%%)",
            name,
            len(split),
            split.n_anomalies,
            100 * split.n_anomalies / len(split),
        )
    return splits


def _check_fractions(fractions: dict[str, float]) -> dict[str, float]:
    keys = set(fractions)
    if keys != set(SPLIT_NAMES):
        raise ValueError(
            f"data.split has keys {sorted(keys)}; it needs exactly {list(SPLIT_NAMES)}"
        )
    shares = {}
    for name in SPLIT_NAMES:
        try:
            shares[name] = float(fractions[name])
        except (TypeError, ValueError):
            raise ValueError(
                f"data.split.{name}={fractions[name]!r} is invalid: it must be a "
                "number greater than 0 and less than 1"
            ) from None
    for name, share in shares.items():
        if not 0 < share < 1:
            raise ValueError(
                f"data.split.{name}={share} is out of range: each share must be "
                "greater than 0 and less than 1"
            )
    total = sum(shares.values())
    if not np.isclose(total, 1.0):
        raise ValueError(
            f"data.split shares add up to {total:g}, not 1: {shares}; adjust "
            "them, for example pool=0.7 validation=0.15 test=0.15"
        )
    return shares
