"""Summarise a sweep: tidy CSV, learning-curve figure and table of final F1.

    python -m framework.report multirun/2026-12-04/10-00-00

reads every run below the directory (each `summary.json` with its
`results.csv`), also those of a sweep still running or stopped half way,
and writes into the directory (or `--out`):

- `runs.csv`: one row per run, iteration and split, with the run's
  classifier, resampler, query, encoder, features, seeder, data, seed and
  repeat;
- `learning_curves.png`: test F1 against oracle labels used, one panel per
  classifier, one line per resampler with a band of one standard deviation
  over seeds and repeats, and the autoencoder's reference lines;
- `final_f1.md`: mean ± standard deviation of the test and validation F1
  after the last iteration, per classifier and resampler, best test F1
  first.

When the sweep also varies the query strategy, encoder, features, seeder or
data set, those choices split the table's rows and the figure's lines as
well.

Only finished runs enter the figure and the table; `runs.csv` keeps the rows
of unfinished ones with `completed` false.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from framework.outputs import REFERENCE_LABELS, write_atomic
from framework.rerun import NON_RESULT_KEYS

log = logging.getLogger(__name__)

RUN_COLUMNS = (
    "classifier",
    "resampler",
    "query",
    "encoder",
    "features",
    "seeder",
    "data",
    "seed",
    "repeat",
)
# Choices besides classifier and resampler that split the table and the
# figure's lines when they vary within a sweep; seed and repeat never do.
OTHER_CHOICES = ("query", "encoder", "features", "seeder", "data")
# Config keys that never split runs: the repeat axes, and those that change
# where files go or how fast a run is but not its results.
UNSPLIT_KEYS = ("seed", "repeat", "loop.random_state", *NON_RESULT_KEYS)
# The value of a swept config key in runs whose config lacks it.
UNSET = "-"


def collect(sweep_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every run below `sweep_dir`.

    Returns:
        The per-iteration rows of all runs, and one row per run with its
        choices, whether it finished, and its reference lines.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep directory {sweep_dir} does not exist")
    rows, runs, configs = [], [], []
    for summary_path in sorted(sweep_dir.rglob("summary.json")):
        run_dir = summary_path.parent
        try:
            summary = json.loads(summary_path.read_text())
        except ValueError as error:
            log.warning("skipping %s: unreadable summary.json (%s)", run_dir, error)
            continue
        if not isinstance(summary, dict):
            log.warning("skipping %s: summary.json contains no summary object", run_dir)
            continue
        config = summary.get("config", {})
        choices = summary.get("choices", {})
        run = {
            "run": str(run_dir.relative_to(sweep_dir)),
            "classifier": choices.get("classifier"),
            "resampler": choices.get("resampler"),
            "query": choices.get("query"),
            "encoder": choices.get("encoder"),
            "features": choices.get("features"),
            "seeder": choices.get("seeder"),
            "data": choices.get("data"),
            "seed": config.get("seed"),
            "repeat": config.get("repeat", 0),
            "completed": bool(summary.get("completed")),
        }
        for name, reference in summary.get("references", {}).items():
            run[f"{name}_test_f1"] = reference.get("test_f1")
        runs.append(run)
        configs.append(flat_config(config))
        rows.append(_read_results(run_dir / "results.csv", run["completed"]))

    settings = varying_settings(configs, runs)
    frames = []
    for run, config, results in zip(runs, configs, rows, strict=True):
        for key in settings:
            run[key] = config.get(key, UNSET)
        if results is not None:
            for column in ("run", *RUN_COLUMNS, *settings, "completed"):
                results.insert(len(results.columns), column, run[column])
            frames.append(results)
    rows_frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return rows_frame, pd.DataFrame(runs)


def _read_results(path: Path, completed: bool) -> pd.DataFrame | None:
    """Read a run's results.csv, or return None when it is missing or lacks
    the columns the report needs. A finished run also gets a warning."""
    try:
        results = pd.read_csv(path)
    except FileNotFoundError:
        problem = "missing"
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        problem = f"unreadable ({error})"
    else:
        missing = {"labels_used", "split", "f1"} - set(results.columns)
        if not missing:
            return results
        problem = f"without the column(s) {', '.join(sorted(missing))}"
    if completed:
        log.warning("leaving out %s: %s", path, problem)
    return None


def varying_settings(configs: list[dict[str, str]], runs: list[dict]) -> list[str]:
    """Return the config keys whose values differ between runs, for example a
    plugin parameter swept as `query.target=0.1,0.3`.

    A key of a config group (`classifier.C`) counts only when it differs
    between runs with the same choice of that group (the choice column
    already separates `svm` from `knn`). `UNSPLIT_KEYS` never count, nor do keys
    that follow `loop.random_state`. In the returned frames these are the
    only column names with a dot.
    """
    groups = ("classifier", "resampler", *OTHER_CHOICES)
    keys = sorted(set().union(*configs)) if configs else []

    def differs(key: str) -> bool:
        group = key.split(".")[0]
        values: dict[Any, set] = {}
        for run, config in zip(runs, configs, strict=True):
            choice = run.get(group) if group in groups else None
            values.setdefault(choice, set()).add(config.get(key))
        return any(len(seen) > 1 for seen in values.values())

    def follows_random_state(key: str) -> bool:
        # A plugin's `random_state: ${loop.random_state}` varies with seed and
        # repeat only.
        return all(
            config[key] == config.get("loop.random_state")
            for config in configs
            if key in config
        )

    return [
        key
        for key in keys
        if "." in key
        and not any(key == k or key.startswith(f"{k}.") for k in UNSPLIT_KEYS)
        and differs(key)
        and not follows_random_state(key)
    ]


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Return `config` as dotted keys with text values: {"classifier.C": "1.0"}."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def varying_choices(rows: pd.DataFrame) -> list[str]:
    """Return the group keys: classifier, resampler, every other varying choice
    and every varying config key."""
    others = [
        column
        for column in OTHER_CHOICES
        if column in rows and rows[column].nunique(dropna=False) > 1
    ]
    settings = [column for column in rows.columns if "." in column]
    return ["classifier", "resampler", *others, *settings]


def final_f1_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of the last iteration's F1, best test F1 first.

    Runs are grouped by classifier, resampler and any other choice that
    varies in the sweep (query strategy, encoder, ...). Validation F1 is
    given next to test F1, because settings should be chosen on validation.
    """
    finished = rows[rows["completed"]]
    last_iteration = finished.groupby("run")["iteration"].transform("max")
    last = finished[finished["iteration"] == last_iteration]
    keys = varying_choices(rows)
    f1 = last.pivot_table(index=["run", *keys], columns="split", values="f1")
    labels = last[last["split"] == "test"].set_index("run")["labels_used"]
    f1 = f1.reset_index().merge(labels, left_on="run", right_index=True)
    table = (
        f1.groupby(keys)
        .agg(
            mean_f1=("test", "mean"),
            std_f1=("test", "std"),
            mean_validation_f1=("validation", "mean"),
            std_validation_f1=("validation", "std"),
            runs=("test", "size"),
            labels_used=("labels_used", "mean"),
        )
        .reset_index()
        .sort_values("mean_f1", ascending=False, ignore_index=True)
    )
    return table


