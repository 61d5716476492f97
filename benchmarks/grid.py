"""Wall time of the grid of Šabata and Holeňa (2020) in one joblib multirun.

    TSAL_DATA_ROOT=../shared/data .venv/bin/python benchmarks/grid.py --repeats 20

runs 5 classifiers x 15 resamplers x `--repeats` repeats of 30 iterations
on 2 joblib workers with one thread each. The encoder is trained by the
first job unless `--cache DIR` contains it already (run twice with the same
`--cache` to time the warm case). `--epochs N` shortens encoder training.
`--sweep-dir DIR` keeps the runs and writes the report (runs.csv, the
figure and the table of final test F1) into DIR/report.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import defaultdict
from pathlib import Path

from _common import run_cli, summaries

from framework.report import report

CLASSIFIERS = "svm,knn,logreg,dt,gnb"
RESAMPLERS = (
    "cnn,enn,renn,allknn,iht,nearmiss,ncr,tomek,oss,rus,rus_replacement,"
    "borderline_smote,ros,smote,svm_smote"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2, help="joblib workers")
    parser.add_argument("--epochs", type=int, help="trainer.max_epochs override")
    parser.add_argument("--cache", help="encoder cache directory to reuse")
    parser.add_argument(
        "--threads", type=int, help="threads per job; default: cores // jobs"
    )
    parser.add_argument("--sweep-dir", help="keep the runs here and report on them")
    parser.add_argument("--classifiers", default=CLASSIFIERS, help="comma-separated")
    parser.add_argument("--resamplers", default=RESAMPLERS, help="comma-separated")
    arguments = parser.parse_args()
    threads = arguments.threads or max(1, (os.cpu_count() or 2) // arguments.jobs)

    with tempfile.TemporaryDirectory(prefix="tsal-grid-") as scratch:
        scratch = Path(scratch)
        sweep_dir = Path(arguments.sweep_dir or scratch / "sweep").resolve()
        command = [
            "-m",
            "+experiment=ecg5000",
            "logger=none",
            "plot=false",
            f"threads={threads}",
            f"classifier={arguments.classifiers}",
            f"resampler={arguments.resamplers}",
            f"repeat=range({arguments.repeats})",
            "hydra/launcher=joblib",
            f"hydra.launcher.n_jobs={arguments.jobs}",
            f"hydra.sweep.dir={sweep_dir}",
        ]
        if arguments.epochs:
            command.append(f"trainer.max_epochs={arguments.epochs}")
        cache = arguments.cache or str(scratch / "cache")
        figures = run_cli(command, {"TSAL_CACHE_DIR": cache})
        runs = summaries(sweep_dir)
        if arguments.sweep_dir:
            report(sweep_dir, sweep_dir / "report")

    loop_seconds: dict[str, float] = defaultdict(float)
    for summary in runs:
        loop_seconds[summary["choices"]["resampler"]] += summary["timings"]["loop"]
    trained = sum(summary["encoder"]["cache"] == "stored" for summary in runs)
    print(f"jobs             {len(runs)} ({trained} trained the encoder)")
    print(f"workers          {arguments.jobs} with {threads} thread(s) each")
    print(f"wall time        {figures['wall_seconds']:8.1f} s (target < 600 warm)")
    print(f"loop time, all   {sum(loop_seconds.values()):8.1f} s of CPU")
    for resampler, seconds in sorted(loop_seconds.items(), key=lambda x: -x[1])[:5]:
        print(f"  {resampler:<16} {seconds:8.1f} s")


if __name__ == "__main__":
    main()
