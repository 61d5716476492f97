"""Metrics of the anomaly class and the autoencoder's threshold reference lines."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import precision_recall_curve

METRICS = ("f1", "precision", "recall", "auroc", "auprc")


def anomaly_metrics(
    labels: np.ndarray, predicted: np.ndarray, probability: np.ndarray
) -> dict[str, float]:
    """Return F1, precision, recall, AUROC and AUPRC with anomalies as positives.

    The values equal scikit-learn's `f1_score`, `precision_score` and
    `recall_score` with `zero_division=0`, `roc_auc_score` and
    `average_precision_score`. They are computed here with numpy because
    scikit-learn's input validation took a quarter of an active-learning run
    with SVC and RENN.

    Args:
        labels: True labels, 1 for an anomaly.
        predicted: Predicted labels.
        probability: Predicted anomaly probability or score, used for the
            areas under the curves.
    """
    labels = np.asarray(labels) == 1
    predicted = np.asarray(predicted) == 1
    probability = np.asarray(probability, dtype=np.float64)
    true_positives = int(np.sum(labels & predicted))
    predicted_positives = int(np.sum(predicted))
    positives = int(np.sum(labels))
    precision = true_positives / predicted_positives if predicted_positives else 0.0
    recall = true_positives / positives if positives else 0.0
    denominator = predicted_positives + positives
    f1 = 2 * true_positives / denominator if denominator else 0.0
    both_classes = 0 < positives < len(labels)
    return {
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "auroc": _auroc(labels, probability) if both_classes else np.nan,
        "auprc": _average_precision(labels, probability) if both_classes else np.nan,
    }


def _auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    # Mann-Whitney U statistic over the positives, with tied scores sharing
    # their mean rank, divided by the number of positive-negative pairs.
    ranks = rankdata(scores)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    rank_sum = float(ranks[labels].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    # Sum over distinct thresholds, highest first, of precision times the
    # recall gained at that threshold.
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last_of_each_score = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(labels)[last_of_each_score]
    predicted_positives = last_of_each_score + 1
    precision = true_positives / predicted_positives
    recall = true_positives / true_positives[-1]
    recall_gain = np.diff(recall, prepend=0.0)
    return float(np.sum(recall_gain * precision))


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
