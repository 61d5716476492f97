"""Every built-in plugin choice composes, instantiates and runs on real samplers."""

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from framework.data import Split
from framework.experiment import build_plugins
from framework.interfaces import Seed
from framework.loop import ActiveLearningLoop
from plugins.oracle.simulated import SimulatedOracle

CONF = Path(__file__).resolve().parents[1] / "conf"
RESAMPLERS = sorted(p.stem for p in (CONF / "resampler").glob("*.yaml"))
CLASSIFIERS = sorted(p.stem for p in (CONF / "classifier").glob("*.yaml"))
QUERIES = sorted(p.stem for p in (CONF / "query").glob("*.yaml"))


def compose_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            "config", overrides=["+experiment=ecg5000", "logger=none", *overrides]
        )


def labelled_set(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.array([1] * 20 + [0] * 80)
    features = rng.normal(size=(100, 24)) + 1.5 * labels[:, None]
    return features, labels


def test_catalogue_has_the_papers_plugins():
    assert len(RESAMPLERS) == 16
    assert {"svm", "knn", "logreg", "dt", "gnb"} <= set(CLASSIFIERS)
    assert {"margin", "uncertainty", "entropy", "random"} <= set(QUERIES)


@pytest.mark.parametrize("name", RESAMPLERS)
def test_resampler_runs_on_imbalanced_codes(name):
    cfg = compose_config(f"resampler={name}")
    resampler = instantiate(cfg.resampler)
    features, labels = labelled_set()
    resampled, resampled_labels = resampler.fit_resample(features, labels)
    assert set(np.unique(resampled_labels)) == {0, 1}
    assert resampled.shape[1] == features.shape[1]


@pytest.mark.parametrize("classifier", CLASSIFIERS)
@pytest.mark.parametrize("query", QUERIES)
def test_classifier_and_query_run_two_iterations(classifier, query):
    cfg = compose_config(f"classifier={classifier}", f"query={query}")
    plugins = build_plugins(cfg)
    features, labels = labelled_set()
    seed_indices = np.concatenate([np.arange(5), np.arange(20, 25)])
    loop = ActiveLearningLoop(
        estimator=plugins["estimator"],
        query_strategy=plugins["query_strategy"],
        oracle=SimulatedOracle(pool=Split(features, labels, labels)),
        features=features,
        iterations=2,
        n_instances=5,
    )
    steps = list(loop.run(Seed(seed_indices, labels[seed_indices])))
    assert steps[-1].labels_used == 10
    assert steps[-1].learner.predict_proba(features).shape == (100, 2)


def test_unknown_choice_lists_the_options():
    with pytest.raises(Exception, match="smote"):
        compose_config("resampler=smoot")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("loop.iterations=-1", "loop.iterations=-1"),
        ("loop.n_instances=0", "=0"),
        ("loop.iterations=2.5", "loop.iterations=2.5 is invalid"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 is invalid"),
    ],
)
def test_bad_loop_settings_fail_before_training(override, message):
    with pytest.raises(ValueError, match=message):
        build_plugins(compose_config(override))


def test_best_experiment_changes_only_the_resampler():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        paper = compose("config", overrides=["+experiment=ecg5000"])
        best = compose("config", overrides=["+experiment=ecg5000_best"])
        chosen = compose(
            "config", overrides=["+experiment=ecg5000_best", "resampler=renn"]
        )
    assert best.resampler._target_ == "imblearn.over_sampling.SMOTE"
    assert {key for key in paper if paper[key] != best[key]} == {"resampler"}
    assert chosen.resampler == paper.resampler
