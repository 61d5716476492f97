"""The command line end to end on the real ECG5000 files, with a small encoder.

These runs train for one or two epochs: they check that the stages fit
together and that every output is written, not the figures of the method.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from small_run import SMALL, cli, read_rows, start_cli

from framework.experiment import run

REPO = Path(__file__).resolve().parents[1]


def test_main_command_writes_every_output_and_tracks_offline(tmp_path, data_root):
    run_dir = tmp_path / "run"
    done = cli(
        run_dir,
        data_root,
        "classifier=svm",
        "resampler=renn",
        "logger=wandb",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
    )
    assert done.returncode == 0, done.stderr[-3000:]

    rows = read_rows(run_dir)
    assert [(row["iteration"], row["split"]) for row in rows] == [
        (str(i), split) for i in range(4) for split in ("validation", "test")
    ]
    labels_used = [int(row["labels_used"]) for row in rows[::2]]
    assert labels_used == [0, 5, 10, 15]
    assert all(0 <= float(row["f1"]) <= 1 for row in rows)

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["completed"] is True
    assert summary["stop_reason"] == "completed 3 iterations"
    assert summary["data"] == {
        "pool": {"series": 3500, "anomalies": 220},
        "validation": {"series": 750, "anomalies": 47},
        "test": {"series": 750, "anomalies": 47},
    }
    assert summary["final"]["labels_used"] == 15
    assert summary["resampler_fallbacks"] >= 0
    assert set(summary["timings"]) == {
        "data",
        "encoder",
        "seed",
        "loop",
        "plot",
    }
    for line in ("initial_threshold", "best_threshold", "best_on_test"):
        assert 0 <= summary["references"][line]["test_f1"] <= 1
    assert summary["config"]["classifier"]["_target_"] == "sklearn.svm.SVC"
    assert (run_dir / "learning_curve.png").stat().st_size > 10_000

    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1, list((run_dir / "wandb").iterdir())
    assert list(offline_runs[0].glob("*.wandb"))

    log = (run_dir / "framework.log").read_text()
    assert "iteration 3/3" in log
    assert "autoencoder reference test F1" in log
    assert summary["encoder"]["cache"] == "stored"


def test_second_run_loads_encoder_and_repeats_results(tmp_path, data_root):
    first = cli(tmp_path / "first", data_root, "logger=none", cache=tmp_path)
    second = cli(tmp_path / "second", data_root, "logger=none", cache=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]

    summary = json.loads((tmp_path / "second" / "summary.json").read_text())
    assert summary["encoder"]["cache"] == "loaded"
    assert (
        "encoder loaded from the cache"
        in (tmp_path / "second" / "framework.log").read_text()
    )
    first_rows = (tmp_path / "first" / "results.csv").read_bytes()
    assert (tmp_path / "second" / "results.csv").read_bytes() == first_rows


def test_unknown_choice_is_refused_before_training(tmp_path, data_root):
    done = cli(tmp_path / "run", data_root, "classifier=forest", "logger=none")
    assert done.returncode != 0
    assert "classifier" in done.stderr
    assert "forest" in done.stderr
    assert "svm" in done.stderr, "the error should list the available choices"


class FailingOracle:
    """Label the first query round, then fail as a lost annotator would."""

    def __init__(self, pool) -> None:
        self.labels = pool.labels
        self.calls = 0

    def __call__(self, indices):
        self.calls += 1
        if self.calls > 1:
            raise ConnectionError("annotator went away")
        return self.labels[indices]


def test_failed_run_keeps_finished_iterations(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("TSAL_DATA_ROOT", str(data_root))
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "+experiment=ecg5000",
                "logger=none",
                *SMALL,
                "trainer.max_epochs=1",
                f"oracle._target_={__name__}.FailingOracle",
            ],
        )
    with pytest.raises(ConnectionError, match="annotator went away"):
        run(cfg, tmp_path)

    rows = read_rows(tmp_path)
    assert {row["iteration"] for row in rows} == {"0", "1"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["completed"] is False
    assert "annotator went away" in summary["stop_reason"]
    assert summary["final"]["labels_used"] == 5
    assert "encoder" in summary["timings"]


def test_sigterm_keeps_finished_iterations(tmp_path, data_root):
    run_dir = tmp_path / "run"
    job = start_cli(
        run_dir,
        data_root,
        "loop.iterations=300",
        "loop.n_instances=10",
        "logger=none",
        output=subprocess.DEVNULL,
    )
    log = run_dir / "framework.log"
    deadline = time.monotonic() + 300
    while "iteration 5/300" not in (log.read_text() if log.exists() else ""):
        assert job.poll() is None, f"the run ended early, code {job.returncode}"
        assert time.monotonic() < deadline, "the loop never reached iteration 5"
        time.sleep(0.2)
    job.send_signal(signal.SIGTERM)
    job.wait(timeout=60)

    assert job.returncode == 143
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["completed"] is False
    assert summary["stop_reason"] == "interrupted by SIGTERM"
    rows = read_rows(run_dir)
    finished = summary["final"]["iteration"]
    assert finished >= 5
    assert [int(row["iteration"]) for row in rows] == [
        i for i in range(finished + 1) for _ in ("validation", "test")
    ]
