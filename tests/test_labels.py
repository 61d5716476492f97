"""The label store, skipped series in the loop, and the oracles' own checks.

These tests need no browser and no run of the command line; the oracles'
sessions with a person are in test_web_oracle.py and test_cli_file_oracles.py.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from framework.data import Split
from framework.interfaces import Round, Seed
from framework.labels import LabellingPaused, LabelStore
from framework.loop import ActiveLearningLoop, make_estimator
from plugins.data.ucr import read_ucr_text
from plugins.oracle.cli import CliOracle, text_plot
from plugins.oracle.file import FileOracle
from plugins.oracle.web import WebOracle


@pytest.fixture(scope="module")
def pool(data_root) -> Split:
    """The 500 series of ECG5000_TRAIN.txt, numbered from 1000 as ids."""
    series, classes = read_ucr_text(data_root / "ECG5000" / "ECG5000_TRAIN.txt")
    labels = (classes > 1).astype(int)
    return Split(series, classes, labels, ids=np.arange(1000, 1000 + len(series)))


def answer_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:]


def test_store_keeps_answers_for_the_next_run(tmp_path, pool):
    path = tmp_path / "labels" / "store.csv"
    store = LabelStore(path, pool, oracle="test")
    store.record(4, 1)
    store.record(7, 0)
    store.record(9, -1)
    store.record(4, 0)  # a changed answer: the later line wins

    again = LabelStore(path, pool, oracle="test")
    assert [again.get(p) for p in (4, 7, 9, 10)] == [0, 0, -1, None]
    assert len(again) == 3
    first = answer_lines(path)[0].split(",")
    assert first[:2] == ["1004", "1"]
    assert first[4] == "test"


def test_store_takes_answers_another_process_appended(tmp_path, pool):
    path = tmp_path / "store.csv"
    mine = LabelStore(path, pool, oracle="test")
    LabelStore(path, pool, oracle="other").record(12, 1)
    mine.refresh()
    assert mine.get(12) == 1


def test_store_leaves_out_a_line_cut_short_by_a_kill(tmp_path, pool, caplog):
    path = tmp_path / "store.csv"
    LabelStore(path, pool, oracle="test").record(3, 1)
    with path.open("a") as handle:
        handle.write("1005,0,abc")  # what a process killed mid-write leaves
    store = LabelStore(path, pool, oracle="test")
    store.record(6, 0)

    again = LabelStore(path, pool, oracle="test")
    assert [again.get(p) for p in (3, 5, 6)] == [1, None, 0]
    assert answer_lines(path)[1] == "1005,0,abc"
    assert "line 3 is not an answer" in caplog.text


def test_store_rejects_other_data(tmp_path, pool):
    path = tmp_path / "store.csv"
    LabelStore(path, pool, oracle="test").record(3, 1)
    changed = Split(pool.series[::-1].copy(), pool.classes, pool.labels, ids=pool.ids)
    with pytest.raises(ValueError, match=r"line 2: series 1003 .*other data"):
        LabelStore(path, changed, oracle="test")


def test_store_rejects_a_file_that_is_no_store(tmp_path, pool):
    path = tmp_path / "notes.csv"
    path.write_text("patient,comment\n")
    with pytest.raises(ValueError, match="not with the header 'series_id,label"):
        LabelStore(path, pool, oracle="test")


class ScriptedOracle:
    """Answers from a script, with -1 for the positions listed as skipped."""

    def __init__(self, truth: np.ndarray, skip: set[int]) -> None:
        self.truth, self.skip, self.asked = truth, skip, []
        self.rounds: list[Round] = []

    def __call__(self, indices: np.ndarray, round: Round) -> np.ndarray:
        self.asked.extend(int(i) for i in indices)
        self.rounds.append(round)
        return np.array([-1 if i in self.skip else self.truth[i] for i in indices])


def small_loop(oracle, iterations: int = 3) -> tuple[ActiveLearningLoop, Seed]:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 2))
    features[:15] += 3
    estimator = make_estimator(None, LogisticRegression())
    loop = ActiveLearningLoop(estimator, _least_sure, oracle, features, iterations, 4)
    seed = Seed(np.array([0, 1, 20, 21]), np.array([1, 1, 0, 0]))
    return loop, seed


def _least_sure(classifier, X_pool, n_instances=1):
    probability = classifier.predict_proba(X_pool)[:, 1]
    return np.argsort(np.abs(probability - 0.5), kind="stable")[:n_instances]


def test_loop_leaves_skipped_series_out_and_never_asks_again():
    truth = np.r_[np.ones(15, int), np.zeros(45, int)]
    oracle = ScriptedOracle(truth, skip=set(range(60)) - {2, 3, 4, 5, 30, 31})
    loop, seed = small_loop(oracle)
    steps = list(loop.run(seed))

    assert len(oracle.asked) == len(set(oracle.asked)) == 12
    answered = [i for i in oracle.asked if i not in oracle.skip]
    last = steps[-1]
    assert last.labels_used == len(answered)
    assert last.n_labelled == 4 + len(answered)
    assert (last.labels == -1).sum() == sum(i in oracle.skip for i in last.queried)
    # The oracle is told what it shows a person: round, probabilities, normals.
    first = oracle.rounds[0]
    assert (first.iteration, first.iterations, first.labels_used) == (1, 3, 0)
    assert np.all((first.probabilities >= 0) & (first.probabilities <= 1))
    assert set(first.normals) == {20, 21}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda n: np.full(n, 2), r"labels \[2\]; they must be 1"),
        (lambda n: np.full(n, 0.5), r"they must be 1 \(anomaly\), 0"),
        (lambda n: np.zeros(n + 1), "returned 5 labels for 4 series"),
    ],
)
def test_loop_rejects_labels_that_are_no_labels(answer, message):
    def oracle(indices):
        return answer(len(indices))

    loop, seed = small_loop(oracle, iterations=1)
    with pytest.raises(ValueError, match=message):
        list(loop.run(seed))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(url: str, body: object = None, **headers: str) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    headers.setdefault("Content-Type", "application/json")
    call = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_web_oracle_answers_only_well_formed_requests(tmp_path, pool):
    oracle = WebOracle(pool, tmp_path / "store.csv", port=0)
    round = Round(1, 2, 0, np.array([5, 8]), np.array([0.2, 0.9]), np.array([1, 2]))
    answers: list[np.ndarray] = []
    # A daemon, so that a failed check cannot leave pytest waiting for it.
    asking = threading.Thread(
        target=lambda: answers.append(oracle(round.positions, round)), daemon=True
    )
    try:
        asking.start()
        api = f"{oracle.url}api/answer"
        while request(f"{oracle.url}api/state")[1]["total"] != 2:
            pass
        assert request(f"{oracle.url}nothing")[0] == 404
        assert (
            request(api, {"series_id": 1005}, **{"Content-Type": "text/plain"})[0]
            == 415
        )
        assert (
            request(api, {"series_id": 1005, "label": "anomaly"}, Host="evil.test")[0]
            == 403
        )
        status, body = request(api, {"series_id": 1005, "label": "maybe"})
        assert status == 400
        assert "label 'maybe' is invalid" in body["error"]
        status, body = request(api, {"series_id": 1006, "label": "normal"})
        assert status == 409
        assert "series 1006 is not asked for now" in body["error"]
        status, body = request(api, [1, 2])
        assert status == 400
        assert 'send {"series_id": <number>' in body["error"]
        status, body = request(api, {"series_id": 1005})
        assert status == 400
        assert "got {'series_id': 1005}" in body["error"]
        status, body = request(api, {"series_id": "1005", "label": "normal"})
        assert status == 400
        assert "series_id '1005' is invalid" in body["error"]
        assert request(api, {"pad": "x" * 5000})[0] == 413
        put = urllib.request.Request(api, data=b"{}", method="PUT")
        with pytest.raises(urllib.error.HTTPError, match="405"):
            urllib.request.urlopen(put, timeout=10)

        status, state = request(api, {"series_id": 1005, "label": "anomaly"})
        assert status == 200
        assert state["answered"] == 1
        assert state["items"][1]["probability"] == 0.9
        assert len(state["references"]) == 2
        request(api, {"series_id": 1008, "label": -1})  # numbers work too
        asking.join(timeout=10)
        assert answers[0].tolist() == [1, -1]
    finally:
        oracle.close()


def test_web_oracle_reports_a_busy_port(tmp_path, pool):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(
            OSError, match=f"cannot listen on 127.0.0.1:{port}.*oracle.port"
        ):
            WebOracle(pool, tmp_path / "store.csv", port=port)


@pytest.mark.parametrize("port", [-1, 70000, "http", True])
def test_web_oracle_rejects_bad_ports(tmp_path, pool, port):
    with pytest.raises(ValueError, match=f"oracle.port={port!r} is invalid"):
        WebOracle(pool, tmp_path / "store.csv", port=port)


def test_cli_oracle_needs_a_terminal(tmp_path, pool, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(RuntimeError, match="not one; .* use oracle=file"):
        CliOracle(pool, tmp_path / "store.csv")


def test_cli_oracle_asks_again_after_a_wrong_answer(tmp_path, pool):
    typed = io.StringIO("maybe\nA\ns\n")
    shown = io.StringIO()
    oracle = CliOracle(
        pool,
        tmp_path / "store.csv",
        width=60,
        height=6,
        input_stream=typed,
        output=shown,
    )
    round = Round(1, 5, 0, np.array([3, 4]), np.array([0.25, 0.5]), np.array([0]))
    assert oracle(round.positions, round).tolist() == [1, -1]
    text = shown.getvalue()
    assert "'maybe' is no answer: type n, a, s or q." in text
    assert (
        "Series 1003 (1 of 2 to label; round 1 of 5, 0 oracle labels used before)"
        in text
    )
    assert "anomaly probability: 25%" in text
    # End of input pauses the run, keeping what was answered.
    more = Round(2, 5, 1, np.array([6]), np.array([0.5]), np.array([0]))
    with pytest.raises(LabellingPaused, match="terminal closed; the 2 labels"):
        oracle(more.positions, more)


def test_text_plot_joins_a_spike_into_one_line():
    values = np.zeros(50)
    values[25] = 10.0
    lines = text_plot(values, width=40, height=8)
    assert len(lines) == 8
    assert {len(line) for line in lines} == {40}
    assert lines[0].startswith("10.00 |")
    assert lines[-1].startswith(" 0.00 |")
    spike = [line.index("|", 7) for line in lines[1:-1] if "|" in line[7:]]
    assert len(spike) == 6  # every row between the top and the base line


def test_file_oracle_names_a_bad_answer(tmp_path, pool):
    requests = tmp_path / "to-label.csv"
    oracle = FileOracle(pool, tmp_path / "store.csv", requests=requests)
    round = Round(1, 3, 0, np.array([3, 4]), np.array([0.1, 0.7]), np.array([0]))
    with pytest.raises(LabellingPaused, match=r"2 series of round 1 of 3 await labels"):
        oracle(round.positions, round)
    assert requests.with_suffix(".png").stat().st_size > 1000
    lines = requests.read_text().splitlines()
    assert lines[0].startswith("series_id,label,anomaly_probability,round,v1,v2")
    assert lines[1].startswith("1003,,0.1000,1,")

    requests.write_text(lines[0] + "\n" + lines[1].replace(",,", ",perhaps,", 1))
    with pytest.raises(ValueError, match=r"line 2: label 'perhaps' is not one of"):
        oracle(round.positions, round)
    requests.write_text(lines[0] + "\n9999,normal," + lines[1].split(",", 2)[2])
    with pytest.raises(
        ValueError, match=r"line 2: series_id '9999' is not found in this"
    ):
        oracle(round.positions, round)

    # A changed id: the row's values belong to another series.
    requests.write_text(lines[0] + "\n" + lines[1].replace("1003,,", "1010,normal,", 1))
    with pytest.raises(ValueError, match=r"line 2: the values v1 to v140 are not "):
        oracle(round.positions, round)
    # One bad row keeps every row of the file out of the store.
    good = lines[1].replace(",,", ",normal,", 1)
    requests.write_text("\n".join([lines[0], good, lines[2].replace(",,", ",x,", 1)]))
    with pytest.raises(ValueError, match=r"line 3: label 'x' is not one of"):
        oracle(round.positions, round)
    assert oracle.store.get(3) is None

    filled = [
        lines[0],
        lines[1].replace(",,", ",normal,", 1),
        lines[2].replace(",,", ",A,", 1),
    ]
    requests.write_text("\n".join(filled) + "\n")
    assert oracle(round.positions, round).tolist() == [0, 1]
