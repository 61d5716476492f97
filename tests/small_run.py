"""Overrides that shrink a run on the real ECG5000 files to a few seconds.

The tests that use them check that the stages fit together, not the figures
of the method. `start_cli` and `cli` run the command line with them.
"""

from __future__ import annotations

import csv
import importlib
import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
TINY_ENCODER = [
    "encoder.module.hidden_sizes=[8,4]",
    "encoder.batch_size=256",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
]
SMALL = [
    *TINY_ENCODER,
    # One thread: with one per core, tests that run side by side on a busy
    # machine spend most of their time waiting for each other.
    "threads=1",
    "loop.iterations=3",
    "loop.n_instances=5",
]


def start_cli(
    run_dir: Path,
    data_root: Path,
    *overrides: str,
    cache: Path | None = None,
    output: int = subprocess.PIPE,
    **env: str,
) -> subprocess.Popen:
    """Start the main command with a small encoder, writing into `run_dir`.

    `output` receives stdout and stderr. A caller that does not read them
    while the job runs passes subprocess.DEVNULL, so that a full pipe cannot
    stall the job.
    """
    environment = {
        **os.environ,
        "TSAL_DATA_ROOT": str(data_root),
        "TSAL_CACHE_DIR": str(cache or run_dir / "cache"),
        **env,
    }
    command = [
        sys.executable,
        "-m",
        "framework",
        "+experiment=ecg5000",
        f"hydra.run.dir={run_dir}",
        *SMALL,
        *overrides,
    ]
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=environment,
        stdout=output,
        stderr=output,
        text=True,
    )


def cli(run_dir: Path, data_root: Path, *overrides: str, **options):
    """Run the main command to its end; returns returncode, stdout, stderr."""
    job = start_cli(run_dir, data_root, *overrides, **options)
    stdout, stderr = job.communicate(timeout=600)
    return subprocess.CompletedProcess(job.args, job.returncode, stdout, stderr)


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


def compose_config(*overrides: str):
    """Compose the config as the command line would, for `framework.experiment.run`."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def load_benchmark(name: str):
    """Import `benchmarks/<name>.py` as a module, as its scripts import each other."""
    benchmarks = str(REPO / "benchmarks")
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)
    return importlib.import_module(name)
