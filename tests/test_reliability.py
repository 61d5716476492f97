"""Bad inputs, interrupted runs and reproducibility, on real files and processes.

docs/reliability.md lists every case with the tests that cover it. Runs read
the real ECG5000 files and use a small encoder. The runs of this module share
one encoder cache, so only the first of them trains. The reproducibility test
turns the cache off and trains twice. The wandb tests point WANDB_BASE_URL at
a port on 127.0.0.1 that the test opens itself.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from small_run import REPO, SMALL, cli, read_rows, start_cli

from framework.experiment import run
from framework.interfaces import Seed
from framework.loop import ResumeError
from framework.outputs import RunRecorder
from framework.resampling import ResamplerError
from plugins.data.ucr import DataError

CONF = REPO / "conf"
# A loop long enough that a signal sent at iteration 5 lands before its end.
LONG = ("loop.iterations=60", "logger=none")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """TSAL_CACHE_DIR of every run in this module, so they share one encoder."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def small_config(data_root, shared_cache, monkeypatch):
    """Compose the small config on the real files, with the shared encoder cache."""
    monkeypatch.setenv("TSAL_DATA_ROOT", str(data_root))

    def compose_config(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(
                "config",
                overrides=[
                    "+experiment=ecg5000",
                    "logger=none",
                    *SMALL,
                    f"encoder.cache_dir={shared_cache / 'encoders'}",
                    *overrides,
                ],
            )

    return compose_config


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def wait_for_iteration(job: subprocess.Popen, run_dir: Path, iteration: int) -> None:
    """Return once the run's log reports `iteration`; fail if the job ends first."""
    log = run_dir / "framework.log"
    deadline = time.monotonic() + 300
    while not re.search(
        rf"iteration {iteration}/", log.read_text() if log.exists() else ""
    ):
        assert job.poll() is None, f"the run ended early, code {job.returncode}"
        assert time.monotonic() < deadline, f"the run never reached {iteration}"
        time.sleep(0.05)


@contextlib.contextmanager
def sigint_raises_in_children() -> Iterator[None]:
    """Let processes started here turn SIGINT into KeyboardInterrupt.

    A shell starts background jobs with SIGINT ignored, and a Python child
    keeps ignoring it. With a handler installed here, the child starts with
    the default action instead, as under an interactive shell.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# Bad data files.


def test_missing_data_directory_is_reported(tmp_path, data_root, shared_cache):
    done = cli(
        tmp_path / "run",
        data_root,
        f"data.root={tmp_path / 'nowhere'}",
        "logger=none",
        cache=shared_cache,
    )
    assert done.returncode == 1
    assert "ECG5000_TRAIN.txt, ECG5000_TEST.txt not found in" in done.stderr
    assert str(tmp_path / "nowhere") in done.stderr
    assert "TSAL_DATA_ROOT" in done.stderr


def test_damaged_data_file_names_file_and_line(tmp_path, data_root, small_config):
    root = tmp_path / "data"
    shutil.copytree(data_root / "ECG5000", root / "ECG5000")
    train = root / "ECG5000" / "ECG5000_TRAIN.txt"
    lines = train.read_text().splitlines(keepends=True)
    fields = lines[6].split()
    fields[3] = "abc"
    lines[6] = "  ".join(fields) + "\n"
    train.write_text("".join(lines))

    config = small_config(f"data.root={root}", "data.source.sha256=null")
    with pytest.raises(
        DataError, match="ECG5000_TRAIN.txt, line 7, field 4: 'abc' is not"
    ):
        run(config, tmp_path / "run")

    summary = read_summary(tmp_path / "run")
    assert summary["completed"] is False
    assert "line 7, field 4: 'abc' is not a number" in summary["stop_reason"]


# Config out of range, plugins without what the loop needs.


def strategy_without_pool(classifier, n_instances=1):
    return np.arange(n_instances)


BAD_CONFIGS = {
    "zero-iterations": (["loop.iterations=0"], r"loop.iterations=0 is invalid"),
    "negative-iterations": (["loop.iterations=-3"], r"loop.iterations=-3 is invalid"),
    "zero-batch": (["loop.n_instances=0"], r"loop.n_instances=0 is invalid"),
    "split-sum": (["data.split.test=0.3"], r"data.split shares add up to 1.15"),
    "negative-k": (["seeder.k=-1"], r"seeder.k=-1 is invalid"),
    "absent-class": (
        ["data.anomaly_classes=[9]"],
        r"contains \[9\], which the data does not contain",
    ),
    "every-class": (["data.anomaly_classes=[1,2,3,4,5]"], r"no series is normal"),
    "no-predict-proba": (
        ["classifier.probability=false"],
        r"classifier SVC has no predict_proba",
    ),
    "query-signature": (
        [
            f"query._target_={__name__}.strategy_without_pool",
            "~query.random_tie_break",
        ],
        r"strategy_without_pool\(classifier, n_instances=1\) cannot be called",
    ),
}


@pytest.mark.parametrize(
    ("overrides", "message"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys()
)
def test_bad_config_stops_before_training(tmp_path, small_config, overrides, message):
    with pytest.raises(Exception, match=message):
        run(small_config(*overrides), tmp_path)

    summary = read_summary(tmp_path)
    assert summary["completed"] is False
    assert re.search(message, summary["stop_reason"])
    assert "encoder" not in summary["timings"], "the encoder trained first"


# Seed sets that the loop cannot start from.


class AnomaliesOnlySeeder:
    """Pseudo-label the ten highest scores as anomalies and nothing as normal."""

    def __call__(self, scores: np.ndarray) -> Seed:
        top = np.argsort(-scores)[:10]
        return Seed(top, np.ones(10, dtype=np.int64), threshold=None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["seeder.k=1000"], r"no pool series scores above .* lower seeder.k"),
        (
            [f"seeder._target_={__name__}.AnomaliesOnlySeeder", "~seeder.k"],
            r"AnomaliesOnlySeeder returned a seed set of 10 series without any "
            r"normal \(0\) label",
        ),
        (
            ["classifier=knn", "classifier.n_neighbors=5000"],
            r"the classifier failed on the seed set of \d+ series .*n_neighbors "
            r".*lower seeder.k",
        ),
    ],
    ids=["nothing-above-threshold", "one-class", "too-few-for-classifier"],
)
def test_unusable_seed_set_is_reported(tmp_path, small_config, overrides, message):
    with pytest.raises(ValueError, match=message):
        run(small_config(*overrides), tmp_path)

    summary = read_summary(tmp_path)
    assert summary["completed"] is False
    assert re.search(message, summary["stop_reason"])
    assert not (tmp_path / "results.csv").exists()


# Resamplers that cannot run on the labelled set.


def test_resampler_failures_are_counted(tmp_path, small_config, caplog):
    caplog.set_level("INFO")
    # SMOTE needs more minority samples than k_neighbors, so every fit fails.
    config = small_config("resampler=smote", "resampler.k_neighbors=5000")

    summary = run(config, tmp_path)

    assert summary["completed"] is True
    # The threshold seeder's seed set is balanced, which leaves SMOTE nothing
    # to generate; each of the 3 refits after a query round fails.
    assert summary["resampler_fallbacks"] == 3
    assert read_summary(tmp_path)["resampler_fallbacks"] == 3
    warned = [
        record
        for record in caplog.records
        if record.levelname == "WARNING"
        and "fitting without resampling" in record.getMessage()
    ]
    assert len(warned) == 1, "repeats should be logged at INFO level"
    assert "resampler_fallbacks=3" in caplog.text


def test_resampler_failure_can_stop_run(tmp_path, small_config):
    config = small_config(
        "resampler=smote",
        "resampler.k_neighbors=5000",
        "loop.on_resampler_failure=raise",
    )
    with pytest.raises(ResamplerError, match="loop.on_resampler_failure=skip"):
        run(config, tmp_path)
    assert read_summary(tmp_path)["stop_reason"].startswith("failed: ResamplerError")


# A pool that runs out.


def test_pool_exhaustion_stops_cleanly(tmp_path, small_config, caplog):
    caplog.set_level("WARNING")
    config = small_config(
        "classifier=gnb",
        "resampler=none",
        "loop.iterations=10",
        "loop.n_instances=1000",
    )

    summary = run(config, tmp_path)

    seeded = summary["seed"]["pseudo_anomalies"] + summary["seed"]["pseudo_normals"]
    rounds = -(-(3500 - seeded) // 1000)
    assert summary["completed"] is True
    assert summary["stop_reason"] == f"pool exhausted after iteration {rounds}"
    assert summary["final"]["labels_used"] == 3500 - seeded
    assert read_rows(tmp_path)[-1]["iteration"] == str(rounds)
    assert f"pool exhausted after iteration {rounds} of 10" in caplog.text


# Killed runs keep what they finished.


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory, data_root, shared_cache) -> Path:
    """A run killed with SIGKILL after its fifth iteration; do not modify it."""
    run_dir = tmp_path_factory.mktemp("killed") / "run"
    job = start_cli(
        run_dir, data_root, *LONG, cache=shared_cache, output=subprocess.DEVNULL
    )
    wait_for_iteration(job, run_dir, 5)
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=60)
    assert job.returncode == -signal.SIGKILL
    return run_dir


def test_sigkill_keeps_finished_iterations(killed_run):
    rows = read_rows(killed_run)
    finished = int(rows[-1]["iteration"])
    assert 5 <= finished < 60, "the kill did not land in the loop"
    assert [(int(row["iteration"]), row["split"]) for row in rows] == [
        (i, split) for i in range(finished + 1) for split in ("validation", "test")
    ]
    summary = read_summary(killed_run)
    assert summary["completed"] is False
    # SIGKILL gives the process no chance to record why it stopped.
    assert summary["stop_reason"] == "running"
    # summary.json is written after results.csv, so it may lag one iteration.
    assert summary["final"]["iteration"] in (finished - 1, finished)
    with (killed_run / "queries.csv").open() as handle:
        labelled = {int(row["iteration"]) for row in csv.DictReader(handle)}
    assert set(range(1, finished + 1)) <= labelled


def test_sigint_keeps_finished_iterations(tmp_path, data_root, shared_cache):
    run_dir = tmp_path / "run"
    with sigint_raises_in_children():
        job = start_cli(
            run_dir, data_root, *LONG, cache=shared_cache, output=subprocess.DEVNULL
        )
    wait_for_iteration(job, run_dir, 5)
    job.send_signal(signal.SIGINT)
    job.wait(timeout=60)

    assert job.returncode == 130
    summary = read_summary(run_dir)
    assert summary["completed"] is False
    assert summary["stop_reason"] == "interrupted"
    finished = int(read_rows(run_dir)[-1]["iteration"])
    assert finished >= 5
    assert summary["final"]["iteration"] == finished
    # The classifier is written once, when the run stops, and is the one of
    # the last iteration on disk.
    detector = json.loads((run_dir / "detector" / "detector.json").read_text())
    assert detector["classifier"]["iteration"] == finished
    assert (run_dir / "detector" / "classifier.joblib").is_file()


WRITER = """
import sys
from pathlib import Path
from framework.outputs import write_atomic
path = Path(sys.argv[1])
versions = [b"a" * 2_000_000, b"b" * 2_000_000]
write_atomic(path, versions[0])
print("written", flush=True)
count = 1
while True:
    write_atomic(path, versions[count % 2])
    count += 1
"""


def test_write_atomic_survives_sigkill(tmp_path):
    path = tmp_path / "results.csv"
    job = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert job.stdout.readline() == "written\n"
    time.sleep(1.0)
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)

    data = path.read_bytes()
    assert len(data) == 2_000_000
    assert data in (b"a" * 2_000_000, b"b" * 2_000_000), "a half-written file"
    # A temporary file of the killed write may remain; the next run removes it.
    RunRecorder(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def fsynced_files(monkeypatch) -> list[str]:
    """Record the path of every file that `os.fsync` flushes from now on (Linux)."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def test_fsync_count_ignores_iterations(tmp_path, small_config, monkeypatch):
    """A run flushes its files when it ends; its iterations only rename them."""
    synced = fsynced_files(monkeypatch)
    run(small_config("loop.iterations=2"), tmp_path / "short")
    short = len(synced)
    synced.clear()

    run(small_config("loop.iterations=6"), tmp_path / "long")

    assert len(synced) == short
    for name in ("results.csv", "queries.csv", "summary.json"):
        assert str(tmp_path / "long" / name) in synced
    assert read_rows(tmp_path / "long")[-1]["iteration"] == "6"


# Reruns into the same directory resume or start over.


def test_resume_after_sigkill_matches_full_run(
    killed_run, tmp_path, data_root, shared_cache
):
    resumed = tmp_path / "resumed"
    shutil.copytree(killed_run, resumed)
    finished = int(read_rows(resumed)[-1]["iteration"])

    done = cli(resumed, data_root, *LONG, "resume=true", cache=shared_cache)
    full = cli(tmp_path / "full", data_root, *LONG, cache=shared_cache)

    assert done.returncode == 0, done.stderr[-3000:]
    assert full.returncode == 0, full.stderr[-3000:]
    summary = read_summary(resumed)
    assert summary["completed"] is True
    assert summary["resumed_after_iteration"] == finished
    log = (resumed / "framework.log").read_text()
    assert f"resuming the run in {resumed} after its iteration {finished}" in log
    for name in ("results.csv", "queries.csv"):
        expected = (tmp_path / "full" / name).read_bytes()
        assert (resumed / name).read_bytes() == expected, name


def stop_after_iteration(run_dir: Path, iteration: int) -> None:
    """Make the finished run in `run_dir` look killed after `iteration`."""
    summary = read_summary(run_dir)
    summary["completed"] = False
    summary["stop_reason"] = "running"
    (run_dir / "summary.json").write_text(json.dumps(summary))
    lines = (run_dir / "results.csv").read_text().splitlines(keepends=True)
    (run_dir / "results.csv").write_text("".join(lines[: 1 + 2 * (iteration + 1)]))


def test_resume_rejects_other_config(tmp_path, small_config):
    run(small_config(), tmp_path)
    stop_after_iteration(tmp_path, 1)
    before = (tmp_path / "results.csv").read_bytes()

    with pytest.raises(ValueError, match=r"differs in loop.n_instances.*resume=false"):
        run(small_config("loop.n_instances=4", "resume=true"), tmp_path)
    assert (tmp_path / "results.csv").read_bytes() == before


def test_resume_rejects_changed_results(tmp_path, small_config):
    run(small_config(), tmp_path)
    stop_after_iteration(tmp_path, 2)
    text = (tmp_path / "results.csv").read_text()
    last_row = text.splitlines()[-1]
    fields = last_row.split(",")
    fields[4] = "0.999999"  # the test F1 of iteration 2
    changed = text.replace(last_row, ",".join(fields))
    (tmp_path / "results.csv").write_text(changed)

    with pytest.raises(ResumeError, match="iteration 2 gives other test metrics"):
        run(small_config("resume=true"), tmp_path)
    assert (tmp_path / "results.csv").read_text() == changed
    summary = read_summary(tmp_path)
    assert summary["completed"] is False
    assert summary["stop_reason"].startswith("failed: ResumeError")


def test_second_process_in_run_dir_is_rejected(tmp_path, data_root, shared_cache):
    run_dir = tmp_path / "run"
    first = start_cli(
        run_dir,
        data_root,
        "loop.iterations=300",
        "logger=none",
        cache=shared_cache,
        output=subprocess.DEVNULL,
    )
    try:
        wait_for_iteration(first, run_dir, 1)
        second = cli(run_dir, data_root, *LONG, cache=shared_cache)
        first_was_running = first.poll() is None
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)

    assert first_was_running, "the first run ended before the second started"
    assert second.returncode == 1
    assert f"another process is running in {run_dir}" in second.stderr
    assert read_summary(run_dir)["config"]["loop"]["iterations"] == 300


