"""Compare settings of a study: F1 table at given label counts, learning curves.

    python benchmarks/study.py SWEEP_DIR [SWEEP_DIR ...] --labels 100 200 300 \
        [--seeds 0 1 2] [--where query=margin ...] [--figure learning_curves.png \
        --curve "paper:resampler=renn,query=margin,features=code" ...]

reads every finished run below the sweep directories and groups them by
classifier, resampler, query strategy, features, encoder and any config key
swept in one of the directories (such as `classifier.C`). It prints the mean
± standard deviation over seeds of validation and test F1 at each label
count, one row per setting, sorted by validation F1 at the largest count:
settings are chosen on validation, and test is only reported. `--seeds`
keeps only the runs of the given seeds, so that settings run on different
seeds can be compared on the same ones; `--where` keeps only the runs with
the given choices (repeat it for more settings).

With `--figure`, it also draws validation and test F1 against oracle labels
used, one line per `--curve` (mean over seeds, with a band of one standard
deviation). Reference lines show the test F1 that Šabata and Holeňa (2020)
report for ECG5000. A curve is a
name, a colon and the choices that pick its runs; choices not named are
pooled, so name enough of them to pick one setting. A curve that matches no
finished run is left out with a warning, so that a study still running can
be drawn.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from _common import add_where_option, parse_choices

from framework.report import UNSET, flat_config, plot_mean_and_band, varying_settings
from framework.report import collect as collect_sweep

GROUPS = ["classifier", "resampler", "query", "features", "encoder"]
# Test F1 on ECG5000 reported by Šabata and Holeňa (2020).
PAPER_LINES = {
    "paper: autoencoder, initial threshold": 0.22,
    "paper: autoencoder, best threshold": 0.28,
    "paper: best run after the loop": 0.62,
}
# The paper's 20-repeat means after the last iteration, for most settings.
PAPER_MEANS = (0.30, 0.48)


def collect(sweep_dirs: list[Path]) -> pd.DataFrame:
    """Return the rows of every finished run: one per iteration and split.

    A config key whose value differs between runs of any of the directories
    (such as `classifier.C`) becomes a column that splits the settings. A
    run without the key has `-` there. A run below two of the directories
    counts once; `run_path` names it.
    """
    frames, configs, runs, seen = [], {}, [], set()
    for sweep_dir in sweep_dirs:
        rows, run_frame = collect_sweep(sweep_dir)
        if rows.empty:
            continue
        rows = rows[rows["completed"]].drop(columns=dotted(rows))
        rows.insert(
            0, "run_path", [str((sweep_dir / r).resolve()) for r in rows["run"]]
        )
        rows = rows[~rows["run_path"].isin(seen)]
        for run in run_frame[run_frame["completed"]].to_dict("records"):
            path = (sweep_dir / run["run"]).resolve()
            if str(path) in seen or str(path) not in set(rows["run_path"]):
                continue
            configs[str(path)] = flat_config(run_config(path))
            runs.append(run)
        seen.update(rows["run_path"])
        frames.append(rows)
    if not frames:
        return pd.DataFrame()
    keys = varying_settings(list(configs.values()), runs)
    for rows in frames:
        for key in keys:
            rows[key] = [configs[path].get(key, UNSET) for path in rows["run_path"]]
    return pd.concat(frames, ignore_index=True)


def dotted(rows: pd.DataFrame) -> list[str]:
    return [column for column in rows.columns if "." in column]


def run_config(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text()).get("config", {})


def setting_columns(rows: pd.DataFrame) -> list[str]:
    """Return the choices and swept config keys (the columns with a dot)."""
    return [*GROUPS, *dotted(rows)]


def table(rows: pd.DataFrame, labels: list[int]) -> pd.DataFrame:
    """Return mean ± std per setting, best validation F1 at the largest count
    first.

    A cell that fewer seeds reached than the row's (a run that stopped
    early) shows how many seeds it averages.
    """
    columns = setting_columns(rows)
    groups = [c for c in columns if rows[c].nunique() > 1] or columns[:1]
    at = rows[rows["labels_used"].isin(labels)]
    missing = sorted(set(labels) - set(at["labels_used"]))
    if missing:
        counts = sorted(rows["labels_used"].unique())
        raise SystemExit(
            f"no run reached {missing} labels; the runs have F1 at "
            f"{', '.join(map(str, counts[:3]))}, ..., {counts[-1]} labels"
        )
    stats = at.pivot_table(
        index=groups,
        columns=["split", "labels_used"],
        values="f1",
        aggfunc=["mean", "std", "count"],
        dropna=False,
    )
    # dropna=False keeps the std of a single seed (NaN), but also every
    # combination of the groups, so keep only the settings that were run.
    stats = stats[stats["mean"].notna().any(axis=1)]
    seeds = at.groupby(groups)["seed"].nunique().reindex(stats.index)
    out = pd.DataFrame(index=stats.index)
    for split in ("validation", "test"):
        for count in labels:
            out[f"{split} {count}"] = [
                cell(mean, std, n, of)
                for mean, std, n, of in zip(
                    stats["mean"][split][count],
                    stats["std"][split][count],
                    stats["count"][split][count],
                    seeds,
                    strict=True,
                )
            ]
    out["seeds"] = seeds
    order = stats["mean"]["validation"][max(labels)].sort_values(ascending=False)
    return out.loc[order.index]


def cell(mean: float, std: float, n: float, of: int) -> str:
    if not n:
        return "-"
    if n == 1:
        return f"{mean:.3f} (1 seed)"
    text = f"{mean:.3f} ± {std:.3f}"
    return text if n == of else f"{text} ({int(n)} seeds)"


def parse_curve(text: str, columns: list[str]) -> tuple[str, dict[str, str]]:
    """Split `name:key=value,key=value` into the name and the choices."""
    name, colon, choices = text.partition(":")
    if not colon or not name.strip() or not choices.strip():
        raise SystemExit(
            f"--curve {text!r} is not a name, a colon and choices; write it "
            "as 'name:resampler=renn,query=margin'"
        )
    return name.strip(), parse_choices("--curve", choices, columns)


def curve_rows(rows: pd.DataFrame, choices: dict[str, str]) -> pd.DataFrame:
    keep = pd.Series(True, index=rows.index)
    for key, value in choices.items():
        keep &= rows[key].astype(str) == value
    return rows[keep]


def plot_curves(
    rows: pd.DataFrame, curves: list[tuple[str, dict[str, str]]], path: Path
) -> None:
    """Draw validation and test F1 against labels used, one line per curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    colours = plt.get_cmap("tab10")
    for panel, split in zip(axes, ("validation", "test"), strict=True):
        for index, (name, choices) in enumerate(curves):
            picked = curve_rows(rows[rows["split"] == split], choices)
            seeds = picked["seed"].nunique()
            label = f"{name} ({seeds} seeds)"
            plot_mean_and_band(panel, picked, colours(index % 10), label)
        if split == "test":
            panel.axhspan(
                *PAPER_MEANS,
                color="grey",
                alpha=0.12,
                label="paper: 20-repeat means after the loop",
            )
            for (label, value), style in zip(
                PAPER_LINES.items(), (":", "-.", "--"), strict=True
            ):
                panel.axhline(value, color="k", linestyle=style, label=label)
        panel.set_title(f"{split} F1 of the anomaly class")
        panel.set_xlabel("oracle labels used")
        panel.set_ylim(0, 1)
        panel.grid(alpha=0.3)
    axes[0].set_ylabel("F1, mean ± std over seeds")
    handles, labels = axes[1].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize="small")
    figure.tight_layout(rect=(0, 0.06 + 0.035 * (len(labels) // 3), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def check_sweep_dirs(sweep_dirs: list[Path]) -> None:
    for sweep_dir in sweep_dirs:
        if not sweep_dir.exists():
            raise SystemExit(f"sweep directory {sweep_dir} does not exist")
        if not sweep_dir.is_dir():
            raise SystemExit(
                f"{sweep_dir} is a file; pass the directory a sweep wrote "
                "(hydra.sweep.dir)"
            )


def check_figure_path(path: Path) -> None:
    """Stop before any work when matplotlib cannot write `path`."""
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    suffix = path.suffix.lstrip(".").lower()
    if path.is_dir() or suffix not in formats:
        raise SystemExit(
            f"--figure {str(path)!r} is not an image file name; end it with one "
            f"of .{', .'.join(sorted(formats))}, for example curves.png"
        )
    parent = next((p for p in [path, *path.parents] if p.exists()), None)
    if parent is not None and parent != path and not parent.is_dir():
        raise SystemExit(f"--figure {path}: {parent} is a file, not a directory")


def warn_if_pooled(name: str, rows: pd.DataFrame) -> None:
    """Warn when a curve averages several settings, not seeds of one."""
    runs_per_seed = rows.groupby("seed")["run_path"].nunique().max()
    if runs_per_seed > 1:
        print(
            f"warning: the curve {name!r} pools {runs_per_seed} runs per seed, "
            "so its band spreads over settings as well as seeds; name more "
            "choices to pick one setting",
            file=sys.stderr,
        )


def pick_seeds(rows: pd.DataFrame, seeds: list[int]) -> pd.DataFrame:
    """Return the rows of runs with one of `seeds`, warning about absent ones."""
    absent = sorted(set(seeds) - set(rows["seed"]))
    picked = rows[rows["seed"].isin(seeds)]
    if picked.empty:
        raise SystemExit(f"no finished run has a seed in {seeds}")
    if absent:
        print(f"warning: no finished run has seed(s) {absent}", file=sys.stderr)
    return picked


def where_rows(rows: pd.DataFrame, texts: list[str]) -> pd.DataFrame:
    """Return the rows of runs that any `--where` text picks.

    A text that picks no run gets a warning.
    """
    columns = setting_columns(rows)
    wanted = [parse_choices("--where", text, columns) for text in texts]
    picked = set()
    for text, choices in zip(texts, wanted, strict=True):
        matched = curve_rows(rows, choices).index
        if matched.empty:
            print(f"warning: no finished run matches --where {text}", file=sys.stderr)
        picked.update(matched)
    return rows.loc[sorted(picked)]


def pick_where(rows: pd.DataFrame, texts: list[str]) -> pd.DataFrame:
    """Return `where_rows`, and stop the script when it picks no run."""
    picked = where_rows(rows, texts)
    if picked.empty:
        raise SystemExit(f"no finished run matches {texts}")
    return picked


def pick_curves(
    rows: pd.DataFrame, texts: list[str]
) -> list[tuple[str, dict[str, str]]]:
    """Parse the `--curve` texts and keep the curves that match a run."""
    columns = setting_columns(rows)
    curves = []
    for name, choices in (parse_curve(text, columns) for text in texts):
        matched = curve_rows(rows, choices)
        if matched.empty:
            # A sweep still running may not have reached this setting yet.
            print(
                f"warning: no finished run matches the curve {name!r} "
                f"({choices}); it is left out",
                file=sys.stderr,
            )
            continue
        warn_if_pooled(name, matched)
        curves.append((name, choices))
    if not curves:
        raise SystemExit("no finished run matches any --curve; check the values")
    return curves


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", nargs="+", type=Path)
    parser.add_argument(
        "--labels",
        nargs="+",
        type=int,
        default=[100, 200, 300],
        help="oracle label counts of the table (default: 100 200 300)",
    )
    parser.add_argument("--figure", type=Path, help="where to write the curves")
    parser.add_argument(
        "--seeds", nargs="+", type=int, help="only runs of these seeds (default: all)"
    )
    add_where_option(parser)
    parser.add_argument(
        "--curve",
        action="append",
        default=[],
        help="name:key=value,... (repeat for more lines)",
    )
    arguments = parser.parse_args(argv)

    if arguments.curve and not arguments.figure:
        raise SystemExit("--curve needs --figure, the file to draw the curves in")
    if arguments.figure and not arguments.curve:
        raise SystemExit("--figure needs at least one --curve to draw")
    if arguments.figure:
        check_figure_path(arguments.figure)
    check_sweep_dirs(arguments.sweep_dirs)

    rows = collect(arguments.sweep_dirs)
    if rows.empty:
        names = ", ".join(map(str, arguments.sweep_dirs))
        raise SystemExit(f"no finished run below {names}")
    if arguments.seeds is not None:
        rows = pick_seeds(rows, arguments.seeds)
    if arguments.where:
        rows = pick_where(rows, arguments.where)

    print(table(rows, arguments.labels).reset_index().to_markdown(index=False))
    if arguments.figure:
        plot_curves(rows, pick_curves(rows, arguments.curve), arguments.figure)
        print(f"learning curves written to {arguments.figure}", file=sys.stderr)


if __name__ == "__main__":
    main()
