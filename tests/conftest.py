"""Shared fixtures: the real ECG5000 files and small synthetic data sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Directory holding ``ECG5000/``: ``TSAL_DATA_ROOT``, else ``../shared/data``.

    Tests that need the real files fail without them rather than skip, so a CI
    machine that lost the data cannot pass by running less.
    """
    root = Path(os.environ.get("TSAL_DATA_ROOT") or REPO.parent / "shared" / "data")
    if not (root / "ECG5000" / "ECG5000_TRAIN.txt").is_file():
        pytest.fail(
            f"ECG5000 not found under {root}; set TSAL_DATA_ROOT to the directory "
            "holding ECG5000/ECG5000_TRAIN.txt and ECG5000_TEST.txt"
        )
    return root


@pytest.fixture
def data_env(data_root, monkeypatch) -> None:
    """Point TSAL_DATA_ROOT at the real files for runs made in this process."""
    monkeypatch.setenv("TSAL_DATA_ROOT", str(data_root))


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch) -> Path:
    """Point the data and encoder caches of every test away from the home dir."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("TSAL_CACHE_DIR", str(cache))
    return cache


def pytest_sessionfinish(session, exitstatus) -> None:
    """Fail the session on any skipped test when TSAL_FORBID_SKIPS is set.

    CI sets it, so a test that skips itself, for example for missing data,
    cannot make a run pass by testing less.
    """
    if not os.environ.get("TSAL_FORBID_SKIPS"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and session.exitstatus == 0:
        reporter.ensure_newline()
        reporter.write_line(
            f"{len(skipped)} tests skipped; TSAL_FORBID_SKIPS turns skips into "
            "a failure",
            red=True,
        )
        session.exitstatus = 1