# Damaged encoder checkpoints.


def test_damaged_checkpoint_is_retrained(tmp_path, small_config, caplog):
    first = run(small_config(), tmp_path / "first")
    weights = Path(first["encoder"]["cache_entry"]) / "weights.pt"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    caplog.set_level("WARNING")

    second = run(small_config(), tmp_path / "second")

    assert second["encoder"]["cache"] == "stored"
    assert re.search(
        r"encoder cache entry .* is damaged .* training again", caplog.text
    )
    expected = (tmp_path / "first" / "results.csv").read_bytes()
    assert (tmp_path / "second" / "results.csv").read_bytes() == expected


# wandb without a reachable server.


@contextlib.contextmanager
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """Listen on a 127.0.0.1 port that accepts connections and never responds."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        listener.close()
        for connection in accepted:
            connection.close()


def closed_port() -> int:
    """Return a 127.0.0.1 port on which nothing listens."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def wandb_environment(tmp_path: Path, port: int) -> dict[str, str]:
    """Online mode against 127.0.0.1:`port`, with wandb's own files in tmp_path."""
    return {
        "WANDB_MODE": "online",
        "WANDB_BASE_URL": f"http://127.0.0.1:{port}",
        # A made-up key, so that wandb tries the server instead of asking
        # for a login.
        "WANDB_API_KEY": "0" * 40,
        # Keep wandb's error reports away from its own servers.
        "WANDB_ERROR_REPORTING": "false",
        "WANDB_SILENT": "true",
        "NO_PROXY": "127.0.0.1",
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
    }


