"""A nearest-centroid classifier that gives class probabilities."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data


class SoftNearestCentroid(ClassifierMixin, BaseEstimator):
    """Assign each series to the class with the closest mean code.

    Probabilities are a softmax of the negative distances to the class means,
    divided by `temperature`; a small temperature gives confident probabilities.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def fit(self, X, y):
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature} must be > 0")
        X, y = validate_data(self, X, y)
        self.classes_ = np.unique(y)
        self.centroids_ = np.stack(
            [X[y == label].mean(axis=0) for label in self.classes_]
        )
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        distances = np.linalg.norm(X[:, None, :] - self.centroids_[None], axis=2)
        logits = -distances / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
