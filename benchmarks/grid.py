"""Wall time of the grid of Šabata and Holeňa (2020) in one joblib multirun.

    TSAL_DATA_ROOT=../shared/data .venv/bin/python benchmarks/grid.py --repeats 20

runs 5 classifiers x 15 resamplers x `--repeats` repeats of 30 iterations
on 2 joblib workers with one thread each. The encoder is trained by the
first job unless `--cache DIR` contains it already (run twice with the same
`--cache` to time the warm case). `--epochs N` shortens encoder training.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

from _common import run_cli, summaries

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
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tsal-grid-") as scratch:
        scratch = Path(scratch)
        command = [
            "-m",
            "+experiment=ecg5000",
            "logger=none",
            "plot=false",
            f"threads={max(1, 2 // arguments.jobs)}",
            f"classifier={CLASSIFIERS}",
            f"resampler={RESAMPLERS}",
            f"repeat=range({arguments.repeats})",
            "hydra/launcher=joblib",
            f"hydra.launcher.n_jobs={arguments.jobs}",
            f"hydra.sweep.dir={scratch / 'sweep'}",
        ]
        if arguments.epochs:
            command.append(f"trainer.max_epochs={arguments.epochs}")
        cache = arguments.cache or str(scratch / "cache")
        figures = run_cli(command, {"TSAL_CACHE_DIR": cache})
        runs = summaries(scratch / "sweep")

    loop_seconds: dict[str, float] = defaultdict(float)
    for summary in runs:
        loop_seconds[summary["choices"]["resampler"]] += summary["timings"]["loop"]
    trained = sum(summary["encoder"]["cache"] == "stored" for summary in runs)
    print(f"jobs             {len(runs)} ({trained} trained the encoder)")
    print(f"wall time        {figures['wall_seconds']:8.1f} s (target < 600 warm)")
    print(f"loop time, all   {sum(loop_seconds.values()):8.1f} s of CPU")
    for resampler, seconds in sorted(loop_seconds.items(), key=lambda x: -x[1])[:5]:
        print(f"  {resampler:<16} {seconds:8.1f} s")


if __name__ == "__main__":
    main()
