"""Random sampling: the baseline that every query strategy should beat."""

from __future__ import annotations

import numpy as np


class RandomSampling:
    """Pick pool series uniformly at random, ignoring the classifier.

    Callable as a modAL query strategy. It keeps its own generator, so a run
    with the same seed queries the same series.

    Args:
        seed: Seed of the generator.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)

    def __call__(
        self, classifier: object, X_pool: np.ndarray, n_instances: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        n_pool = len(X_pool)
        indices = self._rng.choice(n_pool, size=min(n_instances, n_pool), replace=False)
        # modAL strategies return the indices and a utility per index.
        return indices, np.zeros(len(indices))
