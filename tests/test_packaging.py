"""The project as a wheel: complete, installable, and runnable from anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
            "packages"
        ]
    )
    on_disk = {
        ".".join(path.parent.relative_to(REPO).parts)
        for top in ("framework", "plugins")
        for path in (REPO / top).rglob("__init__.py")
    }
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to pyproject.toml"
    assert "framework.conf" in listed


def build_wheel(source: Path, out: Path) -> Path:
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", str(source)),
            *("--no-deps", "--no-build-isolation", "--quiet", "-w", str(out)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def test_wheel_runs_from_fresh_venv(tmp_path, data_root):
    """`pip install` of the wheels (ours and the example plugins), then a run.

    The fresh environment gets torch and the other dependencies by a path
    entry to this environment's site-packages rather than by downloading
    them again. Path entries do not run .pth files, so the editable install
    of this checkout stays invisible to it.
    """
    wheels = tmp_path / "wheels"
    ours = build_wheel(REPO, wheels / "ours")
    example = build_wheel(REPO / "examples" / "plugin-package", wheels / "example")

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    fresh_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dependencies = sysconfig.get_path("purelib")
    (Path(fresh_site) / "dependencies.pth").write_text(dependencies + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", ours, example],
        check=True,
        timeout=300,
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {
        key: value for key, value in os.environ.items() if key != "PYTHONPATH"
    }
    environment["TSAL_DATA_ROOT"] = str(data_root)
    where = subprocess.run(
        [str(python), "-c", "import framework; print(framework.__file__)"],
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(fresh_site), where

    run_dir = elsewhere / "run"
    done = subprocess.run(
        [
            *(str(python), "-m", "framework", "+experiment=ecg5000"),
            *("logger=none", "plot=false", "loop.iterations=2"),
            *("encoder.module.hidden_sizes=[8,4]", "encoder.batch_size=256"),
            *("trainer.max_epochs=1", "trainer.enable_progress_bar=false"),
            "classifier=soft_centroid",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "failed to import" not in done.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["completed"]
    assert summary["choices"]["classifier"] == "soft_centroid"
