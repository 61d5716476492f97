"""A small real sweep through the command line: report and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from small_run import TINY_ENCODER

from framework.report import collect, report, varying_settings
from framework.report import main as report_main
from framework.sweeps import covering_jobs

REPO = Path(__file__).resolve().parents[1]
SWEEP = [
    "-m",
    "+experiment=ecg5000",
    "logger=none",
    "classifier=svm,knn",
    "resampler=none,rus",
    "repeat=0,1",
    *TINY_ENCODER,
    "loop.iterations=3",
    "loop.n_instances=5",
]


def framework_cli(arguments: list[str], data_root: Path, cache: Path):
    """Run `python -m framework` with `arguments` on the real files."""
    environment = {
        **os.environ,
        "TSAL_DATA_ROOT": str(data_root),
        "TSAL_CACHE_DIR": str(cache),
    }
    return subprocess.run(
        [sys.executable, "-m", "framework", *arguments],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )


def sweep(sweep_dir: Path, data_root: Path, cache: Path):
    return framework_cli([*SWEEP, f"hydra.sweep.dir={sweep_dir}"], data_root, cache)


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory, data_root) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    done = sweep(root / "sweep", data_root, root / "cache")
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def test_sweep_trains_encoder_once(finished_sweep):
    origins = [
        json.loads(path.read_text())["encoder"]["cache"]
        for path in sorted((finished_sweep / "sweep").glob("*/summary.json"))
    ]
    assert len(origins) == 8
    assert origins.count("stored") == 1
    assert origins.count("loaded") == 7


def test_report_of_sweep(finished_sweep, tmp_path):
    result = report(finished_sweep / "sweep", tmp_path)
    assert (result["runs"], result["finished"], result["unfinished"]) == (8, 8, 0)

    rows = pd.read_csv(tmp_path / "runs.csv")
    assert len(rows) == 8 * 4 * 2
    assert set(rows["classifier"]) == {"svm", "knn"}
    assert set(rows["resampler"]) == {"none", "rus"}
    assert set(rows["repeat"]) == {0, 1}

    table = (tmp_path / "final_f1.md").read_text()
    body = [line for line in table.splitlines() if line.startswith("| ")][1:]
    assert len(body) == 4
    means = [float(line.split("|")[3].split("±")[0]) for line in body]
    assert means == sorted(means, reverse=True)
    assert "best test threshold (upper bound)" in table
    assert (tmp_path / "learning_curves.png").stat().st_size > 20_000


def test_report_counts_unfinished_runs(finished_sweep, tmp_path):
    copy = tmp_path / "partial"
    subprocess.run(["cp", "-r", str(finished_sweep / "sweep"), str(copy)], check=True)
    summary_path = copy / "0" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["completed"] = False
    summary_path.write_text(json.dumps(summary))

    result = report(copy, tmp_path / "out")

    assert (result["finished"], result["unfinished"]) == (7, 1)
    rows = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert not rows[rows["run"] == "0"]["completed"].any()
    table = (tmp_path / "out" / "final_f1.md").read_text().splitlines()
    header = [cell.strip() for cell in table[0].split("|")]
    runs_column = header.index("runs")
    assert sum(int(line.split("|")[runs_column]) for line in table[2:6]) == 7


def test_rerun_of_sweep_redoes_only_unfinished(finished_sweep, data_root):
    sweep_dir = finished_sweep / "sweep"
    summary_path = sweep_dir / "3" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["completed"] = False
    summary_path.write_text(json.dumps(summary))
    untouched = (sweep_dir / "5" / "results.csv").stat().st_mtime_ns

    done = sweep(sweep_dir, data_root, finished_sweep / "cache")

    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(summary_path.read_text())["completed"] is True
    assert (sweep_dir / "5" / "results.csv").stat().st_mtime_ns == untouched
    skipped = sum(
        "already contains this finished run"
        in (path.parent / "framework.log").read_text()
        for path in sweep_dir.glob("*/summary.json")
    )
    assert skipped == 7


def test_covering_jobs_cover_paper_grid():
    grid = [
        (f"classifier={c}", f"resampler={r}", f"repeat={n}")
        for c in range(5)
        for r in range(15)
        for n in range(20)
    ]

    picked = covering_jobs(grid)

    assert picked[0] == grid[0]
    assert len(picked) == 20
    assert set().union(*picked) == set().union(*grid)


def test_covering_jobs_without_overrides():
    assert covering_jobs([[], []]) == [[]]
    assert covering_jobs([]) == []


def test_unknown_option_stops_sweep_early(tmp_path, data_root):
    """The sweep checks fewer jobs, but still every value, before it launches."""
    sweep_dir = tmp_path / "sweep"
    done = framework_cli(
        [
            *("-m", "+experiment=ecg5000", "logger=none", "classifier=svm,knn"),
            *("repeat=0,1,2", "resampler=none,rus,no_such_resampler"),
            f"hydra.sweep.dir={sweep_dir}",
        ],
        data_root,
        tmp_path / "cache",
    )

    assert done.returncode != 0
    assert "no_such_resampler" in done.stderr
    assert (
        "checking the configs of 3 of the 18 jobs in this batch, which contain"
        in done.stdout + done.stderr
    )
    assert not [path for path in sweep_dir.iterdir() if path.is_dir()]


def test_report_command_rejects_empty_dir(tmp_path, capsys):
    assert report_main([str(tmp_path)]) == 2
    assert "no runs found" in capsys.readouterr().err


def test_report_command_rejects_missing_dir(tmp_path, capsys):
    assert report_main([str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_report_splits_runs_by_swept_plugin_setting(tmp_path, data_root):
    """A swept config key that is not a group choice becomes a column."""
    sweep_dir = tmp_path / "sweep"
    done = framework_cli(
        [
            *("-m", "+experiment=ecg5000"),
            *("logger=none", "plot=false", "classifier=knn", "resampler=none"),
            "classifier.n_neighbors=3,7",
            *TINY_ENCODER,
            *("loop.iterations=2", "loop.n_instances=5"),
            f"hydra.sweep.dir={sweep_dir}",
        ],
        data_root,
        tmp_path / "cache",
    )
    assert done.returncode == 0, done.stderr[-3000:]

    report(sweep_dir, tmp_path / "out")

    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert sorted(runs["classifier.n_neighbors"].unique()) == [3, 7]
    table = (tmp_path / "out" / "final_f1.md").read_text().splitlines()
    assert "| classifier.n_neighbors |" in table[0]
    assert len([line for line in table[2:] if line.startswith("| knn |")]) == 2


def test_random_state_keys_do_not_split():
    runs = [{"classifier": "svm", "resampler": "renn"}] * 3
    configs = [
        {
            "seed": str(seed),
            "loop.random_state": str(1000 + seed),
            "classifier.random_state": str(1000 + seed),
            "classifier.C": "1.0",
            "query.target": target,
        }
        for seed, target in ((0, "0.1"), (1, "0.1"), (2, "0.3"))
    ]
    assert varying_settings(configs, runs) == ["query.target"]


def test_plugin_key_splits_within_choice():
    runs = [
        {"classifier": "svm", "resampler": "smote"},
        {"classifier": "svm", "resampler": "smote"},
        {"classifier": "gnb", "resampler": "smote"},
    ]
    configs = [
        {
            "loop.random_state": "7",
            "classifier.C": "1.0",
            "classifier.random_state": "7",
        },
        {"loop.random_state": "8", "classifier.C": "3", "classifier.random_state": "8"},
        {"loop.random_state": "9"},
    ]
    assert varying_settings(configs, runs) == ["classifier.C"]
    # Another choice with other keys is no reason to split.
    assert varying_settings(configs[1:], runs[1:]) == []


def test_collect_leaves_out_damaged_run_files(tmp_path, caplog):
    def write_run(name: str, summary: str, results: str | None):
        run = tmp_path / name
        run.mkdir()
        (run / "summary.json").write_text(summary)
        if results is not None:
            (run / "results.csv").write_text(results)

    finished = json.dumps({"completed": True, "choices": {}, "config": {"seed": 0}})
    write_run("good", finished, "labels_used,split,f1\n0,test,0.5\n")
    write_run("empty_results", finished, "")
    write_run("no_f1", finished, "labels_used,split\n0,test\n")
    write_run("null_summary", "null", "labels_used,split,f1\n0,test,0.5\n")
    rows, runs = collect(tmp_path)
    assert list(rows["run"].unique()) == ["good"]
    assert sorted(runs["run"]) == ["empty_results", "good", "no_f1"]
    assert "empty_results" in caplog.text
    assert "without the column(s) f1" in caplog.text
    assert "summary.json contains no summary object" in caplog.text
