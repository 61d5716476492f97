"""A person labelling on the web page, played by headless Chromium.

Each test runs the real command line with `oracle=web` on the real ECG5000
files and a small encoder, and drives the page with Playwright in Debian's
Chromium (`apt-get install chromium`, or the browser that TSAL_CHROMIUM
names). The queries.csv of the run shows which labels the loop received.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from small_run import start_cli
from test_labels import free_port

CHROMIUM = Path(os.environ.get("TSAL_CHROMIUM", "/usr/bin/chromium"))
# Flags for a headless Chromium as root on a machine without outside network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ROUNDS = ("loop.iterations=2", "loop.n_instances=3", "logger=none", "plot=false")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"no Chromium at {CHROMIUM}; install Debian's (apt-get install "
            "chromium) or set TSAL_CHROMIUM to a Chromium or Chrome binary"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One encoder cache for the module's runs, so only the first one trains."""
    return tmp_path_factory.mktemp("web-cache")


class WebRun:
    """The command line with oracle=web, and its page's state."""

    def __init__(self, tmp_path: Path, data_root: Path, cache: Path) -> None:
        self.run_dir = tmp_path / "run"
        self.store = tmp_path / "labels.csv"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tmp_path / "output.log"
        self.args = (data_root, cache)
        self.job: subprocess.Popen | None = None

    def start(self) -> None:
        data_root, cache = self.args
        with self.log.open("a") as output:
            self.job = start_cli(
                self.run_dir,
                data_root,
                "oracle=web",
                f"oracle.port={self.port}",
                f"oracle.store={self.store}",
                *ROUNDS,
                cache=cache,
                output=output,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.job.poll() is None, self.log.read_text()[-3000:]
            try:
                self.state()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"the page never came up:\n{self.log.read_text()}")

    def state(self) -> dict:
        with urllib.request.urlopen(f"{self.url}api/state", timeout=5) as response:
            return json.loads(response.read())

    def wait_for(self, condition, what: str) -> dict:
        """Poll the page's state until `condition(state)` holds."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.job.poll() is None, self.log.read_text()[-3000:]
            state = self.state()
            if condition(state):
                return state
            time.sleep(0.1)
        raise AssertionError(f"waited in vain for {what}:\n{self.log.read_text()}")

    def wait_for_round(self, iteration: int, open_items: int) -> dict:
        return self.wait_for(
            lambda s: (
                s["status"] == "labelling"
                and s["iteration"] == iteration
                and s["total"] - s["answered"] == open_items
            ),
            f"round {iteration} with {open_items} series to label",
        )

    def finish(self) -> None:
        assert self.job.wait(timeout=120) == 0, self.log.read_text()[-3000:]

    def received(self) -> dict[int, list[tuple[int, int]]]:
        """(series_id, label) pairs of queries.csv, by iteration."""
        rounds: dict[int, list[tuple[int, int]]] = {}
        with (self.run_dir / "queries.csv").open() as handle:
            for row in csv.DictReader(handle):
                rounds.setdefault(int(row["iteration"]), []).append(
                    (int(row["series_id"]), int(row["label"]))
                )
        return rounds

    def stored(self) -> list[tuple[int, int]]:
        with self.store.open() as handle:
            return [
                (int(r["series_id"]), int(r["label"])) for r in csv.DictReader(handle)
            ]


LABELS = {"anomaly": 1, "normal": 0, "skip": -1}


def shown_series(page: Page) -> int:
    """The id of the series drawn large on the page."""
    title = page.locator("#title").inner_text()
    return int(re.match(r"Series (\d+) ", title).group(1))


def wait_for_page_round(page: Page, iteration: int) -> None:
    """Wait until the page shows a series of round `iteration`."""
    page.wait_for_function(
        "n => document.querySelector('#progress').textContent"
        ".startsWith(`round ${n} of`) && !document.querySelector('#current')"
        ".classList.contains('hidden')",
        arg=iteration,
    )


def answer(page: Page, run: WebRun, label: str, how: str) -> int:
    """Answer the series shown large by button or key; return its id."""
    series = shown_series(page)
    before = run.state()
    if how == "click":
        page.click(f"#answer-{label}")
    else:
        page.keyboard.press(label[0])
    run.wait_for(
        lambda s: (
            s["answered"] > before["answered"]
            or s["iteration"] != before["iteration"]
            or s["status"] != "labelling"
        ),
        f"the answer {label} for series {series}",
    )
    page.wait_for_function(
        "id => !document.querySelector('#title').textContent"
        ".startsWith(`Series ${id} `) || document.querySelector('#current')"
        ".classList.contains('hidden')",
        arg=series,
    )
    return series


@pytest.fixture
def run(tmp_path, data_root, shared_cache) -> Iterator[WebRun]:
    """A run with oracle=web, killed at the end if a failed test left it waiting."""
    web_run = WebRun(tmp_path, data_root, shared_cache)
    yield web_run
    if web_run.job is not None and web_run.job.poll() is None:
        web_run.job.kill()
        web_run.job.wait(timeout=30)


def test_page_labels_rounds_by_click_and_by_keyboard(run, browser):
    run.start()
    page = browser.new_page()
    page.goto(run.url)
    state = run.wait_for_round(1, 3)

    # The plot: the queried series over the labelled normal ones.
    page.wait_for_selector("#plot polyline.series")
    points = page.eval_on_selector("#plot polyline.series", "e => e.points.length")
    assert points == len(state["items"][0]["values"]) == 140
    assert page.locator("#plot polyline.reference").count() == 3
    assert re.search(r"anomaly probability: \d+ %", page.inner_text("#title"))
    assert "round 1 of 2 · 0 of 3 answered" in page.inner_text("#progress")

    given = [
        (answer(page, run, label, "click"), LABELS[label])
        for label in ("normal", "anomaly", "skip")
    ]
    run.wait_for_round(2, 3)
    wait_for_page_round(page, 2)
    given += [
        (answer(page, run, label, "key"), LABELS[label])
        for label in ("anomaly", "normal", "normal")
    ]
    run.finish()
    # The open page says that the run has finished, and raises no alarm.
    page.wait_for_function(
        "document.querySelector('#message').textContent.includes('has finished')"
    )
    page.wait_for_timeout(2500)  # longer than one poll of the page
    assert "error" not in page.get_attribute("#message", "class")

    received = run.received()
    assert received[1] == given[:3]
    assert received[2] == given[3:]
    assert run.stored() == given
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["completed"]
    assert summary["final"]["labels_used"] == 5


def test_restart_mid_round_loses_no_label(run, browser):
    run.start()
    page = browser.new_page()
    page.goto(run.url)
    run.wait_for_round(1, 3)
    wait_for_page_round(page, 1)
    before = [answer(page, run, "anomaly", "click"), answer(page, run, "normal", "key")]

    # The run dies mid-round, without any chance to clean up.
    run.job.send_signal(signal.SIGKILL)
    run.job.wait(timeout=30)
    page.wait_for_selector("#message.error", timeout=15_000)
    assert "not answering" in page.inner_text("#message")

    run.start()  # the same command again; the open page reconnects by itself
    state = run.wait_for_round(1, 1)
    left = state["items"][0]["series_id"]
    assert left not in before
    wait_for_page_round(page, 1)
    assert shown_series(page) == left
    given = [(before[0], 1), (before[1], 0), (answer(page, run, "skip", "click"), -1)]
    run.wait_for_round(2, 3)
    wait_for_page_round(page, 2)
    given += [(answer(page, run, "normal", "key"), 0) for _ in range(3)]
    run.finish()

    assert run.received() == {1: given[:3], 2: given[3:]}
    # Every series was asked once: one answer each in the store.
    assert run.stored() == given
    assert "iteration 1: 2 of 3 labels taken from the label store" in (
        run.log.read_text()
    )
