"""benchmarks/encoder_speed.py without its hour-long reference side."""

from __future__ import annotations

import os
import subprocess
import sys

from small_run import REPO

SCRIPT = str(REPO / "benchmarks" / "encoder_speed.py")
TINY = [
    *("--override", "trainer.max_epochs=2"),
    *("--override", "encoder.batch_size=256"),
    *("--override", "encoder.module.hidden_sizes=[8,4]"),
]


def benchmark(*arguments: str, data_root) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TSAL_DATA_ROOT": str(data_root)}
    return subprocess.run(
        [sys.executable, SCRIPT, *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_framework_side_alone_needs_target(data_root):
    done = benchmark("--reference-epochs", "0", data_root=data_root)

    assert done.returncode == 2
    assert "--reference-epochs 0 needs --target LOSS" in done.stderr


def test_framework_side_alone_times_target(data_root):
    done = benchmark(
        *("--reference-epochs", "0", "--target", "5.0"), *TINY, data_root=data_root
    )

    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "framework: 2 epochs in" in done.stdout
    assert "reference epoch" not in done.stdout
    row = next(line for line in lines if line.startswith("5.0000"))
    assert row.split()[1].isdigit()
    assert "target: under 60 s to a validation loss of 5.0000; framework reached" in (
        done.stdout
    )
