"""Simulated annotator that returns the ground-truth labels of the pool."""

from __future__ import annotations

import numpy as np

from framework.data import Split


class SimulatedOracle:
    """Return the known label of each queried pool series.

    Args:
        pool: The pool split, whose `labels` are the ground truth.
    """

    def __init__(self, pool: Split) -> None:
        self.labels = np.asarray(pool.labels)

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        return self.labels[np.asarray(indices)]
