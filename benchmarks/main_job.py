"""Wall time, peak memory and stage times of the main job on ECG5000.

    TSAL_DATA_ROOT=../shared/data .venv/bin/python benchmarks/main_job.py

runs `python -m framework +experiment=ecg5000 classifier=svm resampler=renn`
with the default settings and an empty encoder cache, so the encoder trains.
`--epochs N` shortens training for a quick check of the script itself.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import run_cli, summaries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="trainer.max_epochs override")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tsal-bench-") as scratch:
        scratch = Path(scratch)
        command = [
            "+experiment=ecg5000",
            "classifier=svm",
            "resampler=renn",
            "logger=none",
            f"hydra.run.dir={scratch / 'run'}",
        ]
        if arguments.epochs:
            command.append(f"trainer.max_epochs={arguments.epochs}")
        figures = run_cli(command, {"TSAL_CACHE_DIR": str(scratch / "cache")})
        (summary,) = summaries(scratch / "run")

    print(f"wall time        {figures['wall_seconds']:8.1f} s")
    print(f"peak memory      {figures['peak_rss_mb']:8.0f} MB (target < 1536)")
    for stage, seconds in summary["timings"].items():
        print(f"stage {stage:<10} {seconds:8.1f} s")
    encoder = summary["encoder"]
    print(
        f"encoder          {encoder['epochs']} epochs, best validation loss "
        f"{encoder['best_val_loss']:.4f} at epoch {encoder['best_epoch']}"
    )
    print(f"final test F1    {summary['final']['test']['f1']:8.3f}")


if __name__ == "__main__":
    main()