def markdown_table(table: pd.DataFrame, runs: pd.DataFrame) -> str:
    keys = [
        column
        for column in table.columns
        if column in ("classifier", "resampler", *OTHER_CHOICES) or "." in column
    ]
    lines = [
        "| "
        + " | ".join(keys)
        + " | test F1 (mean ± std) | validation F1 | runs | labels used |",
        "|" + "---|" * (len(keys) + 4),
    ]
    for row in table.to_dict("records"):
        lines.append(
            "| "
            + " | ".join(str(row[key]) for key in keys)
            + f" | {_mean_std(row['mean_f1'], row['std_f1'])}"
            + f" | {_mean_std(row['mean_validation_f1'], row['std_validation_f1'])}"
            + f" | {row['runs']} | {row['labels_used']:.0f} |"
        )
    finished = runs[runs["completed"]]
    references = []
    for name, label in REFERENCE_LABELS.items():
        column = f"{name}_test_f1"
        if column in finished and finished[column].notna().any():
            values = finished[column].dropna()
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            references.append(f"- {label}: {values.mean():.3f} ± {spread:.3f}")
    text = "\n".join(lines) + "\n"
    if references:
        text += "\nTest F1 of the autoencoder alone, over the same runs:\n\n"
        text += "\n".join(references) + "\n"
    return text


