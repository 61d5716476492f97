"""A resampler wrapper that keeps the loop going when the sampler cannot run.

Samplers fail on small or lopsided labelled sets: SMOTE needs more minority
samples than `k_neighbors`, and the under-samplers can delete a whole class
(repeated edited nearest neighbours does on a poorly separated seed set).
The classifier cannot be fitted on one class, so without a fallback the
whole run would stop at that iteration.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

log = logging.getLogger(__name__)

ON_FAILURE = ("skip", "raise")


class ResamplerError(ValueError):
    """The resampler failed and `loop.on_resampler_failure` is `raise`."""


class GuardedSampler(BaseEstimator):
    """Run `sampler`; when it fails, return the labelled set unchanged or raise.

    A failure is a `ValueError` from the sampler, or a result with fewer than
    two classes. Each fallback is counted in `fallbacks`.

    Args:
        sampler: An imbalanced-learn sampler.
        on_failure: "skip" fits the classifier on the labelled set without
            resampling for that fit; "raise" stops the run with
            `ResamplerError`.
    """

    def __init__(self, sampler: Any, on_failure: str = "skip") -> None:
        if on_failure not in ON_FAILURE:
            raise ValueError(
                f"loop.on_resampler_failure={on_failure!r} is invalid; use one "
                f"of {ON_FAILURE}"
            )
        self.sampler = sampler
        self.on_failure = on_failure
        self.fallbacks = 0

    def fit_resample(self, X: np.ndarray, y: np.ndarray, **params: Any):
        try:
            X_resampled, y_resampled = self.sampler.fit_resample(X, y, **params)
        except ValueError as error:
            reason = f"it raised {error}"
        else:
            if len(np.unique(y_resampled)) >= 2:
                return X_resampled, y_resampled
            reason = f"it left only class {np.unique(y_resampled).tolist()}"

        classes, counts = np.unique(y, return_counts=True)
        described = ", ".join(f"{c}: {n}" for c, n in zip(classes, counts, strict=True))
        name = type(self.sampler).__name__
        if self.on_failure == "raise":
            raise ResamplerError(
                f"resampler {name} failed on a labelled set of "
                f"{{{described}}}: {reason}. Set loop.on_resampler_failure=skip "
                "to fit without resampling when this happens"
            )
        self.fallbacks += 1
        # Warn once; later failures are logged at INFO level and counted.
        level = logging.WARNING if self.fallbacks == 1 else logging.INFO
        log.log(
            level,
            "resampler %s failed on a labelled set of {%s} (%s); fitting without "
            "resampling (fallback %d of this run)",
            name,
            described,
            reason,
            self.fallbacks,
        )
        return X, y
