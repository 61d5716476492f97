"""Query strategies that ask about the series the classifier deems anomalous.

Asking about likely anomalies adds labels of the rare class and checks the
classifier's anomaly calls, while margin sampling refines the decision
boundary. `anomaly_sampling` does the first alone and
`AnomalyMarginSampling` splits each batch between the two.

Ties are broken as modAL's own strategies break them: with
`random_tie_break=True`, numpy's global generator, which the run seeds with
`loop.random_state`, shuffles the pool before ranking.
"""

from __future__ import annotations

import math

import numpy as np
from modAL.utils.selection import (
    multi_argmax,
    multi_argmin,
    shuffled_argmax,
    shuffled_argmin,
)

ANOMALY = 1


def class_probabilities(classifier: object, X_pool: np.ndarray) -> np.ndarray:
    """Return `predict_proba` of the pool with the anomaly class last, (n, 2).

    Raises:
        ValueError: the classifier was not fitted on both labels 0 and 1.
    """
    estimator = getattr(classifier, "estimator", None)
    classes = getattr(classifier, "classes_", None)
    if classes is None:
        classes = getattr(estimator, "classes_", None)
    classes = [] if classes is None else list(classes)
    if sorted(classes) != [0, ANOMALY]:
        raise ValueError(
            "the anomaly query strategies need a classifier fitted on the labels "
            f"0 and 1, but its classes are {classes}; fit it on a labelled set "
            "with both labels"
        )
    probability = np.asarray(classifier.predict_proba(X_pool))
    return probability[:, [classes.index(0), classes.index(ANOMALY)]]


def top_positions(
    values: np.ndarray, n: int, largest: bool, random_tie_break: bool
) -> np.ndarray:
    """Return the positions of the `n` largest (or smallest) values."""
    if n == 0:
        return np.array([], dtype=int)
    if largest:
        select = shuffled_argmax if random_tie_break else multi_argmax
    else:
        select = shuffled_argmin if random_tie_break else multi_argmin
    positions, _ = select(values, n_instances=n)
    return np.asarray(positions, dtype=int)


def anomaly_sampling(
    classifier: object,
    X_pool: np.ndarray,
    n_instances: int = 1,
    random_tie_break: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick the pool series with the highest predicted anomaly probability.

    Args:
        classifier: The fitted learner or classifier, with `predict_proba`.
        X_pool: Features of the unlabelled series, (n_pool, n_features).
        n_instances: Series to pick; at most the pool size are returned.
        random_tie_break: Break ties between equal probabilities at random
            with numpy's global generator.

    Returns:
        The positions in `X_pool` and the anomaly probability of each.
    """
    probability = class_probabilities(classifier, X_pool)[:, 1]
    n = min(n_instances, len(X_pool))
    positions = top_positions(probability, n, True, random_tie_break)
    return positions, probability[positions]


class AnomalyMarginSampling:
    """Split each batch between the likeliest anomalies and margin sampling.

    A share of the queried series goes to the highest anomaly probability, the
    rest to the smallest margin between the two class probabilities. The
    split is a share of each batch and not a weighted sum of the two
    utilities, because with two classes the margin is |2p - 1| for the anomaly
    probability p. A weighted sum of p and 1 - margin is then a function of p
    alone. It peaks at p = 0.5 when the weight of p is below 2/3 and rises up
    to p = 1 above it, so it ranks series much as margin sampling or exactly
    as anomaly sampling does and never mixes the two.

    The share counts over every call so far, so a batch of 1 alternates
    between the two criteria: after m series, round(anomaly_share · m) of them
    came from the anomaly ranking (halves rounded up). One instance must
    therefore serve one run only.

    Args:
        anomaly_share: Share of the queried series picked by anomaly
            probability, from 0 (margin sampling) to 1 (anomaly sampling).
        random_tie_break: Break ties at random with numpy's global generator.
    """

    def __init__(self, anomaly_share: float = 0.5, random_tie_break: bool = False):
        if not 0.0 <= anomaly_share <= 1.0:
            raise ValueError(
                f"query.anomaly_share={anomaly_share} is invalid: it must be "
                "between 0 and 1"
            )
        self.anomaly_share = float(anomaly_share)
        self.random_tie_break = random_tie_break
        self.queried = 0
        self.queried_by_anomaly = 0

    def anomaly_quota(self, n: int) -> int:
        """Return how many of the next `n` series the anomaly ranking picks."""
        target = math.floor(self.anomaly_share * (self.queried + n) + 0.5)
        return min(n, max(0, target - self.queried_by_anomaly))

    def __call__(
        self, classifier: object, X_pool: np.ndarray, n_instances: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the picked positions in `X_pool` and their anomaly probability.

        The series picked by anomaly probability come first.
        """
        probability = class_probabilities(classifier, X_pool)
        anomaly = probability[:, 1]
        margin = np.abs(probability[:, 1] - probability[:, 0])
        n = min(n_instances, len(X_pool))
        n_anomaly = self.anomaly_quota(n)

        by_anomaly = top_positions(anomaly, n_anomaly, True, self.random_tie_break)
        rest = np.setdiff1d(np.arange(len(X_pool)), by_anomaly)
        picked = top_positions(
            margin[rest], n - n_anomaly, False, self.random_tie_break
        )
        positions = np.concatenate([by_anomaly, rest[picked]])

        self.queried += n
        self.queried_by_anomaly += n_anomaly
        return positions, anomaly[positions]
