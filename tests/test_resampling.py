"""Fallback when a resampler cannot run on the current labelled set."""

import numpy as np
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.under_sampling import CondensedNearestNeighbour, RandomUnderSampler
from sklearn.linear_model import LogisticRegression

from framework.loop import make_estimator, resampler_fallbacks
from framework.resampling import GuardedSampler, ResamplerError


def few_anomalies(n_anomalies: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.array([1] * n_anomalies + [0] * 40)
    return rng.normal(size=(len(labels), 4)) + labels[:, None], labels


class DropAnomalies:
    """A sampler that deletes the minority class, as RENN can."""

    def fit_resample(self, X, y):
        keep = y == 0
        return X[keep], y[keep]


def test_guard_returns_input_when_smote_lacks_neighbours():
    features, labels = few_anomalies(3)
    guard = GuardedSampler(SMOTE(k_neighbors=5, random_state=0))
    resampled, resampled_labels = guard.fit_resample(features, labels)
    assert resampled is features
    assert resampled_labels is labels
    assert guard.fallbacks == 1


def test_guard_catches_sampler_leaving_one_class():
    features, labels = few_anomalies()
    guard = GuardedSampler(DropAnomalies())
    _, resampled_labels = guard.fit_resample(features, labels)
    assert set(resampled_labels) == {0, 1}
    assert guard.fallbacks == 1


def test_guard_falls_back_when_cnn_sees_one_class():
    features, labels = few_anomalies(0)
    guard = GuardedSampler(CondensedNearestNeighbour(random_state=0))
    resampled, _ = guard.fit_resample(features, labels)
    assert resampled is features
    assert guard.fallbacks == 1


def test_guard_passes_working_sampler_through():
    features, labels = few_anomalies(10)
    guard = GuardedSampler(RandomUnderSampler(random_state=0))
    _, resampled_labels = guard.fit_resample(features, labels)
    assert np.bincount(resampled_labels).tolist() == [10, 10]
    assert guard.fallbacks == 0


def test_guard_raise_names_sampler_counts_and_switch():
    features, labels = few_anomalies(3)
    guard = GuardedSampler(SMOTE(k_neighbors=5), on_failure="raise")
    with pytest.raises(ResamplerError) as error:
        guard.fit_resample(features, labels)
    message = str(error.value)
    assert "SMOTE" in message
    assert "{0: 40, 1: 3}" in message
    assert "loop.on_resampler_failure=skip" in message


def test_guard_rejects_unknown_policy():
    with pytest.raises(ValueError, match="on_resampler_failure='ignore'"):
        GuardedSampler(SMOTE(), on_failure="ignore")


def test_pipeline_counts_fallbacks_across_fits():
    features, labels = few_anomalies(3)
    estimator = make_estimator(DropAnomalies(), LogisticRegression())
    estimator.fit(features, labels)
    estimator.fit(features, labels)
    assert resampler_fallbacks(estimator) == 2
    assert estimator.predict_proba(features).shape == (43, 2)


def test_pipeline_without_resampler_has_no_fallbacks():
    features, labels = few_anomalies(3)
    estimator = make_estimator(None, LogisticRegression()).fit(features, labels)
    assert resampler_fallbacks(estimator) == 0
