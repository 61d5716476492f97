import numpy as np
import pytest

from framework.evaluation import (
    anomaly_metrics,
    best_f1_threshold,
    threshold_references,
)


def test_anomaly_metrics_treat_anomaly_as_positive():
    labels = np.array([0, 0, 0, 1, 1])
    predicted = np.array([0, 0, 1, 1, 0])
    metrics = anomaly_metrics(labels, predicted, predicted.astype(float))
    assert metrics["precision"] == pytest.approx(0.5)
    assert metrics["recall"] == pytest.approx(0.5)
    assert metrics["f1"] == pytest.approx(0.5)


def test_anomaly_metrics_areas_use_probability():
    labels = np.array([0, 0, 1, 1])
    metrics = anomaly_metrics(labels, np.zeros(4), np.array([0.1, 0.2, 0.8, 0.9]))
    assert metrics["auroc"] == pytest.approx(1.0)
    assert metrics["auprc"] == pytest.approx(1.0)


def test_best_f1_threshold_separates_perfectly():
    labels = np.array([0, 0, 0, 1, 1])
    threshold, f1 = best_f1_threshold(labels, np.array([1.0, 2.0, 3.0, 8.0, 9.0]))
    assert threshold == pytest.approx(8.0)
    assert f1 == pytest.approx(1.0)


def test_threshold_references_best_on_test_is_upper_bound():
    rng = np.random.default_rng(1)
    labels = (rng.random(400) < 0.1).astype(int)
    scores = rng.normal(size=400) + 1.5 * labels
    references = threshold_references(
        initial_threshold=2.0,
        validation=(labels[:200], scores[:200]),
        test=(labels[200:], scores[200:]),
    )
    upper = references["best_on_test"]["test_f1"]
    assert upper >= references["best_threshold"]["test_f1"]
    assert upper >= references["initial_threshold"]["test_f1"]


def test_threshold_references_initial_threshold_is_strict():
    labels = np.array([0, 0, 1, 1])
    scores = np.array([1.0, 2.0, 3.0, 4.0])
    references = threshold_references(3.0, (labels, scores), (labels, scores))
    # Only the score 4.0 lies strictly above 3.0, so recall is one half.
    assert references["initial_threshold"]["test_recall"] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(20))
def test_anomaly_metrics_match_scikit_learn(seed):
    from sklearn import metrics as sk

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    labels = (rng.random(n) < rng.uniform(0.05, 0.5)).astype(int)
    labels[:2] = [0, 1]
    # Rounded scores give ties, which both areas must handle as scikit-learn does.
    scores = np.round(rng.random(n) + 0.3 * labels, int(rng.integers(1, 4)))
    predicted = (rng.random(n) < 0.2).astype(int)
    ours = anomaly_metrics(labels, predicted, scores)
    expected = {
        "f1": sk.f1_score(labels, predicted, zero_division=0),
        "precision": sk.precision_score(labels, predicted, zero_division=0),
        "recall": sk.recall_score(labels, predicted, zero_division=0),
        "auroc": sk.roc_auc_score(labels, scores),
        "auprc": sk.average_precision_score(labels, scores),
    }
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name


def test_anomaly_metrics_without_predicted_anomalies():
    labels = np.array([0, 1, 0, 1])
    metrics = anomaly_metrics(labels, np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]))
    assert metrics["precision"] == 0.0
    assert metrics["f1"] == 0.0


def test_anomaly_metrics_one_class_has_no_areas():
    metrics = anomaly_metrics(np.zeros(3), np.zeros(3), np.array([0.1, 0.2, 0.3]))
    assert np.isnan(metrics["auroc"])
    assert np.isnan(metrics["auprc"])
