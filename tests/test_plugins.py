"""Third-party plugin packages: discovery, use through the CLI, bad packages.

The example package in examples/plugin-package must be installed (the
README's set-up command and .ci/run install it); these tests fail, not skip,
when it is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
GRU_TINY = [
    "encoder=gru_ae",
    "encoder.module.hidden_size=4",
    "encoder.batch_size=256",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
]
PLUGINS = [*GRU_TINY, "classifier=soft_centroid", "query=most_likely_anomaly"]
SHORT = ["+experiment=ecg5000", "logger=none", "plot=false", "loop.iterations=2"]


@pytest.fixture(scope="module", autouse=True)
def example_package_installed() -> None:
    try:
        version("tsal-example-plugins")
    except PackageNotFoundError:
        pytest.fail(
            "the example plugin package is not installed; run "
            "`.venv/bin/pip install -e ./examples/plugin-package`"
        )


def framework(*arguments: str, cwd: Path, data_root: Path | None = None, **env):
    environment = {**os.environ, **env}
    if data_root is not None:
        environment["TSAL_DATA_ROOT"] = str(data_root)
    return subprocess.run(
        [sys.executable, "-m", "framework", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def group_line(help_text: str, group: str) -> list[str]:
    line = next(line for line in help_text.splitlines() if line.startswith(f"{group}:"))
    return [choice.strip() for choice in line.split(":", 1)[1].split(",")]


def test_help_lists_plugin_choices_with_builtin_ones(tmp_path):
    done = framework("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert group_line(done.stdout, "classifier") == [
        "dt",
        "extra_trees",
        "gnb",
        "knn",
        "logreg",
        "soft_centroid",
        "svm",
    ]
    assert "gru_ae" in group_line(done.stdout, "encoder")
    assert "most_likely_anomaly" in group_line(done.stdout, "query")


def test_help_main_options_show_the_config_defaults(tmp_path):
    """Each `key=value` in the help's main options is the composed default."""
    done = framework("--help", cwd=tmp_path)
    section = done.stdout.split("== Main options (key=value) ==")[1]
    stated = {}
    for line in section.splitlines():
        token = line.split(" ", 1)[0]
        if "=" in token and not token.startswith(("+", "hydra.")):
            key, value = token.split("=", 1)
            if value.isupper():  # placeholders such as DIR and N
                continue
            stated[key] = value
    assert len(stated) >= 8
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=ecg5000"])
    for key, value in stated.items():
        actual = cfg
        for part in key.split("."):
            actual = actual[part]
        assert str(actual).lower() == value, key


def test_single_run_with_every_example_plugin(tmp_path, data_root):
    run_dir = tmp_path / "run"
    done = framework(
        *SHORT, *PLUGINS, f"hydra.run.dir={run_dir}", cwd=tmp_path, data_root=data_root
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["completed"]
    assert summary["choices"]["encoder"] == "gru_ae"
    assert summary["choices"]["classifier"] == "soft_centroid"
    assert summary["choices"]["query"] == "most_likely_anomaly"
    assert summary["final"]["labels_used"] == 2 * 10


def test_multirun_sweeps_plugin_and_builtin_choices(tmp_path, data_root):
    sweep_dir = tmp_path / "sweep"
    done = framework(
        "-m",
        *SHORT,
        *GRU_TINY,
        "classifier=soft_centroid,knn",
        "query=most_likely_anomaly",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = [
        json.loads(path.read_text())
        for path in sorted(sweep_dir.glob("*/summary.json"))
    ]
    assert [s["choices"]["classifier"] for s in summaries] == ["soft_centroid", "knn"]
    assert all(s["completed"] for s in summaries)
    # Both jobs share one GRU encoder through the cache.
    assert [s["encoder"]["cache"] for s in summaries] == ["stored", "loaded"]


def fake_distribution(site: Path, name: str, module: str, files: dict[str, str]):
    """Install a plugin package by hand: a module and a dist-info entry point."""
    for relative, text in files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(f"[tsal.plugins]\n{name} = {module}\n")


def test_broken_package_is_named_and_others_still_work(tmp_path, data_root):
    site = tmp_path / "site"
    fake_distribution(
        site,
        "broken",
        "broken_plugins",
        {"broken_plugins/__init__.py": "import not_a_real_module\n"},
    )
    fake_distribution(
        site,
        "noconf",
        "noconf_plugins",
        {"noconf_plugins/__init__.py": ""},
    )
    env = {"PYTHONPATH": str(site)}
    done = framework("--help", cwd=tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert "plugin package 'broken'" in done.stderr
    assert "ModuleNotFoundError: No module named 'not_a_real_module'" in done.stderr
    assert "plugin package 'noconf'" in done.stderr
    assert "no conf/ folder" in done.stderr
    assert "soft_centroid" in group_line(done.stdout, "classifier")

    run_dir = tmp_path / "run"
    done = framework(
        *SHORT,
        *PLUGINS,
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
        data_root=data_root,
        **env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run_dir / "summary.json").read_text())["completed"]


def test_plugin_config_hidden_by_builtin_is_reported(tmp_path):
    site = tmp_path / "site"
    fake_distribution(
        site,
        "clash",
        "clash_plugins",
        {
            "clash_plugins/__init__.py": "",
            "clash_plugins/conf/classifier/svm.yaml": "_target_: x.Y\n",
        },
    )
    done = framework("--help", cwd=tmp_path, PYTHONPATH=str(site))
    assert done.returncode == 0, done.stderr
    assert "plugin package 'clash': conf/classifier/svm.yaml is hidden by the " in (
        done.stderr
    )


def test_wrong_plugin_is_rejected_before_training(tmp_path, data_root):
    """A classifier without predict_proba stops the run before the encoder."""
    site = tmp_path / "site"
    fake_distribution(
        site,
        "bad",
        "bad_plugins",
        {
            "bad_plugins/__init__.py": "",
            "bad_plugins/conf/classifier/hard_tree.yaml": (
                "_target_: sklearn.svm.LinearSVC\n"
            ),
            "bad_plugins/conf/query/no_pool.yaml": (
                "_target_: bad_plugins.strategies.no_pool\n_partial_: true\n"
            ),
            "bad_plugins/strategies.py": (
                "def no_pool(classifier, n_instances=1):\n    return [0]\n"
            ),
        },
    )
    for choice, expected in (
        ("classifier=hard_tree", "classifier LinearSVC has no predict_proba"),
        ("query=no_pool", "query strategy no_pool(classifier, n_instances=1)"),
    ):
        run_dir = tmp_path / choice.replace("=", "_")
        done = framework(
            *SHORT,
            choice,
            "trainer.max_epochs=1",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
            data_root=data_root,
            PYTHONPATH=str(site),
        )
        assert done.returncode != 0
        assert expected in done.stderr
        assert "encoder epoch" not in (run_dir / "framework.log").read_text()
