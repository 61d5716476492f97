"""A person labelling in the terminal (through a pseudo-terminal) and by file.

Each test runs the real command line on the real ECG5000 files with a small
encoder, stops it the way a person would, starts it again, and checks in
queries.csv and the label store that the loop received every answer once.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from small_run import REPO, SMALL, cli

ROUNDS = ("loop.iterations=2", "loop.n_instances=3", "logger=none", "plot=false")
EXIT_PAUSED = 75


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One encoder cache for the module's runs, so only the first one trains."""
    return tmp_path_factory.mktemp("oracle-cache")


def received(run_dir: Path) -> dict[int, list[tuple[int, int]]]:
    """(series_id, label) pairs of queries.csv, by iteration."""
    rounds: dict[int, list[tuple[int, int]]] = {}
    with (run_dir / "queries.csv").open() as handle:
        for row in csv.DictReader(handle):
            rounds.setdefault(int(row["iteration"]), []).append(
                (int(row["series_id"]), int(row["label"]))
            )
    return rounds


def stored(store: Path) -> list[tuple[int, int]]:
    with store.open() as handle:
        return [(int(r["series_id"]), int(r["label"])) for r in csv.DictReader(handle)]


@pytest.fixture
def terminals() -> Iterator[list[pexpect.spawn]]:
    """Terminals of the test, ended if a failed test left one waiting."""
    spawned: list[pexpect.spawn] = []
    yield spawned
    for terminal in spawned:
        terminal.close(force=True)


def spawn_cli_oracle(tmp_path, data_root, cache, terminals) -> pexpect.spawn:
    command = [
        "-m",
        "framework",
        "+experiment=ecg5000",
        f"hydra.run.dir={tmp_path / 'run'}",
        *SMALL,
        *ROUNDS,
        "oracle=cli",
        "oracle.width=72",
        "oracle.height=10",
        f"oracle.store={tmp_path / 'labels.csv'}",
    ]
    environment = {
        **os.environ,
        "TSAL_DATA_ROOT": str(data_root),
        "TSAL_CACHE_DIR": str(cache),
    }
    terminal = pexpect.spawn(
        sys.executable,
        command,
        cwd=str(REPO),
        env=environment,
        encoding="utf-8",
        timeout=180,
        dimensions=(40, 100),
    )
    terminals.append(terminal)
    return terminal


def answer(terminal: pexpect.spawn, typed: str) -> int:
    """Wait for the next series and its prompt, type `typed`; return the id."""
    terminal.expect(r"Series (\d+) \(\d of \d to label; round \d of 2")
    series = int(terminal.match.group(1))
    terminal.expect(r"\[q\]uit > ")
    # Between them, the plot: value range on the left, the series in * and |
    # over a labelled normal series in dots.
    plot = terminal.before
    assert "* this series   . a labelled normal series" in plot
    assert plot.count(" |") >= 10
    assert "*" in plot
    assert "." in plot
    terminal.sendline(typed)
    return series


def test_terminal_oracle_session_survives_quitting(
    tmp_path, data_root, shared_cache, terminals
):
    terminal = spawn_cli_oracle(tmp_path, data_root, shared_cache, terminals)
    first = answer(terminal, "maybe")
    terminal.expect("'maybe' is no answer: type n, a, s or q.")
    terminal.expect(r"\[q\]uit > ")
    terminal.sendline("a")
    given = [(first, 1)]
    given.append((answer(terminal, "normal"), 0))
    given.append((answer(terminal, "s"), -1))
    given.append((answer(terminal, "n"), 0))
    answer(terminal, "q")
    terminal.expect("Paused: quit at the prompt; the 4 labels given so far")
    terminal.expect(pexpect.EOF)
    terminal.close()
    assert terminal.exitstatus == EXIT_PAUSED

    again = spawn_cli_oracle(tmp_path, data_root, shared_cache, terminals)
    again.expect("iteration 2: 1 of 3 labels taken from the label store")
    given += [(answer(again, "a"), 1), (answer(again, "n"), 0)]
    again.expect(pexpect.EOF)
    again.close()
    assert again.exitstatus == 0, again.before

    run = received(tmp_path / "run")
    assert run[1] == given[:3]
    assert sorted(run[2]) == sorted(given[3:])
    assert stored(tmp_path / "labels.csv") == given


def fill(requests: Path, answers: list[str]) -> list[int]:
    """Write `answers` into the label column; return the series ids in order."""
    with requests.open(newline="") as handle:
        rows = list(csv.reader(handle))
    for row, text in zip(rows[1:], answers, strict=True):
        row[1] = text
    with requests.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return [int(row[0]) for row in rows[1:]]


def test_file_oracle_continues_from_filled_in_answers(
    tmp_path, data_root, shared_cache
):
    store, requests = tmp_path / "labels.csv", tmp_path / "to-label.csv"
    run_dir = tmp_path / "run"

    def run_once():
        return cli(
            run_dir,
            data_root,
            *ROUNDS,
            "oracle=file",
            f"oracle.store={store}",
            f"oracle.requests={requests}",
            cache=shared_cache,
        )

    paused = run_once()
    assert paused.returncode == EXIT_PAUSED, paused.stderr[-2000:]
    assert f"3 series of round 1 of 2 await labels in {requests}" in paused.stderr
    assert requests.with_suffix(".png").is_file()

    first = fill(requests, ["anomaly", "", "normal"])
    partly = run_once()
    assert partly.returncode == EXIT_PAUSED
    assert "1 series of round 1 of 2 await labels" in partly.stderr

    fill(requests, ["normally"])
    wrong = run_once()
    assert wrong.returncode == 1
    assert "line 2: label 'normally' is not one of anomaly, normal or skip" in (
        wrong.stderr
    )

    fill(requests, ["skip"])
    second_round = run_once()
    assert second_round.returncode == EXIT_PAUSED
    assert "3 series of round 2 of 2 await labels" in second_round.stderr
    second = fill(requests, ["n", "a", "n"])
    done = run_once()
    assert done.returncode == 0, done.stderr[-2000:]

    labels = {first[0]: 1, first[2]: 0, first[1]: -1}
    labels.update(zip(second, [0, 1, 0], strict=True))
    run = received(run_dir)
    assert run[1] == [(series, labels[series]) for series in first]
    assert run[2] == [(series, labels[series]) for series in second]
    assert sorted(stored(store)) == sorted(labels.items())
