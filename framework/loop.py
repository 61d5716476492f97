"""The active-learning loop: a modAL learner refitted as the oracle adds labels."""

from __future__ import annotations

import contextlib
import inspect
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from imblearn.pipeline import Pipeline
from modAL.models import ActiveLearner

from framework.interfaces import Oracle, Round, Seed
from framework.resampling import GuardedSampler

log = logging.getLogger(__name__)


def make_estimator(
    resampler: Any, classifier: Any, on_resampler_failure: str = "skip"
) -> Pipeline:
    """Chain resampler and classifier, so that every refit resamples the labels.

    Args:
        resampler: An imbalanced-learn sampler, or None to fit on the
            labelled set as it is.
        classifier: A scikit-learn classifier with `predict_proba`.
        on_resampler_failure: What a fit does when the resampler fails, see
            `GuardedSampler`.
    """
    if resampler is None:
        step: Any = "passthrough"
    else:
        step = GuardedSampler(resampler, on_failure=on_resampler_failure)
    return Pipeline([("resampler", step), ("classifier", classifier)])


def resampler_fallbacks(estimator: Pipeline) -> int:
    """Count the fits of `estimator` that skipped a failed resampler."""
    step = estimator.named_steps["resampler"]
    return getattr(step, "fallbacks", 0)


def query_indices(
    strategy: Callable[..., Any], learner: ActiveLearner, X_pool: np.ndarray, n: int
) -> np.ndarray:
    """Call a modAL-style strategy and return the pool positions it picked.

    modAL's own strategies return (indices, utilities) and some user
    strategies return the indices alone; both are accepted. Calling the
    strategy here, and not through `ActiveLearner.query`, avoids modAL 0.4
    calling a strategy twice when its result is not a pair.
    """
    result = strategy(learner, X_pool, n_instances=n)
    indices = result[0] if isinstance(result, tuple) else result
    indices = np.asarray(indices).reshape(-1)
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(
            f"query strategy returned {indices.dtype} values; it must return "
            "integer positions in X_pool"
        )
    if len(np.unique(indices)) != len(indices) or len(indices) > n:
        raise ValueError(
            f"query strategy returned {len(indices)} positions "
            f"({len(np.unique(indices))} distinct) for n_instances={n}; it must "
            "return at most n distinct positions"
        )
    if len(indices) and (indices.min() < 0 or indices.max() >= len(X_pool)):
        raise ValueError(
            f"query strategy returned positions outside the pool of {len(X_pool)}"
        )
    return indices


@dataclass(frozen=True)
class Step:
    """State of the loop after the seed fit (iteration 0) or one query round.

    Attributes:
        iteration: 0 after fitting on the seed set, then 1, 2, ...
        labels_used: Oracle labels so far, skipped series not counted;
            pseudo-labels of the seed are free.
        n_labelled: Size of the labelled set, pseudo-labels included.
        queried: Pool positions sent to the oracle in this iteration.
        labels: The oracle's label of each position in `queried`: 1, 0, or -1
            for a series the annotator skipped, which stays out of the
            labelled set.
        learner: The learner, fitted on the labelled set.
    """

    iteration: int
    labels_used: int
    n_labelled: int
    queried: np.ndarray
    labels: np.ndarray
    learner: ActiveLearner


class ResumeError(RuntimeError):
    """A resumed run queried other series than the run it continues."""


