"""Information density: uncertainty weighted by how typical a series is of the pool.

Uncertainty sampling alone tends to pick outliers, which are uncertain but
unlike the rest of the pool, so their labels teach the classifier little.
Information density multiplies the uncertainty of a series by its mean
similarity to the pool, raised to an exponent, so that uncertain series in
dense regions come first.
"""

from __future__ import annotations

import numpy as np
from modAL.uncertainty import (
    classifier_entropy,
    classifier_margin,
    classifier_uncertainty,
)
from modAL.utils.selection import multi_argmax, shuffled_argmax
from sklearn.metrics import pairwise_distances, pairwise_distances_chunked

MEASURES = ("margin", "uncertainty", "entropy")


def pool_density(X_pool: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Return the mean similarity 1 / (1 + distance) of each series to the pool.

    The values equal `modAL.density.information_density(X_pool, metric)`, but
    the distances are held one block of rows at a time, sized by
    scikit-learn's `working_memory` setting (1024 MiB by default), not all n²
    at once. The time is still O(n²) distances per call.
    """

    def mean_similarity(chunk: np.ndarray, start: int) -> np.ndarray:
        return (1.0 / (1.0 + chunk)).mean(axis=1)

    blocks = pairwise_distances_chunked(
        X_pool, metric=metric, reduce_func=mean_similarity
    )
    return np.concatenate(list(blocks))


class InformationDensitySampling:
    """Pick the series with the highest uncertainty × density ** exponent.

    Callable as a modAL query strategy. The density is computed on the pool it
    is given, which shrinks as series are labelled, so it is recomputed at
    every call.

    Args:
        measure: Uncertainty of a series: "margin" (1 minus the gap between
            the two most likely classes), "uncertainty" (1 minus the highest
            class probability) or "entropy" of the class probabilities.
        metric: Distance between codes, any metric of
            `sklearn.metrics.pairwise_distances`, such as "euclidean",
            "cosine" or "manhattan".
        density_exponent: Exponent of the density; 0 is plain uncertainty
            sampling, larger values favour dense regions more.
        random_tie_break: Break ties at random with numpy's global generator,
            which the run seeds with `loop.random_state`.
    """

    def __init__(
        self,
        measure: str = "margin",
        metric: str = "euclidean",
        density_exponent: float = 1.0,
        random_tie_break: bool = False,
    ) -> None:
        if measure not in MEASURES:
            raise ValueError(
                f"query.measure={measure!r} is invalid: it must be one of "
                f"{list(MEASURES)}"
            )
        if density_exponent < 0:
            raise ValueError(
                f"query.density_exponent={density_exponent} is invalid: it must be >= 0"
            )
        try:
            pairwise_distances(np.eye(3), metric=metric)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"query.metric={metric!r} is invalid for "
                f"sklearn.metrics.pairwise_distances: {error}"
            ) from None
        self.measure = measure
        self.metric = metric
        self.density_exponent = float(density_exponent)
        self.random_tie_break = random_tie_break

    def informativeness(self, classifier: object, X_pool: np.ndarray) -> np.ndarray:
        """Return the uncertainty of each pool series, higher meaning less sure."""
        if self.measure == "margin":
            return 1.0 - classifier_margin(classifier, X_pool)
        if self.measure == "uncertainty":
            return classifier_uncertainty(classifier, X_pool)
        return classifier_entropy(classifier, X_pool)

    def __call__(
        self, classifier: object, X_pool: np.ndarray, n_instances: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the picked positions in `X_pool` and their utility."""
        utility = self.informativeness(classifier, X_pool)
        if self.density_exponent > 0:
            density = pool_density(X_pool, self.metric)
            utility = utility * density**self.density_exponent
        n = min(n_instances, len(X_pool))
        select = shuffled_argmax if self.random_tie_break else multi_argmax
        positions, values = select(utility, n_instances=n)
        return np.asarray(positions, dtype=int), values
