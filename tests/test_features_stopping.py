"""The classifier's feature sets and the rules that stop the loop early."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from small_run import TINY_ENCODER, compose_config

from framework.detector import load_detector
from framework.encoder import reconstruction_profiles
from framework.evaluation import anomaly_metrics
from framework.experiment import load_splits, run
from framework.features import Features, segment_means
from framework.interfaces import Seed
from framework.loop import ActiveLearningLoop, Stopping, make_estimator
from plugins.encoder.lstm_ae import LSTMAutoencoder

SMALL = [
    "+experiment=ecg5000",
    "logger=none",
    "threads=1",
    "plot=false",
    *TINY_ENCODER,
    "loop.iterations=3",
    "loop.n_instances=5",
]


def small_config(*overrides: str):
    return compose_config(*SMALL, *overrides)


def test_segment_means_average_each_stretch():
    profiles = np.arange(12, dtype=float).reshape(2, 6)
    assert segment_means(profiles, 3).tolist() == [[0.5, 2.5, 4.5], [6.5, 8.5, 10.5]]
    assert segment_means(profiles, 1).tolist() == [[2.5], [8.5]]
    with pytest.raises(ValueError, match="profile_segments=7 is more than the 6"):
        segment_means(profiles, 7)


def test_added_columns_are_standardised_on_the_pool():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(50, 4))
    scores = rng.gamma(2.0, 30.0, size=50)
    profiles = rng.gamma(2.0, 1.0, size=(50, 20))
    features = Features(score=True, profile_segments=5).fit(codes, scores, profiles)

    pool = features.transform(codes, scores, profiles)
    assert pool.shape == (50, 4 + 1 + 5)
    np.testing.assert_array_equal(pool[:, :4], codes)
    np.testing.assert_allclose(pool[:, 4:].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(pool[:, 4:].std(axis=0), 1)
    # New series are scaled with the pool's statistics, not their own.
    again = Features.from_state(json.loads(json.dumps(features.state())))
    other = again.transform(codes[:3], scores[:3] + 100, profiles[:3])
    assert np.all(other[:, 4] > pool[:3, 4])


def test_code_features_are_the_code():
    codes = np.ones((3, 2))
    features = Features().fit(codes, np.zeros(3), None)
    np.testing.assert_array_equal(features.transform(codes, np.zeros(3), None), codes)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"score": "yes"}, "features.score='yes' must be true or false"),
        ({"profile_segments": -1}, "profile_segments=-1 is invalid"),
        ({"profile_segments": 2.5}, "profile_segments=2.5 is invalid"),
    ],
)
def test_bad_feature_settings_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        Features(**settings)


def test_profiles_sum_to_the_anomaly_score(data_root):
    torch.manual_seed(0)
    module = LSTMAutoencoder(hidden_sizes=[8, 4])
    series = np.loadtxt(data_root / "ECG5000" / "ECG5000_TRAIN.txt", max_rows=20)[:, 1:]
    profiles = reconstruction_profiles(module, series)
    assert profiles.shape == (20, 140)
    with torch.no_grad():
        scores = module.score(torch.as_tensor(series, dtype=torch.float32)[..., None])
    np.testing.assert_allclose(profiles.sum(axis=1), scores.numpy(), rtol=1e-4)


@pytest.mark.parametrize("features", ["code_score", "code_profile"])
def test_detector_repeats_the_run_with_added_features(tmp_path, data_env, features):
    summary = run(small_config(f"features={features}"), tmp_path)
    assert summary["completed"]

    detector = load_detector(tmp_path)
    added = 1 if features == "code_score" else 10
    assert detector.features.state()["score"] == (features == "code_score")
    splits = load_splits(small_config())
    predicted = detector.predict(splits.test.series)
    metrics = anomaly_metrics(
        splits.test.labels,
        predicted["label"].to_numpy(),
        predicted["anomaly_probability"].to_numpy(),
    )
    last = pd.read_csv(tmp_path / "results.csv").iloc[-1]
    assert last["split"] == "test"
    for key in ("f1", "auroc"):
        assert metrics[key] == pytest.approx(last[key], abs=1e-6)
    n_features = detector.estimator.named_steps["classifier"].n_features_in_
    assert n_features == 4 + added


def separable_loop(
    stopping: Stopping, iterations: int = 10
) -> tuple[ActiveLearningLoop, Seed]:
    """A loop on 200 points that a line separates, seeded with 3 of each class."""
    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 2))
    truth = (features[:, 0] > 1).astype(int)

    def oracle(indices):
        return truth[indices]

    def least_sure(classifier, X_pool, n_instances=1):
        probability = classifier.predict_proba(X_pool)[:, 1]
        return np.argsort(np.abs(probability - 0.5), kind="stable")[:n_instances]

    estimator = make_estimator(None, LogisticRegression())
    loop = ActiveLearningLoop(
        estimator, least_sure, oracle, features, iterations, 4, stopping
    )
    seeded = np.r_[np.flatnonzero(truth)[:3], np.flatnonzero(truth == 0)[:3]]
    return loop, Seed(seeded, truth[seeded])


def test_label_budget_cuts_the_last_round():
    loop, seed = separable_loop(Stopping(label_budget=10))
    steps = list(loop.run(seed))
    assert [len(step.queried) for step in steps[1:]] == [4, 4, 2]
    assert steps[-1].labels_used == 10
    assert loop.stopped_by == "label_budget"
    assert loop.stop_reason == "label budget of 10 spent after iteration 3"


def test_stable_predictions_end_the_loop():
    loop, seed = separable_loop(Stopping(stable_rounds=2, stable_tolerance=0.01))
    steps = list(loop.run(seed))
    assert loop.stopped_by == "stable_predictions"
    assert len(steps) - 1 < 10
    assert "unchanged for 2 rounds after iteration" in loop.stop_reason


def test_iterations_end_the_loop_without_other_rules():
    loop, seed = separable_loop(Stopping(), iterations=3)
    assert len(list(loop.run(seed))) == 4
    assert loop.stopped_by == "iterations"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"label_budget": 0}, "loop.label_budget=0 is invalid: it must be at least 1"),
        ({"stable_rounds": 1.5}, "loop.stable_rounds=1.5 is invalid"),
        ({"stable_tolerance": 1.0}, "loop.stable_tolerance=1.0 is invalid"),
        ({"stable_tolerance": "low"}, "loop.stable_tolerance='low' is invalid"),
    ],
)
def test_bad_stopping_settings_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        Stopping(**settings)


def test_summary_names_the_rule_that_stopped(tmp_path, data_env):
    summary = run(small_config("loop.iterations=5", "loop.label_budget=12"), tmp_path)
    assert summary["stopped_by"] == "label_budget"
    assert summary["stop_reason"] == "label budget of 12 spent after iteration 3"
    assert summary["final"]["labels_used"] == 12
    rows = pd.read_csv(tmp_path / "results.csv")
    assert rows["labels_used"].max() == 12
