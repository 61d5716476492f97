"""Sweeps through Hydra's Ray and submitit launchers, on this machine only.

Ray starts a local instance bound to 127.0.0.1; submitit runs its local
executor, which uses the same job files as on a SLURM cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from small_run import TINY_ENCODER

REPO = Path(__file__).resolve().parents[1]
SMALL_SWEEP = [
    "-m",
    "+experiment=ecg5000",
    "logger=none",
    "plot=false",
    *TINY_ENCODER,
    "loop.iterations=2",
    "loop.n_instances=5",
    "classifier=svm,knn",
]
LAUNCHERS = {
    "ray": [
        "hydra/launcher=ray",
        "+hydra.launcher.ray.init._node_ip_address=127.0.0.1",
        "+hydra.launcher.ray.init.include_dashboard=false",
        "+hydra.launcher.ray.init.num_cpus=2",
    ],
    "submitit_local": [
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
    ],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_job_sweep_through_launcher(launcher, tmp_path, data_root):
    sweep_dir = tmp_path / "sweep"
    environment = {
        **os.environ,
        "TSAL_DATA_ROOT": str(data_root),
        "TSAL_CACHE_DIR": str(tmp_path / "cache"),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "framework",
            *SMALL_SWEEP,
            *LAUNCHERS[launcher],
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    summaries = [
        json.loads(path.read_text())
        for path in sorted(sweep_dir.glob("*/summary.json"))
    ]
    assert [s["choices"]["classifier"] for s in summaries] == ["svm", "knn"]
    assert all(s["completed"] for s in summaries)
    origins = sorted(s["encoder"]["cache"] for s in summaries)
    assert origins == ["loaded", "stored"]
