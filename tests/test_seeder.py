import numpy as np
import pytest

from plugins.seeder.threshold import ThresholdSeeder


def scores_with_outliers() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(10, 1, size=500), [30.0, 31.0, 40.0]])


def test_threshold_is_mean_plus_k_std():
    scores = scores_with_outliers()
    seed = ThresholdSeeder(k=3)(scores)
    assert seed.threshold == pytest.approx(scores.mean() + 3 * scores.std())


def test_threshold_seeder_labels_series_above_as_anomalies():
    scores = scores_with_outliers()
    seed = ThresholdSeeder(k=3)(scores)
    anomalies = set(seed.indices[seed.labels == 1].tolist())
    assert anomalies == set(np.flatnonzero(scores > seed.threshold).tolist())


def test_threshold_seeder_balances_labels():
    seed = ThresholdSeeder(k=3)(scores_with_outliers())
    assert (seed.labels == 1).sum() == (seed.labels == 0).sum()


def test_threshold_seeder_takes_normals_just_below():
    scores = scores_with_outliers()
    seed = ThresholdSeeder(k=3)(scores)
    normals = seed.indices[seed.labels == 0]
    below = scores[scores <= seed.threshold]
    assert sorted(scores[normals].tolist()) == sorted(np.sort(below)[-3:].tolist())


def test_threshold_seeder_rejects_no_series_above():
    with pytest.raises(ValueError, match="lower seeder.k"):
        ThresholdSeeder(k=3)(np.ones(50))


def test_threshold_seeder_rejects_negative_k():
    with pytest.raises(ValueError, match=r"seeder.k=-1"):
        ThresholdSeeder(k=-1)


def test_threshold_seeder_takes_all_below_when_too_few(caplog):
    # Seven of ten scores lie above the mean, so only three can be normal.
    scores = np.array([0.0, 0.0, 0.0] + [10.0] * 7)
    seed = ThresholdSeeder(k=0)(scores)
    assert (seed.labels == 1).sum() == 7
    assert sorted(seed.indices[seed.labels == 0].tolist()) == [0, 1, 2]
    assert "not balanced" in caplog.text
