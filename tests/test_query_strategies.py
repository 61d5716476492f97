"""The built-in query strategies on fitted classifiers, and in short real runs."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from modAL.batch import uncertainty_batch_sampling
from modAL.density import information_density
from modAL.models import ActiveLearner
from modAL.uncertainty import margin_sampling
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC
from small_run import TINY_ENCODER

from framework.experiment import run
from framework.interfaces import check_query_strategy
from framework.loop import make_estimator, query_indices
from plugins.query.anomaly import AnomalyMarginSampling, anomaly_sampling
from plugins.query.density import InformationDensitySampling, pool_density

CONF = Path(__file__).resolve().parents[1] / "conf"
QUERIES = sorted(p.stem for p in (CONF / "query").glob("*.yaml"))
NEW_QUERIES = ["anomaly", "anomaly_margin", "density", "ranked_batch", "random"]


def compose_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            "config", overrides=["+experiment=ecg5000", "logger=none", *overrides]
        )


def line_learner() -> ActiveLearner:
    """A learner whose anomaly probability rises with the first feature only.

    The second feature is 0 in every training series, so the fitted weight of
    it is 0 and the decision boundary is the line x0 = 0.
    """
    x0 = np.array([-3.0, -2.5, -2.0, -1.5, -1.0, 1.0, 1.5, 2.0, 2.5, 3.0])
    X = np.column_stack([x0, np.zeros_like(x0)])
    y = (x0 > 0).astype(int)
    estimator = make_estimator(None, LogisticRegression(C=1.0))
    return ActiveLearner(estimator=estimator, X_training=X, y_training=y)


def pool_on_line(*x0: float) -> np.ndarray:
    return np.column_stack([x0, np.zeros(len(x0))])


@pytest.fixture(scope="module")
def svm_learner() -> tuple[ActiveLearner, np.ndarray]:
    """An SVM fitted on 60 labelled codes, and a pool of 400 unlabelled ones."""
    rng = np.random.default_rng(0)
    labels = (rng.random(460) < 0.3).astype(int)
    codes = rng.normal(size=(460, 8)) + 1.5 * labels[:, None]
    estimator = make_estimator(None, SVC(probability=True, random_state=0))
    learner = ActiveLearner(
        estimator=estimator, X_training=codes[:60], y_training=labels[:60]
    )
    return learner, codes[60:]


def test_catalogue_lists_new_strategies():
    assert set(NEW_QUERIES) <= set(QUERIES)


def test_anomaly_picks_highest_probability():
    pool = pool_on_line(-2.0, 0.5, 3.0, -0.1, 1.5)
    positions, probability = anomaly_sampling(line_learner(), pool, n_instances=2)
    assert sorted(positions.tolist()) == [2, 4]
    assert (probability > 0.5).all()


def test_anomaly_margin_splits_batch():
    pool = pool_on_line(-2.0, 0.05, 3.0, -1.0, 1.5)
    strategy = AnomalyMarginSampling(anomaly_share=0.5)
    positions, _ = strategy(line_learner(), pool, n_instances=2)
    # First the likeliest anomaly (x0 = 3), then the smallest margin (x0 = 0.05).
    assert positions.tolist() == [2, 1]


def test_anomaly_margin_share_counts_over_calls():
    pool = pool_on_line(-2.0, 0.05, 3.0, -1.0, 1.5, -0.2)
    strategy = AnomalyMarginSampling(anomaly_share=0.5)
    picks = [strategy(line_learner(), pool, n_instances=1)[0][0] for _ in range(4)]
    # A batch of one alternates: anomaly ranking, margin, anomaly, margin.
    assert picks == [2, 1, 2, 1]
    assert strategy.queried == 4
    assert strategy.queried_by_anomaly == 2


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_anomaly_margin_extreme_shares(share, svm_learner):
    learner, pool = svm_learner
    positions, _ = AnomalyMarginSampling(anomaly_share=share)(learner, pool, 10)
    if share == 0.0:
        expected, _ = margin_sampling(learner, pool, n_instances=10)
    else:
        expected, _ = anomaly_sampling(learner, pool, n_instances=10)
    assert sorted(positions.tolist()) == sorted(expected.tolist())


def test_anomaly_margin_rejects_share_above_one():
    with pytest.raises(ValueError, match="anomaly_share=1.5 is invalid"):
        AnomalyMarginSampling(anomaly_share=1.5)


def density_case() -> np.ndarray:
    """A dense crowd of confident normals next to a fairly uncertain series
    (position 30), and a more uncertain series far from everything (31)."""
    rng = np.random.default_rng(1)
    crowd = np.column_stack([rng.normal(-0.8, 0.1, 30), rng.normal(0, 0.1, 30)])
    return np.vstack([crowd, [[-0.3, 0.0]], [[0.0, 60.0]]])


def test_density_prefers_dense_uncertain_series():
    pool = density_case()
    weighted = InformationDensitySampling(measure="margin", density_exponent=1.0)
    plain = InformationDensitySampling(measure="margin", density_exponent=0.0)
    assert weighted(line_learner(), pool, n_instances=1)[0].tolist() == [30]
    assert plain(line_learner(), pool, n_instances=1)[0].tolist() == [31]


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan"])
def test_pool_density_matches_modal(metric):
    pool = density_case()
    np.testing.assert_allclose(
        pool_density(pool, metric), information_density(pool, metric), rtol=1e-12
    )


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"measure": "variance"}, "measure='variance' is invalid"),
        ({"metric": "nearness"}, "metric='nearness' is invalid"),
        ({"density_exponent": -1.0}, "density_exponent=-1.0 is invalid"),
    ],
)
def test_density_rejects_bad_settings(setting, message):
    with pytest.raises(ValueError, match=message):
        InformationDensitySampling(**setting)


def test_ranked_batch_avoids_near_duplicates():
    """Two equally uncertain near-duplicates: margin sampling queries both, the
    ranked batch one of them and a distant series instead."""
    pool = np.vstack(
        [
            pool_on_line(*np.linspace(-3.0, -2.0, 20), *np.linspace(2.0, 3.0, 20)),
            [[0.0, 0.0], [0.01, 0.0], [0.4, 8.0]],
        ]
    )
    learner = line_learner()
    by_margin, _ = margin_sampling(learner, pool, n_instances=2)
    ranked, _ = uncertainty_batch_sampling(learner, pool, n_instances=2)
    assert sorted(by_margin.tolist()) == [40, 41]
    assert 42 in ranked.tolist()
    assert len({40, 41} & set(ranked.tolist())) == 1


@pytest.mark.parametrize("name", NEW_QUERIES)
def test_strategy_returns_distinct_pool_positions(name, svm_learner):
    learner, pool = svm_learner
    np.random.seed(0)
    strategy = instantiate(compose_config(f"query={name}").query)
    check_query_strategy(strategy)
    positions = query_indices(strategy, learner, pool, 10)
    assert len(positions) == 10
    assert len(np.unique(positions)) == 10
    assert positions.min() >= 0
    assert positions.max() < len(pool)


@pytest.mark.parametrize("name", NEW_QUERIES)
def test_strategy_is_reproducible(name, svm_learner):
    learner, pool = svm_learner
    picks = []
    for _ in range(2):
        np.random.seed(7)
        strategy = instantiate(compose_config(f"query={name}", "repeat=3").query)
        picks.append([query_indices(strategy, learner, pool, 5) for _ in range(3)])
    for first, second in zip(*picks, strict=True):
        np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", ["anomaly", "anomaly_margin", "density"])
def test_tie_break_follows_global_seed(name):
    """On a pool of identical series only the tie break decides."""
    pool = pool_on_line(*[0.5] * 40)
    picks = {}
    for seed in (0, 0, 1):
        np.random.seed(seed)
        strategy = instantiate(compose_config(f"query={name}").query)
        picks.setdefault(seed, []).append(
            query_indices(strategy, line_learner(), pool, 4).tolist()
        )
    assert picks[0][0] == picks[0][1]
    assert picks[0][0] != picks[1][0]


def test_ranked_batch_config_is_modal_function():
    strategy = instantiate(compose_config("query=ranked_batch").query)
    assert isinstance(strategy, functools.partial)
    assert strategy.func is uncertainty_batch_sampling
    assert strategy.keywords == {"metric": "euclidean", "n_jobs": None}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """Encoder cache of the short runs below, so that they train one encoder."""
    return tmp_path_factory.mktemp("encoders")


@pytest.mark.parametrize("name", NEW_QUERIES)
def test_short_run_with_strategy(name, tmp_path, data_root, shared_cache, monkeypatch):
    monkeypatch.setenv("TSAL_DATA_ROOT", str(data_root))
    cfg = compose_config(
        f"query={name}",
        "plot=false",
        *TINY_ENCODER,
        "loop.iterations=2",
        "loop.n_instances=5",
        f"encoder.cache_dir={shared_cache}",
    )
    summary = run(cfg, tmp_path)
    assert summary["completed"] is True
    assert summary["final"]["labels_used"] == 10
    queried = (tmp_path / "queries.csv").read_text().splitlines()
    assert len(queried) == 11, "a header and one line per queried series"
