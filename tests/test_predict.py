"""The detector a run saves, and scoring series files with it.

One small run on the real ECG5000 files trains the detector that every test
here loads. The tests write the series files from that run's test split.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import DictConfig, OmegaConf
from sklearn.base import clone
from sklearn.metrics import f1_score
from small_run import REPO, SMALL, compose_config, load_benchmark, read_rows

from framework.data import Splits
from framework.detector import (
    DetectorError,
    DetectorWriter,
    load_detector,
)
from framework.evaluation import anomaly_metrics
from framework.experiment import load_splits, run
from framework.predict import COLUMNS, main
from framework.series_files import SeriesFileError, read_csv

LENGTH = 140
# Series of the test split written to each file; enough for both labels.
N_SERIES = 60


@dataclass(frozen=True)
class TrainedRun:
    run_dir: Path
    cfg: DictConfig
    splits: Splits


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root) -> TrainedRun:
    """Run the small experiment once, for every test here to load its detector."""
    run_dir = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TSAL_DATA_ROOT", str(data_root))
        patch.setenv("TSAL_CACHE_DIR", str(run_dir / "cache"))
        cfg = compose_config(
            "+experiment=ecg5000",
            "logger=none",
            *SMALL,
            "encoder.cache=false",
            "plot=false",
        )
        run(cfg, run_dir)
        splits = load_splits(cfg)
    return TrainedRun(run_dir, cfg, splits)


def write_ucr(path: Path, classes: np.ndarray, series: np.ndarray) -> Path:
    table = np.column_stack([classes, series])
    np.savetxt(path, table, fmt="%.17g", delimiter="\t")
    return path


def write_csv(path: Path, series: np.ndarray, header: bool = True) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow([f"t{i}" for i in range(series.shape[1])])
        writer.writerows([[repr(float(value)) for value in row] for row in series])
    return path


def read_predictions(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# The saved files.


def test_run_saves_detector_files(trained):
    directory = trained.run_dir / "detector"
    for name in ("encoder.pt", "config.yaml", "classifier.joblib", "detector.json"):
        assert (directory / name).is_file(), f"{name} missing"
    metadata = json.loads((directory / "detector.json").read_text())
    assert metadata["format"] == 1
    assert metadata["length"] == LENGTH
    assert metadata["features"] == {
        "score": False,
        "profile_segments": 0,
        "mean": [],
        "std": [],
    }
    assert metadata["data"] == {"name": "ECG5000", "anomaly_classes": [3, 4, 5]}
    assert metadata["classifier"]["iteration"] == 3
    assert metadata["classifier"]["labels_used"] == 15
    assert set(metadata["versions"]) == {
        "ts-active-learning",
        "torch",
        "scikit-learn",
        "imbalanced-learn",
    }
    config = yaml.safe_load((directory / "config.yaml").read_text())
    summary = json.loads((trained.run_dir / "summary.json").read_text())
    assert config == summary["config"]


def test_detector_gives_the_final_test_metrics(trained):
    detector = load_detector(trained.run_dir)
    test = trained.splits.test
    predictions = detector.predict(test.series)

    metrics = anomaly_metrics(
        test.labels,
        predictions["label"].to_numpy(),
        predictions["anomaly_probability"].to_numpy(),
    )
    final = [row for row in read_rows(trained.run_dir) if row["split"] == "test"][-1]
    assert final["iteration"] == "3"
    for name, value in metrics.items():
        assert f"{value:.6f}" == final[name], name


def test_detector_directory_loads_like_run_directory(trained):
    series = trained.splits.test.series[:N_SERIES]
    from_run = load_detector(trained.run_dir).predict(series)
    from_directory = load_detector(trained.run_dir / "detector").predict(series)
    assert from_run.equals(from_directory)


def test_classifier_features_match_predict(trained):
    detector = load_detector(trained.run_dir)
    series = trained.splits.test.series[:N_SERIES]
    features = detector.classifier_features(series)
    assert features.shape == (N_SERIES, detector.estimator[-1].n_features_in_)
    probabilities = detector.estimator.predict_proba(features)[:, 1]
    expected = detector.predict(series)["anomaly_probability"].to_numpy()
    np.testing.assert_allclose(probabilities, expected)
    with pytest.raises(ValueError, match="length 139 .* length 140"):
        detector.classifier_features(series[:, :139])


def test_detector_rejects_other_length(trained):
    detector = load_detector(trained.run_dir)
    with pytest.raises(ValueError, match="length 139 .* length 140"):
        detector.predict(trained.splits.test.series[:5, :139])


def test_resumed_run_saves_replayed_classifier(trained, tmp_path, monkeypatch):
    # A run killed after its last iteration, before it marked itself complete:
    # resuming it replays every iteration and runs none.
    resumed = Path(shutil.copytree(trained.run_dir, tmp_path / "run"))
    summary = json.loads((resumed / "summary.json").read_text())
    summary.update(completed=False, stop_reason="running")
    (resumed / "summary.json").write_text(json.dumps(summary))
    monkeypatch.setenv("TSAL_DATA_ROOT", summary["config"]["data"]["root"])
    monkeypatch.setenv("TSAL_CACHE_DIR", str(trained.run_dir / "cache"))
    cfg = trained.cfg.copy()
    cfg.resume = True

    run(cfg, resumed)

    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["resumed_after_iteration"] == 3
    metadata = json.loads((resumed / "detector" / "detector.json").read_text())
    assert metadata["classifier"]["iteration"] == 3
    series = trained.splits.test.series[:N_SERIES]
    before = load_detector(trained.run_dir).predict(series)
    assert load_detector(resumed).predict(series).equals(before)


# The command.


def test_cli_scores_ucr_and_csv_files(trained, tmp_path):
    test = trained.splits.test
    series = test.series[:N_SERIES]
    ucr = write_ucr(tmp_path / "beats.txt", test.classes[:N_SERIES], series)
    table = write_csv(tmp_path / "beats.csv", series)
    output = tmp_path / "predictions.csv"
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}

    done = subprocess.run(
        [sys.executable, "-m", "framework.predict", str(trained.run_dir)]
        + [str(ucr), str(table), "--output", str(output)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert f"written to {output}" in done.stderr
    rows = read_predictions(output)
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == 2 * N_SERIES
    expected = load_detector(trained.run_dir).predict(series)
    for path, first_line, classes in (
        (ucr, 1, [str(c) for c in test.classes[:N_SERIES]]),
        (table, 2, [""] * N_SERIES),
    ):
        part = [row for row in rows if row["file"] == str(path)]
        assert [int(row["row"]) for row in part] == list(
            range(first_line, first_line + N_SERIES)
        )
        assert [row["class"] for row in part] == classes
        np.testing.assert_allclose(
            [float(row["anomaly_probability"]) for row in part],
            expected["anomaly_probability"],
            atol=1e-6,
        )
        np.testing.assert_allclose(
            [float(row["score"]) for row in part], expected["score"], rtol=1e-5
        )
        assert [int(row["label"]) for row in part] == expected["label"].tolist()


def test_cli_error_is_one_line(trained, tmp_path):
    path = write_ucr(tmp_path / "short.txt", np.array([1]), np.zeros((1, 139)))
    done = subprocess.run(
        [sys.executable, "-m", "framework.predict", str(trained.run_dir), str(path)],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"python -m framework.predict: error: {path}, line 1: a series of 139 "
        "values after the class label, expected 140; crop or resample every "
        "series to 140 values"
    )


def test_cli_skips_blank_csv_lines(trained, tmp_path):
    series = trained.splits.test.series[:3]
    path = write_csv(tmp_path / "plain.csv", series, header=False)
    path.write_text(path.read_text().replace("\n", "\n\n", 1))
    output = tmp_path / "out.csv"
    assert main([str(trained.run_dir), str(path), "-o", str(output)]) == 0
    assert [row["row"] for row in read_predictions(output)] == ["1", "3", "4"]


def test_format_option_overrides_suffix(trained, tmp_path):
    test = trained.splits.test
    path = write_ucr(tmp_path / "beats.dat", test.classes[:2], test.series[:2])
    output = tmp_path / "out.csv"
    arguments = [str(trained.run_dir), str(path), "-o", str(output)]
    assert main([*arguments, "--format", "ucr"]) == 0
    assert len(read_predictions(output)) == 2


GOOD_ROW = ",".join(["0.5"] * LENGTH)
GOOD_LINE = "1 " + " ".join(["0.5"] * LENGTH)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "long.csv",
            f"{GOOD_ROW}\n{GOOD_ROW},0.5\n",
            "long.csv, line 2: a series of 141 values, expected 140; if the "
            "first column is a row number, as pandas' to_csv writes by default, "
            "write the file with index=False",
        ),
        (
            "longer.csv",
            f"{GOOD_ROW}\n{GOOD_ROW},0.5,0.5\n",
            "a series of 142 values, expected 140; crop or resample every series",
        ),
        (
            "word.csv",
            f"{GOOD_ROW}\n0.5,oops{GOOD_ROW[7:]}\n",
            "word.csv, line 2, field 2: 'oops' is not a number; correct",
        ),
        (
            "gap.csv",
            f"{GOOD_ROW}\n0.5,{GOOD_ROW[7:]}\n",
            "gap.csv, line 2, field 2 is empty; fill in or drop missing values",
        ),
        (
            "nan.txt",
            f"{GOOD_LINE}\n1 NaN{GOOD_LINE[5:]}\n",
            "nan.txt, line 2, field 2: 'NaN' is not a finite number",
        ),
        (
            "label.txt",
            f"{GOOD_LINE}\nx{GOOD_LINE[1:]}\n",
            "label.txt, line 2, field 1: 'x' is not a number",
        ),
        ("empty.txt", "", "empty.txt is empty: it contains no series"),
        ("header.csv", "a,b\n", "header.csv contains no series, only the header"),
        ("beats.dat", GOOD_LINE, "'.dat' names no known format"),
    ],
)
def test_bad_file_is_rejected(trained, tmp_path, capsys, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    output = tmp_path / "out.csv"

    status = main([str(trained.run_dir), str(path), "-o", str(output)])

    assert status == 2
    assert message in capsys.readouterr().err
    assert not output.exists()


def test_missing_file_is_rejected(trained, tmp_path, capsys):
    status = main([str(trained.run_dir), str(tmp_path / "absent.txt")])
    assert status == 2
    assert "absent.txt does not exist" in capsys.readouterr().err


def test_csv_rows_of_other_lengths_rejected(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("1,2,3\n1,2\n")
    with pytest.raises(SeriesFileError, match="line 2: 2 fields where line 1 has 3"):
        read_csv(path)


# Missing and damaged detectors.


def test_absent_detector_is_reported(tmp_path, capsys):
    beats = tmp_path / "beats.txt"
    beats.write_text(GOOD_LINE)
    assert main([str(tmp_path / "nowhere"), str(beats)]) == 2
    assert "nowhere not found" in capsys.readouterr().err
    assert main([str(tmp_path), str(beats)]) == 2
    assert "contains no detector" in capsys.readouterr().err


@pytest.fixture
def detector_copy(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained.run_dir / "detector", tmp_path / "detector"))


def test_missing_classifier_names_the_file(detector_copy):
    (detector_copy / "classifier.joblib").unlink()
    with pytest.raises(DetectorError, match="classifier.joblib not found.*seed fit"):
        load_detector(detector_copy)


def test_unknown_format_is_reported(detector_copy):
    path = detector_copy / "detector.json"
    metadata = json.loads(path.read_text())
    path.write_text(json.dumps({**metadata, "format": 99}))
    with pytest.raises(DetectorError, match="detector format 99.*reads format 1"):
        load_detector(detector_copy)


def test_missing_encoder_plugin_names_target(detector_copy):
    path = detector_copy / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["encoder"]["module"]["_target_"] = "absent_plugin.Encoder"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(DetectorError, match="encoder absent_plugin.Encoder"):
        load_detector(detector_copy)


def test_new_writer_drops_earlier_classifier(trained, detector_copy):
    state = load_detector(detector_copy).module.state_dict()
    config = OmegaConf.to_container(trained.cfg, resolve=True)
    DetectorWriter(detector_copy, config, state, length=LENGTH)
    assert not (detector_copy / "classifier.joblib").exists()
    with pytest.raises(DetectorError, match="no fitted classifier.*seed fit"):
        load_detector(detector_copy)


def test_output_that_is_an_input_is_rejected(tmp_path, trained, capsys):
    recordings = tmp_path / "beats.csv"
    content = ",".join(["0.5"] * LENGTH) + "\n"
    recordings.write_text(content)
    status = main([str(trained.run_dir), str(recordings), "--output", str(recordings)])
    assert status == 2
    assert "is also an input file and would be overwritten" in capsys.readouterr().err
    assert recordings.read_text() == content


# benchmarks/headroom.py reads the detectors of finished runs.


def test_headroom_matches_run_figures(trained, tmp_path, capsys):
    headroom = load_benchmark("headroom")

    rows = headroom.collect([trained.run_dir], supervised=True)
    assert len(rows) == 1
    figures = rows.iloc[0]
    final = [row for row in read_rows(trained.run_dir) if row["split"] == "test"][-1]
    assert figures["run"] == pytest.approx(float(final["f1"]), abs=1e-6)
    assert figures["test AUPRC"] == pytest.approx(float(final["auprc"]), abs=1e-6)
    # The best test threshold is the maximum over all thresholds.
    assert figures["best test threshold"] >= figures["validation threshold"]
    # The same resampler and classifier, fitted on every pool series.
    detector = load_detector(trained.run_dir)
    pool, test = trained.splits.pool, trained.splits.test
    everything = clone(detector.estimator).fit(
        detector.classifier_features(pool.series), pool.labels
    )
    predicted = everything.predict(detector.classifier_features(test.series))
    assert figures["all pool labels"] == pytest.approx(
        f1_score(test.labels, predicted, zero_division=0)
    )
    assert "run" in headroom.table(rows).columns
    assert headroom.collect([trained.run_dir], False, ["resampler=smote"]).empty
    broken = tmp_path / "broken"
    shutil.copytree(trained.run_dir, broken, ignore=shutil.ignore_patterns("cache"))
    shutil.rmtree(broken / "detector")
    assert headroom.collect([broken], False).empty
    assert f"leaving out {broken}" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="'sampler' is not a choice"):
        headroom.collect([trained.run_dir], False, ["sampler=smote"])
