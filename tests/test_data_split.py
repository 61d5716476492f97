import numpy as np
import pytest

from framework.data import anomaly_labels, split_series

FRACTIONS = {"pool": 0.7, "validation": 0.15, "test": 0.15}


def synthetic(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = rng.choice([1, 2, 3, 4], size=n, p=[0.6, 0.3, 0.07, 0.03])
    return rng.normal(size=(n, 20)), classes


def test_anomaly_labels_mark_listed_classes():
    labels = anomaly_labels(np.array([1, 3, 2, 4, 3]), [3, 4])
    assert labels.tolist() == [0, 1, 0, 1, 1]


def test_anomaly_labels_reject_absent_class():
    with pytest.raises(ValueError, match=r"contains \[7\].*present are \[1, 2\]"):
        anomaly_labels(np.array([1, 2, 2]), [2, 7])


def test_anomaly_labels_reject_all_classes():
    with pytest.raises(ValueError, match="no series is normal"):
        anomaly_labels(np.array([1, 2, 2]), [1, 2])


def test_anomaly_labels_reject_empty_list():
    with pytest.raises(ValueError, match="empty"):
        anomaly_labels(np.array([1, 2]), [])


def test_split_sizes_and_stratification():
    series, classes = synthetic()
    splits = split_series(series, classes, [3, 4], FRACTIONS, seed=0)
    assert [len(s) for _, s in splits.items()] == [700, 150, 150]
    overall = np.isin(classes, [3, 4]).mean()
    for _, split in splits.items():
        assert abs(split.labels.mean() - overall) < 0.01


def test_split_is_a_partition():
    series, classes = synthetic()
    splits = split_series(series, classes, [3, 4], FRACTIONS, seed=0)
    rows = np.concatenate([s.series for _, s in splits.items()])
    assert len(np.unique(rows, axis=0)) == len(series)


def test_split_same_seed_same_split():
    series, classes = synthetic()
    first = split_series(series, classes, [3, 4], FRACTIONS, seed=5)
    second = split_series(series, classes, [3, 4], FRACTIONS, seed=5)
    assert np.array_equal(first.test.series, second.test.series)


def test_split_other_seed_other_split():
    series, classes = synthetic()
    first = split_series(series, classes, [3, 4], FRACTIONS, seed=5)
    second = split_series(series, classes, [3, 4], FRACTIONS, seed=6)
    assert not np.array_equal(first.test.series, second.test.series)


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ({"pool": 0.7, "validation": 0.2, "test": 0.2}, "add up to 1.1"),
        ({"pool": 0.7, "validation": 0.3}, "needs exactly"),
        ({"pool": 1.0, "validation": 0.0, "test": 0.0}, r"split.pool=1.0 is out"),
        ({"pool": "abc", "validation": 0.2, "test": 0.2}, "split.pool='abc' is inv"),
    ],
)
def test_split_rejects_bad_fractions(fractions, message):
    series, classes = synthetic(100)
    with pytest.raises(ValueError, match=message):
        split_series(series, classes, [3, 4], fractions, seed=0)


@pytest.mark.parametrize(
    ("anomaly_classes", "message"),
    [(3, "anomaly_classes=3 is invalid"), (["a"], "'a', which is not a whole")],
)
def test_anomaly_labels_reject_wrong_types(anomaly_classes, message):
    _, classes = synthetic(100)
    with pytest.raises(ValueError, match=message):
        anomaly_labels(classes, anomaly_classes)


def test_split_too_small_to_stratify_is_rejected():
    series, classes = synthetic(1000)
    fractions = {"pool": 0.849, "validation": 0.15, "test": 0.001}
    with pytest.raises(ValueError, match="cannot be stratified.*raise the smallest"):
        split_series(series, classes, [3, 4], fractions, seed=0)


def test_split_without_test_anomalies_is_rejected():
    series, classes = synthetic(1000)
    fractions = {"pool": 0.84, "validation": 0.15, "test": 0.01}
    with pytest.raises(ValueError, match="test split .* has no anomaly.*split.test"):
        split_series(series, classes, [4], fractions, seed=0)
