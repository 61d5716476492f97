"""Metrics of the anomaly class and the autoencoder's threshold reference lines."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

METRICS = ("f1", "precision", "recall", "auroc", "auprc")


def anomaly_metrics(
    labels: np.ndarray, predicted: np.ndarray, probability: np.ndarray
) -> dict[str, float]:
    """Return F1, precision, recall, AUROC and AUPRC with anomalies as positives.

    Args:
        labels: True labels, 1 for an anomaly.
        predicted: Predicted labels.
        probability: Predicted anomaly probability or score, used for the
            areas under the curves.
    """
    both_classes = len(np.unique(labels)) == 2
    return {
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "auroc": float(roc_auc_score(labels, probability)) if both_classes else np.nan,
        "auprc": float(average_precision_score(labels, probability))
        if both_classes
        else np.nan,
    }


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Return the score threshold with the highest F1 and that F1.

    A series is called an anomaly when its score is at least the threshold.
    """
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    # The last precision/recall pair has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall,
        denominator,
        out=np.zeros_like(denominator),
        where=denominator > 0,
    )
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def threshold_references(
    initial_threshold: float,
    validation: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
) -> dict[str, dict[str, float]]:
    """Compute the reference lines of Šabata and Holeňa (2020): the autoencoder
    used as a detector.

    Args:
        initial_threshold: Threshold of the seeder (mean + k·std of the pool).
        validation: (labels, scores) of the validation split.
        test: (labels, scores) of the test split.

    Returns:
        `initial_threshold`: the seeder's threshold applied to each split.
        `best_threshold`: the threshold with the best validation F1, applied
        to each split; this is the fair reference.
        `best_on_test`: the threshold with the best test F1; an upper bound
        that no method can reach without looking at the test labels.
    """
    splits = {"validation": validation, "test": test}

    def apply(threshold: float, at_least: bool) -> dict[str, float]:
        row: dict[str, float] = {"threshold": float(threshold)}
        for name, (labels, scores) in splits.items():
            predicted = scores >= threshold if at_least else scores > threshold
            metrics = anomaly_metrics(labels, predicted.astype(int), scores)
            row.update({f"{name}_{key}": value for key, value in metrics.items()})
        return row

    best_validation, _ = best_f1_threshold(*validation)
    best_test, _ = best_f1_threshold(*test)
    return {
        "initial_threshold": apply(initial_threshold, at_least=False),
        "best_threshold": apply(best_validation, at_least=True),
        "best_on_test": apply(best_test, at_least=True),
    }
