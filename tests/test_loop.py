import functools

import numpy as np
import pytest
from modAL.uncertainty import margin_sampling
from sklearn.naive_bayes import GaussianNB
from sklearn.svm import SVC

from framework.data import Split
from framework.interfaces import (
    Seed,
    check_classifier,
    check_query_config,
    check_query_strategy,
)
from framework.loop import ActiveLearningLoop, make_estimator, query_indices
from plugins.oracle.simulated import SimulatedOracle
from plugins.query.random import RandomSampling


def blobs(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.1).astype(int)
    features = rng.normal(size=(n, 4)) + 2.0 * labels[:, None]
    return features, labels


def seed_set(labels: np.ndarray) -> Seed:
    anomalies = np.flatnonzero(labels == 1)[:5]
    normals = np.flatnonzero(labels == 0)[:5]
    indices = np.concatenate([anomalies, normals])
    return Seed(indices, labels[indices], threshold=None)


def make_loop(features, labels, iterations=3, n_instances=10, strategy=None):
    pool = Split(features, labels, labels)
    return ActiveLearningLoop(
        estimator=make_estimator(None, GaussianNB()),
        query_strategy=strategy or margin_sampling,
        oracle=SimulatedOracle(pool=pool),
        features=features,
        iterations=iterations,
        n_instances=n_instances,
    )


def test_loop_counts_oracle_labels_only():
    features, labels = blobs()
    steps = list(make_loop(features, labels).run(seed_set(labels)))
    assert [s.labels_used for s in steps] == [0, 10, 20, 30]
    assert [s.n_labelled for s in steps] == [10, 20, 30, 40]


def test_loop_never_queries_a_series_twice():
    features, labels = blobs()
    seed = seed_set(labels)
    steps = list(make_loop(features, labels, iterations=5).run(seed))
    queried = np.concatenate([s.queried for s in steps] + [seed.indices])
    assert len(np.unique(queried)) == len(queried)


def test_loop_teaches_oracle_labels():
    features, labels = blobs()
    steps = list(make_loop(features, labels, iterations=1).run(seed_set(labels)))
    learner = steps[-1].learner
    assert np.array_equal(learner.y_training[-10:], labels[steps[-1].queried])


def test_loop_stops_when_pool_runs_out():
    features, labels = blobs(n=40)
    loop = make_loop(features, labels, iterations=10, n_instances=8)
    steps = list(loop.run(seed_set(labels)))
    assert steps[-1].labels_used == 30
    assert loop.stop_reason == "pool exhausted after iteration 4"


def test_loop_completes_all_iterations():
    features, labels = blobs()
    loop = make_loop(features, labels, iterations=2)
    list(loop.run(seed_set(labels)))
    assert loop.stop_reason == "completed 2 iterations"


def test_loop_rejects_zero_batch():
    features, labels = blobs()
    with pytest.raises(ValueError, match=r"loop.n_instances=0"):
        make_loop(features, labels, n_instances=0)


def test_loop_rejects_negative_iterations():
    features, labels = blobs()
    with pytest.raises(ValueError, match=r"loop.iterations=-1"):
        make_loop(features, labels, iterations=-1)


def test_margin_sampling_picks_smallest_margin():
    features, labels = blobs()
    loop = make_loop(features, labels, iterations=1, n_instances=5)
    steps = loop.run(seed_set(labels))
    learner = next(steps).learner
    probability = learner.predict_proba(features)
    margin = np.abs(probability[:, 1] - probability[:, 0])
    picked = query_indices(margin_sampling, learner, features, 5)
    assert set(picked.tolist()) == set(np.argsort(margin)[:5].tolist())


def test_query_indices_accepts_bare_indices():
    def first_two(classifier, X_pool, n_instances=1):
        return np.arange(n_instances)

    assert query_indices(first_two, None, np.zeros((5, 2)), 2).tolist() == [0, 1]


def test_query_indices_rejects_duplicates():
    def repeats(classifier, X_pool, n_instances=1):
        return np.zeros(n_instances, dtype=int)

    with pytest.raises(ValueError, match="distinct"):
        query_indices(repeats, None, np.zeros((5, 2)), 3)


def test_random_sampling_is_seeded():
    pool = np.zeros((100, 2))
    first, _ = RandomSampling(seed=3)(None, pool, n_instances=10)
    second, _ = RandomSampling(seed=3)(None, pool, n_instances=10)
    assert first.tolist() == second.tolist()


def test_random_sampling_caps_at_pool_size():
    indices, _ = RandomSampling(seed=0)(None, np.zeros((4, 2)), n_instances=10)
    assert sorted(indices.tolist()) == [0, 1, 2, 3]


def test_check_classifier_rejects_svc_without_probability():
    with pytest.raises(TypeError, match="SVC has no predict_proba"):
        check_classifier(SVC())


def test_check_query_strategy_rejects_wrong_signature():
    def no_pool(classifier):
        return [0]

    with pytest.raises(TypeError, match="no_pool"):
        check_query_strategy(no_pool)


def test_check_query_strategy_accepts_modal_function():
    check_query_strategy(margin_sampling)


def closest_to(classifier, X_pool, n_instances=1, *, target=0.5):
    return [0], [0.0]


def test_check_query_strategy_accepts_partial_with_known_keys():
    check_query_strategy(functools.partial(closest_to, target=0.3))


def test_check_query_strategy_rejects_unknown_config_key():
    strategy = functools.partial(closest_to, targt=0.3)
    with pytest.raises(TypeError, match="config keys \\['targt'\\]") as error:
        check_query_strategy(strategy)
    assert "unexpected keyword argument 'targt'" in str(error.value)


def test_check_query_config_requires_partial_for_function():
    config = {"_target_": "modAL.uncertainty.margin_sampling"}
    with pytest.raises(TypeError, match="needs `_partial_: true`"):
        check_query_config(config)
    check_query_config({**config, "_partial_": True})
    check_query_config({"_target_": "plugins.query.random.RandomSampling"})
