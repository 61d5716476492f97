"""The classifier's features, built from what the encoder gives for each series.

The paper feeds the classifier the encoder's code alone. Two further feature
sets add what the autoencoder knows about how badly it reconstructs a
series: its anomaly score (as Pimentel et al. 2018 add the outlier score to
the features of their active learner), or a summary of its error at each
time step, which says where in the heartbeat the reconstruction fails.

The added columns are standardised with the mean and standard deviation of
the pool, which needs no label, so that they weigh about as much as a code
value in the classifier's distances.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class Features:
    """Which encoder outputs the classifier sees, and their pool statistics.

    Args:
        score: Append the anomaly score to the code.
        profile_segments: Append the mean reconstruction error in this many
            equal stretches of the series (0: none).
    """

    score: bool = False
    profile_segments: int = 0
    # Mean and standard deviation of each added column on the pool.
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.score, bool):
            raise ValueError(f"features.score={self.score!r} must be true or false")
        segments = self.profile_segments
        if isinstance(segments, bool) or not isinstance(segments, int):
            raise ValueError(
                f"features.profile_segments={segments!r} is invalid: it must be a "
                "whole number (0 for none)"
            )
        if segments < 0:
            raise ValueError(
                f"features.profile_segments={segments} is invalid: it must be 0 or more"
            )

    @property
    def needs_profile(self) -> bool:
        """Whether `transform` needs the reconstruction error of each time step."""
        return self.profile_segments > 0

    def fit(
        self, codes: np.ndarray, scores: np.ndarray, profiles: np.ndarray | None
    ) -> Features:
        """Take the statistics of the added columns from the pool; return self."""
        extra = self._extra(scores, profiles)
        self.mean = extra.mean(axis=0).tolist()
        std = extra.std(axis=0)
        self.std = np.where(std > 0, std, 1.0).tolist()
        return self

    def transform(
        self, codes: np.ndarray, scores: np.ndarray, profiles: np.ndarray | None
    ) -> np.ndarray:
        """Return the features of each series, shape (n_series, n_features).

        Raises:
            RuntimeError: `fit` has not been called on the pool yet.
        """
        extra = self._extra(scores, profiles)
        if extra.shape[1] == 0:
            return np.asarray(codes, dtype=np.float64)
        if len(self.mean) != extra.shape[1]:
            raise RuntimeError("call Features.fit on the pool before transform")
        scaled = (extra - np.asarray(self.mean)) / np.asarray(self.std)
        return np.hstack([np.asarray(codes, dtype=np.float64), scaled])

    def _extra(self, scores: np.ndarray, profiles: np.ndarray | None) -> np.ndarray:
        columns = []
        if self.score:
            columns.append(np.asarray(scores, dtype=np.float64).reshape(-1, 1))
        if self.needs_profile:
            if profiles is None:
                raise ValueError(
                    "features.profile_segments needs the reconstruction error of "
                    "each time step, which was not computed"
                )
            columns.append(segment_means(profiles, self.profile_segments))
        if not columns:
            return np.empty((len(scores), 0))
        return np.hstack(columns)

    def state(self) -> dict[str, Any]:
        """Return the settings and statistics, as detector.json stores them."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Features:
        """Rebuild the features that `state` describes."""
        return cls(**state)


def segment_means(profiles: np.ndarray, segments: int) -> np.ndarray:
    """Return the mean of each row over `segments` near-equal stretches of columns.

    Raises:
        ValueError: there are more segments than time steps.
    """
    profiles = np.asarray(profiles, dtype=np.float64)
    length = profiles.shape[1]
    if segments > length:
        raise ValueError(
            f"features.profile_segments={segments} is more than the {length} time "
            f"steps of a series; choose at most {length}"
        )
    edges = np.linspace(0, length, segments + 1).round().astype(int)
    return np.stack(
        [profiles[:, start:stop].mean(axis=1) for start, stop in pairwise(edges)],
        axis=1,
    )


def pairwise(values: np.ndarray) -> list[tuple[int, int]]:
    return list(zip(values[:-1], values[1:], strict=True))
