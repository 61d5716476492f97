"""F1 lost by each run's final classifier to its threshold, labels or features.

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

Settings are separated as in `study.py`: by the choices and by any config
key swept in one of the directories. `--where` keeps only the runs with the
given choices (each `--where` is one setting; repeat it for more). The
series are read from each run's saved `data.root`, or from `TSAL_DATA_ROOT`
when it is set, so a study can be measured from another directory. A run
whose files cannot be read is left out with a warning.

A gap between `run` and `validation threshold` points at the decision
threshold; a low `best test threshold` next to a low `all pool labels`
points at the features.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from _common import add_where_option
from omegaconf import OmegaConf
from sklearn.base import clone
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve
from study import check_sweep_dirs, run_config, setting_columns, where_rows
from study import collect as collect_rows

from framework.data import Splits
from framework.detector import DetectorError, load_detector
from framework.experiment import load_splits


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
    sweep_dirs: list[Path], supervised: bool, where: list[str] = ()
) -> pd.DataFrame:
    """Measure every finished run below `sweep_dirs` that one of `where`
    (texts of `key=value,...`) picks, and return one row per run.

    A run whose files cannot be read is left out with a warning.
    """
    rows = collect_rows(sweep_dirs)
    if rows.empty:
        return pd.DataFrame()
    columns = setting_columns(rows)
    runs = rows.drop_duplicates("run_path")[["run_path", "seed", *columns]]
    if where:
        runs = where_rows(runs, list(where))
    measured, splits_of = [], {}
    for run in runs.to_dict("records"):
        run_dir = Path(run["run_path"])
        try:
            config = run_config(run_dir)
            if os.environ.get("TSAL_DATA_ROOT") and "root" in config["data"]:
                config["data"]["root"] = os.environ["TSAL_DATA_ROOT"]
            key = json.dumps([config["data"], config["seed"]], sort_keys=True)
            if key not in splits_of:
                splits_of[key] = load_splits(OmegaConf.create(config))
            figures = measure(run_dir, splits_of[key], supervised)
        except (DetectorError, OSError, ValueError, KeyError) as error:
            print(f"warning: leaving out {run_dir}: {error}", file=sys.stderr)
            continue
        measured.append({**run, **figures})
        print(f"{run_dir}: run {figures['run']:.3f}", file=sys.stderr)
    return pd.DataFrame(measured)


def table(rows: pd.DataFrame) -> pd.DataFrame:
    columns = setting_columns(rows)
    groups = [c for c in columns if rows[c].nunique() > 1] or columns[:1]
    figures = [c for c in rows.columns if c not in (*columns, "seed", "run_path")]
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
    add_where_option(parser)
    arguments = parser.parse_args(argv)
    check_sweep_dirs(arguments.sweep_dirs)
    logging.basicConfig(level=logging.WARNING)
    rows = collect(arguments.sweep_dirs, arguments.supervised, arguments.where)
    if rows.empty:
        names = ", ".join(map(str, arguments.sweep_dirs))
        raise SystemExit(
            f"no finished run below {names} matches "
            f"{arguments.where or 'any setting'}, or none could be measured"
        )
    print(table(rows).reset_index().to_markdown(index=False))


if __name__ == "__main__":
    main()
