"""Where each run's final classifier loses F1: threshold, labels or features.

    python benchmarks/headroom.py SWEEP_DIR [SWEEP_DIR ...] [--supervised] \
        [--where resampler=smote,query=margin ...]

loads the detector of every finished run below the sweep directories (the
classifier after the last iteration) and prints, per setting, the mean ±
standard deviation over seeds of test F1:

- `run`: as the run reported it, at the classifier's own decision;
- `validation threshold`: with the anomaly-probability threshold that
  maximises F1 on the validation split (it uses the validation labels,
  which the run's classifier never saw, but no test label);
- `best test threshold`: with the threshold that maximises test F1, an
  upper bound on any re-thresholding of this classifier's ranking;
- `test AUPRC`: the area under the precision-recall curve, the ranking's
  quality apart from any threshold;
- with `--supervised`, `all pool labels`: the same resampler and classifier
  fitted on every pool series with its true label, at its own decision and
  at its best test threshold. It shows what the features allow when labels
  cost nothing.

`--where` keeps only the runs with the given choices (each `--where` is one
setting; repeat it for more).

A gap between `run` and `validation threshold` points at the decision
threshold; a low `best test threshold` next to a low `all pool labels`
points at the features.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from _common import parse_choices
from omegaconf import OmegaConf
from sklearn.base import clone
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve

from framework.data import Splits
from framework.detector import load_detector
from framework.experiment import load_splits

GROUPS = ["classifier", "resampler", "query", "features", "encoder"]


def best_threshold(labels: np.ndarray, probability: np.ndarray) -> float:
    """Return the probability threshold with the highest F1 on `labels`."""
    precision, recall, thresholds = precision_recall_curve(labels, probability)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[np.argmax(f1[:-1])])


def f1_at(labels: np.ndarray, probability: np.ndarray, threshold: float) -> float:
    return float(f1_score(labels, probability >= threshold, zero_division=0))


def measure(run_dir: Path, splits: Splits, supervised: bool) -> dict[str, float]:
    """Return the test F1 of the run's final classifier at three thresholds,
    and its test AUPRC."""
    detector = load_detector(run_dir)
    anomaly = list(detector.estimator.classes_).index(1)
    features = {
        name: detector.classifier_features(getattr(splits, name).series)
        for name in ("validation", "test", *(("pool",) if supervised else ()))
    }

    def probability(estimator, name: str) -> np.ndarray:
        return estimator.predict_proba(features[name])[:, anomaly]

    test = splits.test.labels
    on_validation = probability(detector.estimator, "validation")
    on_test = probability(detector.estimator, "test")
    figures = {
        "run": float(
            f1_score(
                test, detector.estimator.predict(features["test"]), zero_division=0
            )
        ),
        "validation threshold": f1_at(
            test, on_test, best_threshold(splits.validation.labels, on_validation)
        ),
        "best test threshold": f1_at(test, on_test, best_threshold(test, on_test)),
        "test AUPRC": float(average_precision_score(test, on_test)),
    }
    if supervised:
        everything = clone(detector.estimator).fit(features["pool"], splits.pool.labels)
        on_test = probability(everything, "test")
        figures["all pool labels"] = float(
            f1_score(test, everything.predict(features["test"]), zero_division=0)
        )
        figures["all pool labels, best test threshold"] = f1_at(
            test, on_test, best_threshold(test, on_test)
        )
    return figures


def collect(
    sweep_dirs: list[Path], supervised: bool, where: list[dict[str, str]] = ()
) -> pd.DataFrame:
    rows, splits_of = [], {}
    for sweep_dir in sweep_dirs:
        for path in sorted(sweep_dir.rglob("summary.json")):
            summary = json.loads(path.read_text())
            if not summary.get("completed"):
                continue
            if where and not any(
                all(summary["choices"].get(k) == v for k, v in wanted.items())
                for wanted in where
            ):
                continue
            config = OmegaConf.create(summary["config"])
            key = (json.dumps(summary["config"]["data"], sort_keys=True), config.seed)
            if key not in splits_of:
                splits_of[key] = load_splits(config)
            figures = measure(path.parent, splits_of[key], supervised)
            choices = {group: summary["choices"].get(group) for group in GROUPS}
            rows.append({**choices, "seed": config.seed, **figures})
            print(f"{path.parent}: run {figures['run']:.3f}", file=sys.stderr)
    return pd.DataFrame(rows)


def table(rows: pd.DataFrame) -> pd.DataFrame:
    groups = [g for g in GROUPS if rows[g].nunique() > 1] or GROUPS[:1]
    figures = [c for c in rows.columns if c not in (*GROUPS, "seed")]
    grouped = rows.groupby(groups)
    mean, std = grouped[figures].mean(), grouped[figures].std().fillna(0.0)
    out = pd.DataFrame(index=mean.index)
    for column in figures:
        out[column] = [
            f"{m:.3f} ± {s:.3f}" for m, s in zip(mean[column], std[column], strict=True)
        ]
    out["seeds"] = grouped["seed"].nunique()
    return out.loc[mean["run"].sort_values(ascending=False).index]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", nargs="+", type=Path)
    parser.add_argument(
        "--supervised",
        action="store_true",
        help="also fit each setting on all pool labels",
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        help="key=value,... : only runs with these choices (repeat for more)",
    )
    arguments = parser.parse_args(argv)
    where = [parse_choices("--where", text, GROUPS) for text in arguments.where]
    for sweep_dir in arguments.sweep_dirs:
        if not sweep_dir.is_dir():
            raise SystemExit(f"sweep directory {sweep_dir} does not exist")
    logging.basicConfig(level=logging.WARNING)
    rows = collect(arguments.sweep_dirs, arguments.supervised, where)
    if rows.empty:
        raise SystemExit(
            f"no finished run below {arguments.sweep_dirs} matches "
            f"{arguments.where or 'any setting'}"
        )
    print(table(rows).reset_index().to_markdown(index=False))


if __name__ == "__main__":
    main()
