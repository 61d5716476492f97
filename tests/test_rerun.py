"""Rerunning into an output directory: finished runs are kept, others redone."""

from __future__ import annotations

import json

import pytest
from small_run import TINY_ENCODER, compose_config

from framework.experiment import finished_summary, run, stop_reason

SMALL = [
    "+experiment=ecg5000",
    "logger=none",
    *TINY_ENCODER,
    "loop.iterations=2",
    "loop.n_instances=5",
]


def small_config(*overrides: str):
    return compose_config(*SMALL, *overrides)


def test_finished_run_is_not_recomputed(tmp_path, data_env, caplog):
    first = run(small_config(), tmp_path)
    results = (tmp_path / "results.csv").stat().st_mtime_ns
    caplog.clear()
    caplog.set_level("INFO")

    again = run(small_config(), tmp_path)

    assert again == json.loads((tmp_path / "summary.json").read_text())
    assert again["final"] == first["final"]
    assert (tmp_path / "results.csv").stat().st_mtime_ns == results
    assert "already contains this finished run" in caplog.text


def test_other_config_in_finished_dir_is_rejected(tmp_path, data_env):
    run(small_config(), tmp_path)
    with pytest.raises(ValueError, match="loop.iterations.*skip_finished=false"):
        run(small_config("loop.iterations=3"), tmp_path)


def test_skip_finished_false_reruns(tmp_path, data_env):
    run(small_config(), tmp_path)
    summary = run(small_config("loop.iterations=3", "skip_finished=false"), tmp_path)
    assert summary["final"]["iteration"] == 3


def test_unfinished_run_starts_over(tmp_path, data_env):
    (tmp_path / "results.csv").write_text("iteration,split\n7,test\n")
    (tmp_path / "summary.json").write_text('{"completed": false}')
    run(small_config(), tmp_path)
    iterations = [
        line.split(",")[0]
        for line in (tmp_path / "results.csv").read_text().splitlines()[1:]
    ]
    assert iterations == ["0", "0", "1", "1", "2", "2"]


def test_location_keys_do_not_block_reuse(tmp_path, data_env):
    run(small_config(), tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    summary["config"]["data"]["root"] = "/moved/elsewhere"
    assert finished_summary(tmp_path, summary["config"]) is not None


def test_speed_settings_do_not_block_reuse(tmp_path, data_env):
    first = run(small_config(), tmp_path)
    again = run(small_config("threads=1", "plot=false"), tmp_path)
    assert again["final"] == first["final"]


def test_choices_name_plugins_without_hydra(tmp_path, data_env):
    summary = run(small_config("classifier=knn"), tmp_path)
    assert summary["choices"]["classifier"] == "KNeighborsClassifier"
    assert summary["choices"]["logger"] == "NullTracker"


def test_setup_failure_is_recorded(tmp_path, data_env, caplog):
    # Hydra wraps the seeder's ValueError in its InstantiationException.
    with pytest.raises(Exception, match="seeder.k=-1"):
        run(small_config("seeder.k=-1"), tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["completed"] is False
    assert summary["stop_reason"].startswith("failed: ")
    assert "seeder.k=-1 is invalid" in summary["stop_reason"]
    assert "run stopped" in caplog.text


def test_interrupt_is_not_a_failure():
    assert stop_reason(KeyboardInterrupt()) == "interrupted"
    assert stop_reason(SystemExit(1)) == "interrupted"
    assert stop_reason(OSError("disk full")) == "failed: OSError: disk full"
