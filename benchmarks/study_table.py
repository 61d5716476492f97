"""Print mean ± std of validation and test F1 at given label counts, per setting.

    python benchmarks/study_table.py SWEEP_DIR [SWEEP_DIR ...] --labels 100 200 300

reads every finished run below the sweep directories and groups them by
resampler, query strategy and features; the rows are sorted by validation
F1 at the largest label count, since settings are chosen on validation and
test is only reported. The `seeds` column counts the seeds of each row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

GROUPS = ["classifier", "resampler", "query", "features", "encoder"]


def collect(sweep_dirs: list[Path], labels: list[int]) -> pd.DataFrame:
    """Return one row per finished run, split and label count, with its F1."""
    rows = []
    for sweep_dir in sweep_dirs:
        for path in sorted(sweep_dir.rglob("summary.json")):
            summary = json.loads(path.read_text())
            if not summary.get("completed"):
                continue
            results = pd.read_csv(path.parent / "results.csv")
            choices = {group: summary["choices"].get(group) for group in GROUPS}
            for count in labels:
                at = results[results.labels_used == count]
                for split in ("validation", "test"):
                    f1 = at[at.split == split].f1
                    if len(f1):
                        rows.append(
                            {
                                **choices,
                                "seed": summary["config"]["seed"],
                                "labels": count,
                                "split": split,
                                "f1": float(f1.iloc[0]),
                            }
                        )
    return pd.DataFrame(rows)


def table(rows: pd.DataFrame, labels: list[int]) -> pd.DataFrame:
    """Mean ± std per setting, best validation F1 at the last count first."""
    groups = [g for g in GROUPS if rows[g].nunique() > 1] or GROUPS[:1]
    stats = rows.pivot_table(
        index=groups, columns=["split", "labels"], values="f1", aggfunc=["mean", "std"]
    )
    out = pd.DataFrame(index=stats.index)
    for split in ("validation", "test"):
        for count in labels:
            mean, std = stats["mean"][split][count], stats["std"][split][count]
            out[f"{split} {count}"] = [
                f"{m:.3f} ± {s:.3f}" for m, s in zip(mean, std.fillna(0), strict=True)
            ]
    out["seeds"] = rows.groupby(groups).seed.nunique()
    order = stats["mean"]["validation"][labels[-1]].sort_values(ascending=False)
    return out.loc[order.index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", nargs="+", type=Path)
    parser.add_argument("--labels", nargs="+", type=int, default=[100, 200, 300])
    arguments = parser.parse_args()
    rows = collect(arguments.sweep_dirs, arguments.labels)
    if rows.empty:
        raise SystemExit(f"no finished run below {arguments.sweep_dirs}")
    print(table(rows, arguments.labels).to_markdown())


if __name__ == "__main__":
    main()