def log_time(line: str) -> datetime:
    """Parse the timestamp that Hydra's log format puts first on a line."""
    return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")


def test_wandb_silent_server_falls_back_offline(tmp_path, data_root, shared_cache):
    run_dir = tmp_path / "run"
    with silent_server() as (port, accepted):
        done = cli(
            run_dir,
            data_root,
            "logger=wandb",
            "logger.mode=online",
            "logger.init_timeout=5",
            cache=shared_cache,
            **wandb_environment(tmp_path, port),
        )
        connections = len(accepted)

    assert done.returncode == 0, done.stderr[-3000:]
    assert connections >= 1, "wandb never tried the server"
    assert read_summary(run_dir)["completed"] is True
    lines = (run_dir / "framework.log").read_text().splitlines()
    started = next(line for line in lines if "wandb: connecting to" in line)
    warned = next(line for line in lines if "tracking this run offline" in line)
    assert "[WARNING]" in warned
    assert f"127.0.0.1:{port}" in warned
    assert "logger.init_timeout=5 s" in warned
    waited = (log_time(warned) - log_time(started)).total_seconds()
    assert waited < 5 + 15, f"waited {waited} s for a 5 s timeout"
    assert list((run_dir / "wandb").glob("offline-run-*/*.wandb"))


TRACK = """
import logging, sys, time
logging.basicConfig(level=logging.INFO)
from plugins.logger.wandb_tracker import WandbTracker
tracker = WandbTracker(mode="online", init_timeout=3)
start = time.monotonic()
tracker.start({"seed": 0}, sys.argv[1])
print(f"{time.monotonic() - start:.1f}", flush=True)
tracker.log({"test/f1": 0.5}, step=0)
tracker.finish({"completed": True})
"""


def test_wandb_closed_port_falls_back_offline(tmp_path):
    environment = {**os.environ, **wandb_environment(tmp_path, closed_port())}
    done = subprocess.run(
        [sys.executable, "-c", TRACK, str(tmp_path)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert float(done.stdout.strip()) < 3 + 15
    assert "tracking this run offline" in done.stderr
    assert "connection refused" in done.stderr
    assert list((tmp_path / "wandb").glob("offline-run-*/*.wandb"))


# Reproducibility.


def test_same_config_gives_identical_results(tmp_path, data_root):
    settings = ("encoder.cache=false", "trainer.accelerator=cpu", "logger=none")
    runs = [cli(tmp_path / name, data_root, *settings) for name in ("a", "b")]

    for done in runs:
        assert done.returncode == 0, done.stderr[-3000:]
    for name in ("a", "b"):
        assert read_summary(tmp_path / name)["encoder"]["cache"] == "off"
    for file in ("results.csv", "queries.csv"):
        first = (tmp_path / "a" / file).read_bytes()
        assert (tmp_path / "b" / file).read_bytes() == first, file
