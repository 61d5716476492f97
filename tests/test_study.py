"""benchmarks/study.py: the choices a curve names, and bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from small_run import load_benchmark

study = load_benchmark("study")

COLUMNS = ["classifier", "resampler", "query", "features", "encoder", "classifier.C"]


def test_curve_names_its_choices():
    name, choices = study.parse_curve(
        "paper, 10 seeds:resampler=renn, query=margin,classifier.C=3", COLUMNS
    )
    assert name == "paper, 10 seeds"
    assert choices == {"resampler": "renn", "query": "margin", "classifier.C": "3"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("resampler=renn", "is not a name, a colon and choices"),
        (":resampler=renn", "is not a name, a colon and choices"),
        ("paper:", "is not a name, a colon and choices"),
        ("paper:resampler", "'resampler' is not key=value"),
        ("paper:sampler=renn", "'sampler' is not a choice of these runs"),
    ],
)
def test_bad_curve_is_named(text, message):
    with pytest.raises(SystemExit, match=message):
        study.parse_curve(text, COLUMNS)


def test_curve_rows_compare_as_text():
    rows = pd.DataFrame({"resampler": ["renn", "smote"], "classifier.C": ["3", "3.0"]})
    picked = study.curve_rows(rows, {"resampler": "renn", "classifier.C": "3"})
    assert list(picked.index) == [0]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--curve", "a:query=margin"], "--curve needs --figure"),
        (["--figure", "curves.png"], "--figure needs at least one --curve"),
        ([], "does not exist"),
    ],
)
def test_bad_arguments_stop_before_reading_runs(tmp_path, arguments, message):
    with pytest.raises(SystemExit, match=message):
        study.main([str(tmp_path / "missing"), *arguments])


def test_label_count_no_run_reached_is_named():
    rows = pd.DataFrame(
        {
            **{column: ["x", "x"] for column in COLUMNS[:5]},
            "labels_used": [10, 20],
            "split": ["validation", "test"],
            "f1": [0.5, 0.5],
            "seed": [0, 0],
        }
    )
    with pytest.raises(SystemExit, match=r"no run reached \[30\] labels"):
        study.table(rows, [10, 30])


def fake_sweep(root: Path, **config) -> Path:
    """Two finished runs of two seeds, as the framework writes them."""
    for seed in (0, 1):
        run = root / str(seed)
        run.mkdir(parents=True)
        choices = {
            "classifier": "svm",
            "resampler": "renn",
            "query": "margin",
            "features": "code",
            "encoder": "lstm_ae",
        }
        summary = {
            "completed": True,
            "choices": choices,
            "config": {"seed": seed, "loop": {"random_state": seed}, **config},
        }
        (run / "summary.json").write_text(json.dumps(summary))
        pd.DataFrame(
            {
                "iteration": [0, 0, 1, 1],
                "labels_used": [0, 0, 10, 10],
                "split": ["validation", "test"] * 2,
                "f1": [0.2, 0.3, 0.4 + seed / 10, 0.5],
            }
        ).to_csv(run / "results.csv", index=False)
    return root


def test_figure_leaves_out_a_curve_without_runs(tmp_path, capsys):
    sweep = fake_sweep(tmp_path / "sweep")
    figure = tmp_path / "figures" / "curves.png"
    study.main(
        [
            str(sweep),
            *("--labels", "10", "--figure", str(figure)),
            *("--curve", "paper:resampler=renn", "--curve", "other:resampler=smote"),
        ]
    )
    out, err = capsys.readouterr()
    assert "0.450 ± 0.071" in out
    assert "'other'" in err
    assert "left out" in err
    assert figure.stat().st_size > 10_000


def test_figure_without_any_matching_curve_stops(tmp_path):
    sweep = fake_sweep(tmp_path / "sweep")
    with pytest.raises(SystemExit, match="no finished run matches any --curve"):
        study.main(
            [str(sweep), "--labels", "10", "--figure", str(tmp_path / "c.png")]
            + ["--curve", "other:resampler=smote"]
        )


def test_key_differing_between_directories_splits(tmp_path):
    first = fake_sweep(tmp_path / "c1", classifier={"C": 1.0, "random_state": 0})
    second = fake_sweep(tmp_path / "c3", classifier={"C": 3, "random_state": 0})
    rows = study.collect([first, second])
    assert sorted(rows["classifier.C"].unique()) == ["1.0", "3"]
    assert len(study.table(rows, [10])) == 2


def test_where_keeps_only_the_named_settings(tmp_path, capsys):
    sweep = fake_sweep(tmp_path / "sweep")
    study.main([str(sweep), "--labels", "10", "--where", "resampler=renn"])
    assert "0.450 ± 0.071" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no finished run matches"):
        study.main([str(sweep), "--labels", "10", "--where", "resampler=smote"])
    with pytest.raises(SystemExit, match="'sampler' is not a choice"):
        study.main([str(sweep), "--labels", "10", "--where", "sampler=renn"])


def test_seeds_keep_only_those_runs(tmp_path, capsys):
    sweep = fake_sweep(tmp_path / "sweep")
    study.main([str(sweep), "--labels", "10", "--seeds", "1"])
    assert "0.500 (1 seed)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"no finished run has a seed in \[7\]"):
        study.main([str(sweep), "--labels", "10", "--seeds", "7"])


def test_cell_that_fewer_seeds_reached_says_so(tmp_path, capsys):
    sweep = fake_sweep(tmp_path / "sweep")
    results = sweep / "1" / "results.csv"
    early = pd.read_csv(results)
    early[early["labels_used"] == 0].to_csv(results, index=False)
    study.main([str(sweep), "--labels", "0", "10"])
    out = capsys.readouterr().out
    assert "0.400 (1 seed)" in out
    assert "0.200 ± 0.000" in out


def test_run_below_two_directories_counts_once(tmp_path):
    sweep = fake_sweep(tmp_path / "sweep")
    rows = study.collect([sweep, tmp_path, sweep])
    assert rows["run_path"].nunique() == 2
    assert len(rows) == 8


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("curves", "is not an image file name"),
        ("curves.txt", "is not an image file name"),
        ("", "is not an image file name"),
        ("afile/curves.png", "afile is a file, not a directory"),
    ],
)
def test_bad_figure_path_stops_before_reading_runs(tmp_path, name, message):
    (tmp_path / "afile").write_text("")
    with pytest.raises(SystemExit, match=message):
        study.main(
            [str(tmp_path / "missing"), "--figure", str(tmp_path / name)]
            + ["--curve", "a:query=margin"]
        )


def test_curve_over_several_settings_is_flagged(tmp_path, capsys):
    first = fake_sweep(tmp_path / "c1", classifier={"C": 1.0})
    second = fake_sweep(tmp_path / "c3", classifier={"C": 3})
    study.main(
        [str(first), str(second), "--labels", "10"]
        + ["--figure", str(tmp_path / "c.png"), "--curve", "all:resampler=renn"]
    )
    assert "pools 2 runs per seed" in capsys.readouterr().err


def test_where_or_seed_without_runs_is_flagged(tmp_path, capsys):
    sweep = fake_sweep(tmp_path / "sweep")
    study.main(
        [str(sweep), "--labels", "10", "--seeds", "0", "5"]
        + ["--where", "resampler=renn", "--where", "resampler=smot"]
    )
    err = capsys.readouterr().err
    assert "no finished run has seed(s) [5]" in err
    assert "no finished run matches --where resampler=smot" in err
