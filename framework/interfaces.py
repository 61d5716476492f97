"""Interfaces of the plugin kinds, and the checks run before training.

Classifiers are scikit-learn estimators with `predict_proba`, resamplers are
imbalanced-learn samplers, query strategies are modAL-style functions and
encoders are LightningModules (see `framework.encoder`). Seeders, oracles
and trackers have no ecosystem standard, so they follow the small protocols
below; none of them needs a base class of ours.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from hydra.utils import get_object


@dataclass(frozen=True)
class Seed:
    """Initial labelled set, built without asking the oracle.

    Attributes:
        indices: Positions of the seeded series in the pool.
        labels: Pseudo-label of each seeded series (1 anomaly, 0 normal).
        threshold: Score above which the seeder calls a series an anomaly,
            or None for a seeder without a threshold.
    """

    indices: np.ndarray
    labels: np.ndarray
    threshold: float | None = None


class Seeder(Protocol):
    def __call__(self, scores: np.ndarray) -> Seed:
        """Pick and pseudo-label series of the pool from their anomaly scores."""


@dataclass(frozen=True)
class Round:
    """What the loop knows when it asks the oracle, for showing to a person.

    Attributes:
        iteration: The query round, from 1.
        iterations: Query rounds of the whole run.
        labels_used: Oracle labels before this round.
        positions: Pool positions asked for in this round.
        probabilities: The classifier's anomaly probability of each series in
            `positions`, or NaN where it is unknown.
        normals: Pool positions of labelled normal series (pseudo-labels of
            the seed included), the most surely normal first; at most ten.
    """

    iteration: int
    iterations: int
    labels_used: int
    positions: np.ndarray
    probabilities: np.ndarray
    normals: np.ndarray

    @classmethod
    def unknown(cls, positions: np.ndarray) -> Round:
        """Build a round of which only the positions are known, as in a direct call."""
        positions = np.asarray(positions)
        nan = np.full(len(positions), np.nan)
        return cls(0, 0, 0, positions, nan, np.array([], int))

    def probability(self, position: int) -> float:
        """Return the anomaly probability of the series at pool `position`."""
        matches = np.flatnonzero(self.positions == position)
        return float(self.probabilities[matches[0]]) if len(matches) else np.nan


class Oracle(Protocol):
    """Annotator. Built with `pool=` (the pool `Split`) as a keyword argument.

    An oracle that shows the series to a person may also take a keyword
    argument `round` (a `Round`), and may have a `close()` method, which the
    run calls when the loop ends. Label -1 means the series was skipped: the
    loop leaves it out of the labelled set and does not ask for it again.
    """

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        """Return the label (1 anomaly, 0 normal, -1 skipped) of pool series."""


class Tracker(Protocol):
    """Experiment tracker such as wandb."""

    def start(self, config: dict[str, Any], run_dir: str) -> None: ...

    def log(self, metrics: dict[str, float], step: int) -> None: ...

    def finish(self, summary: dict[str, Any]) -> None: ...


def check_classifier(classifier: Any) -> None:
    """Reject a classifier that cannot give class probabilities.

    Raises:
        TypeError: naming the class, for example `SVC(probability=False)`.
    """
    name = type(classifier).__qualname__
    if not callable(getattr(classifier, "fit", None)):
        raise TypeError(
            f"classifier {name} has no fit method; it must be a scikit-learn classifier"
        )
    if not hasattr(classifier, "predict_proba"):
        raise TypeError(
            f"classifier {name} has no predict_proba, which margin, uncertainty "
            "and the evaluation need; choose a probabilistic classifier (for "
            "SVC set probability=True)"
        )


def check_query_strategy(strategy: Callable[..., Any]) -> None:
    """Reject a query strategy that cannot be called as modAL calls it.

    modAL calls `strategy(classifier, X_pool, n_instances=n)`. For a
    `functools.partial`, which Hydra builds from a YAML with `_partial_: true`,
    the keywords from the YAML must be parameters of the function too.

    Raises:
        TypeError: naming the strategy, its signature and the config keys.
    """
    target, arguments, keywords = strategy, (), {}
    if isinstance(strategy, functools.partial):
        target, arguments, keywords = strategy.func, strategy.args, strategy.keywords
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    if not callable(strategy):
        raise TypeError(f"query strategy {name} is not callable")
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin without a signature
        return
    try:
        signature.bind(
            *arguments, object(), np.empty((1, 1)), n_instances=1, **keywords
        )
    except TypeError as error:
        settings = f" with the config keys {sorted(keywords)}" if keywords else ""
        raise TypeError(
            f"query strategy {name}{signature}{settings} cannot be called as "
            f"strategy(classifier, X_pool, n_instances=n): {error}"
        ) from None


def check_query_config(query: Mapping[str, Any]) -> None:
    """Reject a query config that would call a strategy function at start-up.

    Without `_partial_: true`, Hydra calls a `_target_` function with the
    YAML's keys instead of returning it for the loop to call.

    Raises:
        TypeError: naming the function and the missing setting.
    """
    target = query.get("_target_")
    if not target or query.get("_partial_", False):
        return
    try:
        strategy = get_object(target)
    except Exception:  # instantiate reports a bad target with its own message
        return
    if inspect.isfunction(strategy):
        raise TypeError(
            f"query strategy {target} is a function, so its config needs "
            "`_partial_: true`; without it Hydra calls the function at start-up "
            "instead of passing it to the loop"
        )


def check_seed(seed: Seed, pool_size: int, seeder: Any) -> None:
    """Reject a seed set that the loop cannot start from, naming the seeder.

    Raises:
        ValueError: the positions are not distinct positions of the pool, the
            labels are not 0 and 1 with one per position, or one class is
            missing, which no classifier can be fitted without.
    """
    name = type(seeder).__qualname__
    indices = np.asarray(seed.indices)
    labels = np.asarray(seed.labels)
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(
            f"seeder {name} returned indices of dtype {indices.dtype} and shape "
            f"{indices.shape}; it must return a 1-D array of integer pool positions"
        )
    if labels.shape != indices.shape:
        raise ValueError(
            f"seeder {name} returned {labels.size} labels for {indices.size} "
            "positions; it must return one label per position"
        )
    if len(np.unique(indices)) != len(indices) or (
        len(indices) and (indices.min() < 0 or indices.max() >= pool_size)
    ):
        raise ValueError(
            f"seeder {name} returned positions that repeat or lie outside the pool "
            f"of {pool_size} series; it must return distinct positions 0 to "
            f"{pool_size - 1}"
        )
    classes = set(np.unique(labels).tolist())
    if not classes <= {0, 1}:
        raise ValueError(
            f"seeder {name} returned the labels {sorted(classes)}; they must be 1 "
            "(anomaly) or 0 (normal)"
        )
    if classes != {0, 1}:
        missing = "anomaly (1)" if 1 not in classes else "normal (0)"
        raise ValueError(
            f"seeder {name} returned a seed set of {len(labels)} series without "
            f"any {missing} label; the classifier needs both classes, so change "
            "the seeder's settings (for the threshold seeder, seeder.k)"
        )