def _mean_std(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {0.0 if np.isnan(std) else std:.3f}"


def plot_mean_and_band(panel: Any, rows: pd.DataFrame, colour: Any, label: str):
    """Plot the mean F1 of `rows` per label count with a band of one std."""
    stats = rows.groupby("labels_used")["f1"].agg(["mean", "std"])
    band = stats["std"].fillna(0.0)
    panel.plot(stats.index, stats["mean"], color=colour, label=label)
    panel.fill_between(
        stats.index,
        stats["mean"] - band,
        stats["mean"] + band,
        color=colour,
        alpha=0.15,
    )


def plot_sweep(rows: pd.DataFrame, runs: pd.DataFrame, path: Path) -> None:
    """Draw test F1 against labels used, one panel per classifier."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = rows[(rows["split"] == "test") & rows["completed"]]
    classifiers = sorted(test["classifier"].unique())
    columns = min(3, len(classifiers))
    lines = -(-len(classifiers) // columns)
    figure, axes = plt.subplots(
        lines,
        columns,
        figsize=(5 * columns, 3.8 * lines),
        sharey=True,
        squeeze=False,
    )
    finished = runs[runs["completed"]]
    colours = plt.get_cmap("tab20")
    line_keys = varying_choices(rows)[1:]
    line_names = sorted(
        test[line_keys].drop_duplicates().itertuples(index=False, name=None)
    )
    for panel, classifier in zip(axes.flat, classifiers, strict=False):
        subset = test[test["classifier"] == classifier]
        for index, name in enumerate(line_names):
            same = [
                subset[key] == value for key, value in zip(line_keys, name, strict=True)
            ]
            curve = subset[np.logical_and.reduce(same)]
            if curve.empty:
                continue
            label = ", ".join(str(part) for part in name)
            plot_mean_and_band(panel, curve, colours(index % 20), label)
        for (name, label), style in zip(
            REFERENCE_LABELS.items(), ("--", "-.", ":"), strict=True
        ):
            column = f"{name}_test_f1"
            if column in finished and finished[column].notna().any():
                value = finished[column].mean()
                panel.axhline(value, color="k", linestyle=style, label=label)
        panel.set_title(classifier)
        panel.set_xlabel("oracle labels used")
        panel.set_ylim(0, 1)
        panel.grid(alpha=0.3)
    for panel in axes.flat[len(classifiers) :]:
        panel.set_visible(False)
    for panel in axes[:, 0]:
        panel.set_ylabel("test F1 of the anomaly class")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=4, fontsize="small")
    figure.tight_layout(rect=(0, 0.04 + 0.03 * (len(labels) // 4), 1, 1))
    figure.savefig(path, dpi=120)
    plt.close(figure)


def report(sweep_dir: str | Path, out_dir: str | Path | None = None) -> dict:
    """Write runs.csv, learning_curves.png and final_f1.md for a sweep.

    Returns:
        Counts of runs found, finished and unfinished, and the output paths.
    """
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    rows, runs = collect(sweep_dir)
    if runs.empty:
        raise FileNotFoundError(
            f"no runs found below {sweep_dir}: it contains no summary.json; pass "
            "the directory of a sweep (multirun/<date>/<time>) or of one run"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    finished = int(runs["completed"].sum())
    counts = {
        "runs": len(runs),
        "finished": finished,
        "unfinished": len(runs) - finished,
    }
    log.info(
        "found %d runs below %s: %d finished, %d unfinished",
        counts["runs"],
        sweep_dir,
        counts["finished"],
        counts["unfinished"],
    )
    paths = {"runs_csv": out_dir / "runs.csv"}
    write_atomic(paths["runs_csv"], rows.to_csv(index=False))
    if finished:
        table = final_f1_table(rows)
        paths["table"] = out_dir / "final_f1.md"
        write_atomic(paths["table"], markdown_table(table, runs))
        paths["figure"] = out_dir / "learning_curves.png"
        plot_sweep(rows, runs, paths["figure"])
    else:
        log.warning("no finished run yet: only runs.csv was written")
    return {**counts, **{name: str(path) for name, path in paths.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m framework.report",
        description="Summarise the runs of a sweep (or a single run directory).",
    )
    parser.add_argument("sweep_dir", help="directory holding the runs")
    parser.add_argument(
        "--out", help="where to write the report (default: the sweep directory)"
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = report(arguments.sweep_dir, arguments.out)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name in ("runs_csv", "table", "figure"):
        if name in result:
            print(f"{name}: {result[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
