"""Reruns into an output directory that already contains a run.

A finished run of the same config is reused when `skip_finished` is true. An
unfinished run is started over, or, with `resume=true`, continued after its
last finished iteration. A resumed run repeats the finished iterations
without asking the oracle: it takes their labels from queries.csv and checks
that it queries the same series and computes the same rows as before, so
that a results.csv never mixes two runs. A lock file keeps a second process
out of a directory in which a run is going on.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from framework.outputs import read_queries, read_results

LOCK_FILE = ".run.lock"
# Rows of results.csv per iteration, in the order the run writes them.
SPLITS = ("validation", "test")

# Config entries that change where files are, how a run is tracked or how
# fast it goes, but not what it computes. A finished run is reused, and an
# unfinished one resumed, even when they differ.
NON_RESULT_KEYS = (
    "data.root",
    "data.cache_dir",
    "encoder.cache_dir",
    "logger",
    "threads",
    "plot",
    "skip_finished",
    "resume",
)


def finished_summary(run_dir: str | Path, config: dict[str, Any]) -> dict | None:
    """Return the summary of a finished run of `config` in `run_dir`, else None.

    Raises:
        ValueError: `run_dir` contains a finished run of another config, which
            a rerun would overwrite.
    """
    path = Path(run_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not summary.get("completed"):
        return None
    differences = result_differences(summary.get("config", {}), config)
    if differences:
        raise ValueError(
            f"{run_dir} contains a finished run of another config (differs in "
            f"{', '.join(differences[:5])}); choose another output directory "
            "(hydra.run.dir or hydra.sweep.dir) or set skip_finished=false to "
            "overwrite it"
        )
    return summary


def result_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Return the dotted keys where two configs differ, ignoring NON_RESULT_KEYS."""
    return _differences(_without_non_result_keys(old), _without_non_result_keys(new))


def _without_non_result_keys(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    for dotted in NON_RESULT_KEYS:
        *parents, leaf = dotted.split(".")
        node = config
        for parent in parents:
            node = node.get(parent, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return config


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return found
    return [] if old == new else [prefix.rstrip(".")]


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold the lock of `run_dir`, or raise at once when another process has it.

    The operating system releases the lock of a killed process, so a stale
    lock file blocks nothing.

    Raises:
        RuntimeError: another process is running in `run_dir`.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RuntimeError(
            f"another process is running in {run_dir} (it has locked "
            f"{lock.lock_file}); wait for it to end or choose another output directory "
            "(hydra.run.dir or hydra.sweep.dir)"
        ) from None
    try:
        yield
    finally:
        lock.release()


@dataclass(frozen=True)
class UnfinishedRun:
    """The finished part of an unfinished run in an output directory.

    Attributes:
        last_iteration: The last iteration with both rows in results.csv.
        rows: The rows of results.csv, iterations 0 to `last_iteration`.
        queries: The rows of queries.csv, iterations 1 to `last_iteration`.
    """

    last_iteration: int
    rows: list[dict[str, Any]]
    queries: list[dict[str, int]]

    def recorded_queries(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Return the queried pool positions and their labels, by iteration."""
        recorded = {}
        for iteration in range(1, self.last_iteration + 1):
            picked = [row for row in self.queries if row["iteration"] == iteration]
            positions = np.array([row["pool_index"] for row in picked], dtype=int)
            labels = np.array([row["label"] for row in picked], dtype=np.int64)
            recorded[iteration] = (positions, labels)
        return recorded


def unfinished_run(run_dir: str | Path, config: dict[str, Any]) -> UnfinishedRun | None:
    """Read the unfinished run of `config` in `run_dir` for `resume=true`.

    Returns None when `run_dir` contains no run, a finished run, or a run
    that stopped before its first iteration; such a run starts over.

    Raises:
        ValueError: the run there has another config, or its files are
            missing or damaged. The message explains how to start over.
    """
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    results_path = run_dir / "results.csv"
    start_over = "set resume=false to start the run over"
    if not results_path.exists():
        return None
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(
            f"cannot resume the run in {run_dir}: {summary_path.name} is missing "
            f"or damaged ({error}), so its config is unknown; {start_over}"
        ) from None
    if summary.get("completed"):
        return None
    differences = result_differences(summary.get("config", {}), config)
    if differences:
        raise ValueError(
            f"cannot resume the run in {run_dir}: it has another config (differs "
            f"in {', '.join(differences[:5])}); {start_over}, or choose another "
            "output directory (hydra.run.dir or hydra.sweep.dir)"
        )

    rows = read_results(results_path)
    if not rows:
        return None
    last_iteration = rows[-1]["iteration"]
    expected = [(i, split) for i in range(last_iteration + 1) for split in SPLITS]
    if [(row["iteration"], row["split"]) for row in rows] != expected:
        raise ValueError(
            f"cannot resume the run in {run_dir}: {results_path.name} does not "
            "contain one validation and one test row for each iteration 0 to "
            f"{last_iteration}; {start_over}"
        )

    queries_path = run_dir / "queries.csv"
    queries = read_queries(queries_path) if queries_path.exists() else []
    queries = [row for row in queries if row["iteration"] <= last_iteration]
    labelled = {row["iteration"] for row in queries}
    missing = sorted(set(range(1, last_iteration + 1)) - labelled)
    if missing:
        raise ValueError(
            f"cannot resume the run in {run_dir}: {queries_path.name} has no labels "
            f"of iterations {missing[:5]}; {start_over}"
        )
    return UnfinishedRun(last_iteration, rows, queries)
