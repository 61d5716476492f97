"""Seed set from a score threshold of mean + k standard deviations."""

from __future__ import annotations

import logging

import numpy as np

from framework.interfaces import Seed

log = logging.getLogger(__name__)


class ThresholdSeeder:
    """Pseudo-label the series above mean + k·std as anomalies.

    The series above the threshold get label 1. The same number of series
    with the highest scores below it get label 0, so the seed set is
    balanced. If fewer series lie below the threshold than above it, all of
    them are taken.

    Args:
        k: Standard deviations above the mean score (Šabata and Holeňa,
            2020, use 3).
    """

    def __init__(self, k: float = 3.0) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, float)):
            raise ValueError(f"seeder.k={k!r} is invalid: it must be a number >= 0")
        if k < 0:
            raise ValueError(f"seeder.k={k} is invalid: it must be >= 0")
        self.k = float(k)

    def __call__(self, scores: np.ndarray) -> Seed:
        scores = np.asarray(scores, dtype=np.float64)
        threshold = float(scores.mean() + self.k * scores.std())
        order = np.argsort(-scores, kind="stable")
        n_above = int((scores > threshold).sum())
        if n_above == 0:
            raise ValueError(
                f"no pool series scores above the threshold {threshold:.4g} "
                f"(mean + {self.k:g}·std, highest score {scores.max():.4g}); "
                "lower seeder.k"
            )
        above = order[:n_above]
        below = order[n_above : 2 * n_above]
        if len(below) == 0:
            raise ValueError(
                f"every pool series scores above the threshold {threshold:.4g}, "
                "so no series can be pseudo-labelled normal; raise seeder.k"
            )
        log.info(
            "seed threshold %.4g: %d series above it, %d just below",
            threshold,
            len(above),
            len(below),
        )
        if len(below) < len(above):
            log.warning(
                "only %d pool series score below the seed threshold %.4g, fewer "
                "than the %d above it; the seed set takes all of them and is not "
                "balanced (summary.json: seed.pseudo_normals). Raise seeder.k "
                "for a balanced seed set",
                len(below),
                threshold,
                len(above),
            )
        indices = np.concatenate([above, below])
        labels = np.concatenate(
            [np.ones(len(above), np.int64), np.zeros(len(below), np.int64)]
        )
        return Seed(indices=indices, labels=labels, threshold=threshold)