def check_loop_settings(iterations: int, n_instances: int) -> None:
    """Reject loop settings that cannot run, naming the config key."""
    for key, value in (("iterations", iterations), ("n_instances", n_instances)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(
                f"loop.{key}={value!r} is invalid: it must be a whole number"
            )
    if iterations < 1:
        raise ValueError(
            f"loop.iterations={iterations} is invalid: it must be at least 1 (the "
            "fit on the seed set, iteration 0, comes before the first query round)"
        )
    if n_instances < 1:
        raise ValueError(
            f"loop.n_instances={n_instances} is invalid: it must be at least 1"
        )


@dataclass(frozen=True)
class Stopping:
    """Rules that end the loop before its last round.

    Attributes:
        label_budget: Oracle labels to spend at most; the round that reaches
            it asks for only the labels left. None: no budget.
        stable_rounds: Stop once the classifier's predictions on the pool
            have stayed unchanged for this many rounds in a row. None: never.
        stable_tolerance: Share of the pool whose predicted label may change
            in a round that still counts as unchanged, from 0 to 1.

    Raises:
        ValueError: naming the `loop.` key of a setting that cannot work.
    """

    label_budget: int | None = None
    stable_rounds: int | None = None
    stable_tolerance: float = 0.0

    def __post_init__(self) -> None:
        for key in ("label_budget", "stable_rounds"):
            value = getattr(self, key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(
                    f"loop.{key}={value!r} is invalid: it must be a whole number "
                    "or null"
                )
            if value < 1:
                raise ValueError(
                    f"loop.{key}={value} is invalid: it must be at least 1, or null "
                    "to turn the rule off"
                )
        tolerance = self.stable_tolerance
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
            raise ValueError(
                f"loop.stable_tolerance={tolerance!r} is invalid: it must be a "
                "number from 0 to 1"
            )
        if not 0 <= tolerance < 1:
            raise ValueError(
                f"loop.stable_tolerance={tolerance} is invalid: it must be at least "
                "0 and below 1"
            )


class ActiveLearningLoop:
    """Query the oracle round by round and refit the learner after each round.

    Args:
        estimator: Refitted on the whole labelled set after every round.
        query_strategy: modAL-style function `(classifier, X_pool,
            n_instances) -> indices`.
        oracle: Returns the true labels of pool positions.
        features: Features of every pool series, (n_pool, n_features).
        iterations: Query rounds after the seed fit, at most.
        n_instances: Series queried per round.
        stopping: Rules that can end the loop sooner.

    After `run` has ended, `stop_reason` describes why and `stopped_by`
    names the rule: `iterations`, `label_budget`, `stable_predictions` or
    `pool_exhausted`.
    """

    def __init__(
        self,
        estimator: Any,
        query_strategy: Callable[..., Any],
        oracle: Oracle,
        features: np.ndarray,
        iterations: int,
        n_instances: int,
        stopping: Stopping | None = None,
    ) -> None:
        check_loop_settings(iterations, n_instances)
        self.estimator = estimator
        self.query_strategy = query_strategy
        self.oracle = oracle
        self.features = features
        self.iterations = iterations
        self.n_instances = n_instances
        self.stopping = stopping or Stopping()
        self.stop_reason: str | None = None
        self.stopped_by: str | None = None
        self._oracle_takes_round = _takes_round(oracle)

    def run(
        self,
        seed: Seed,
        recorded_queries: Mapping[int, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> Iterator[Step]:
        """Fit on the seed set, then yield a `Step` after each query round.

        Args:
            seed: The initial labelled set.
            recorded_queries: Pool positions and their oracle labels from
                an earlier run of the same config, by iteration. Those rounds
                still run the query strategy, so that its random state
                advances as before, but take their labels from here instead
                of asking the oracle.

        Raises:
            ResumeError: the query strategy picks other positions than
                `recorded_queries` lists for that iteration.
        """
        recorded_queries = recorded_queries or {}
        unlabelled = np.ones(len(self.features), dtype=bool)
        unlabelled[seed.indices] = False
        with _quiet_modal():
            learner = ActiveLearner(
                estimator=self.estimator,
                query_strategy=self.query_strategy,
                X_training=self.features[seed.indices],
                y_training=np.asarray(seed.labels),
            )
        labels_used = 0
        budget = self.stopping.label_budget
        stable = StablePredictions(self.stopping, learner, self.features)
        normals = list(np.asarray(seed.indices)[np.asarray(seed.labels) == 0])
        nothing = np.array([], int)
        yield Step(0, labels_used, len(seed.indices), nothing, nothing, learner)

        for iteration in range(1, self.iterations + 1):
            candidates = np.flatnonzero(unlabelled)
            if len(candidates) == 0:
                self.stopped_by = "pool_exhausted"
                self.stop_reason = f"pool exhausted after iteration {iteration - 1}"
                log.warning(
                    "pool exhausted after iteration %d of %d: every one of its %d "
                    "series is labelled; stopping early",
                    iteration - 1,
                    self.iterations,
                    len(self.features),
                )
                return
            n = min(self.n_instances, len(candidates))
            if budget is not None:
                n = min(n, budget - labels_used)
            picked = query_indices(
                self.query_strategy, learner, self.features[candidates], n
            )
            queried = candidates[picked]
            if iteration in recorded_queries:
                recorded = recorded_queries[iteration]
                labels = _recorded_labels(iteration, queried, *recorded)
            elif self._oracle_takes_round:
                round = self._round(iteration, labels_used, queried, normals, learner)
                labels = np.asarray(self.oracle(queried, round=round)).reshape(-1)
            else:
                labels = np.asarray(self.oracle(queried)).reshape(-1)
            labels = _checked_labels(labels, queried, self.oracle)
            unlabelled[queried] = False
            answered = labels != SKIPPED
            labels_used += int(answered.sum())
            normals.extend(queried[labels == 0])
            if answered.any():
                with _quiet_modal():
                    learner.teach(self.features[queried[answered]], labels[answered])
            yield Step(
                iteration,
                labels_used,
                len(learner.y_training),
                queried,
                labels,
                learner,
            )
            if (
                budget is not None
                and labels_used >= budget
                and (iteration < self.iterations)
            ):
                self.stopped_by = "label_budget"
                self.stop_reason = (
                    f"label budget of {budget} spent after iteration {iteration}"
                )
                log.info("stopping: %s", self.stop_reason)
                return
            if stable.unchanged_for_long(learner) and iteration < self.iterations:
                self.stopped_by = "stable_predictions"
                self.stop_reason = (
                    f"predictions on the pool unchanged for "
                    f"{self.stopping.stable_rounds} rounds after iteration {iteration}"
                )
                log.info("stopping: %s", self.stop_reason)
                return
        self.stopped_by = "iterations"
        self.stop_reason = f"completed {self.iterations} iterations"

    def _round(
        self,
        iteration: int,
        labels_used: int,
        queried: np.ndarray,
        normals: list[int],
        learner: ActiveLearner,
    ) -> Round:
        """Describe the round for an oracle that shows it to a person."""
        probabilities = _anomaly_probability(learner, self.features[queried])
        normals_array = np.asarray(normals, dtype=int)
        if len(normals_array):
            surest = np.argsort(
                _anomaly_probability(learner, self.features[normals_array]),
                kind="stable",
            )
            normals_array = normals_array[surest[:10]]
        return Round(
            iteration=iteration,
            iterations=self.iterations,
            labels_used=labels_used,
            positions=queried,
            probabilities=probabilities,
            normals=normals_array,
        )


class StablePredictions:
    """Count the rounds in a row in which the pool's predicted labels stay put.

    Does nothing (and costs no prediction) when `stopping.stable_rounds` is
    None.
    """

    def __init__(
        self, stopping: Stopping, learner: ActiveLearner, features: np.ndarray
    ) -> None:
        self.rounds = stopping.stable_rounds
        self.tolerance = stopping.stable_tolerance
        self.features = features
        self.unchanged = 0
        self.last = learner.predict(features) if self.rounds else None

    def unchanged_for_long(self, learner: ActiveLearner) -> bool:
        """Compare the new predictions with the last round's; True to stop."""
        if not self.rounds:
            return False
        predicted = learner.predict(self.features)
        changed = float(np.mean(predicted != self.last))
        self.last = predicted
        self.unchanged = self.unchanged + 1 if changed <= self.tolerance else 0
        return self.unchanged >= self.rounds


# The label of a series the annotator could not tell.
SKIPPED = -1


def _takes_round(oracle: Any) -> bool:
    """Return whether `oracle` accepts the keyword argument `round`."""
    try:
        parameters = inspect.signature(oracle).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "round" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )


def _anomaly_probability(learner: ActiveLearner, features: np.ndarray) -> np.ndarray:
    probabilities = learner.predict_proba(features)
    classes = list(learner.estimator.classes_)
    if 1 not in classes:
        return np.zeros(len(features))
    return probabilities[:, classes.index(1)]


def _checked_labels(labels: np.ndarray, queried: np.ndarray, oracle: Any) -> np.ndarray:
    """Return the oracle's labels as integers, or raise naming the oracle."""
    name = type(oracle).__qualname__
    if len(labels) != len(queried):
        raise ValueError(
            f"oracle {name} returned {len(labels)} labels for {len(queried)} series; "
            "it must return one label per series"
        )
    try:
        as_int = labels.astype(int)
    except (TypeError, ValueError):
        as_int = None
    if as_int is None or not np.array_equal(as_int, labels):
        raise ValueError(
            f"oracle {name} returned the labels {labels.tolist()}; they must be "
            "1 (anomaly), 0 (normal) or -1 (skipped)"
        )
    unknown = sorted(set(as_int.tolist()) - {1, 0, SKIPPED})
    if unknown:
        raise ValueError(
            f"oracle {name} returned the labels {unknown}; they must be 1 "
            "(anomaly), 0 (normal) or -1 (skipped)"
        )
    return as_int


def _recorded_labels(
    iteration: int, queried: np.ndarray, positions: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """Return the recorded labels of `queried`, which must equal `positions`."""
    if not np.array_equal(queried, positions):
        raise ResumeError(
            f"iteration {iteration} queried the pool positions {_preview(queried)} "
            f"where the run being resumed queried {_preview(positions)}; the "
            "code, the installed packages or the machine differ from that run's. "
            "Set resume=false to start the run over"
        )
    return np.asarray(labels)


def _preview(positions: np.ndarray, limit: int = 5) -> str:
    text = ", ".join(str(int(p)) for p in positions[:limit])
    return f"[{text}, ...]" if len(positions) > limit else f"[{text}]"


@contextlib.contextmanager
def _quiet_modal() -> Iterator[None]:
    # modAL 0.4.2.1 passes `force_all_finite`, which scikit-learn 1.6 renamed
    # and warns about; the finiteness check itself still runs.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*force_all_finite.*")
        yield
