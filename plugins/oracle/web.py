"""Labelling in the browser: the run serves a page that shows each queried series.

The page (`web_page.html`, no outside resources) polls `GET /api/state` and
posts each answer to `POST /api/answer`. An answer is written to the label
store before the server replies, and the loop goes on once every series of
the round has an answer. Until then an answer can be changed.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from framework.data import Split
from framework.interfaces import Round
from framework.labels import LABEL_NAMES, Annotator

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("web_page.html")
# Seconds between checks for Ctrl-C while the loop waits for answers.
WAIT_STEP = 0.5
# Seconds the server stays up after the run ends, so that an open page
# (which polls every second) shows that the run finished.
FAREWELL = 1.5
# Largest request body the server reads: one answer is a few dozen bytes.
MAX_BODY = 4096


class WebOracle(Annotator):
    """Ask a person for labels on a local web page.

    Args:
        pool: The pool split.
        store: Path of the label store (see `framework.labels`).
        host: Address the server listens on. The page has no password, so
            keep the default 127.0.0.1 and reach a remote machine through an
            SSH tunnel (`ssh -L 8765:127.0.0.1:8765 host`).
        port: Port of the server; 0 picks a free one, named in the log.
        references: Labelled normal series drawn behind each queried one.

    Raises:
        ValueError: `port` or `references` is out of range.
        OSError: the server cannot listen on `host`:`port`.
    """

    name = "web"

    def __init__(
        self,
        pool: Split,
        store: str | Path,
        host: str = "127.0.0.1",
        port: int = 8765,
        references: int = 3,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 2**16:
            raise ValueError(
                f"oracle.port={port!r} is invalid: it must be a port number from "
                "1 to 65535, or 0 to pick a free port"
            )
        if isinstance(references, bool) or not isinstance(references, int):
            raise ValueError(f"oracle.references={references!r} must be a number")
        if references < 0:
            raise ValueError(
                f"oracle.references={references} is invalid: it must be 0 or more"
            )
        self.references = references
        self.last_poll = -math.inf
        self._condition = threading.Condition()
        self._round: Round | None = None
        self._asking: list[int] = []
        self._answers: dict[int, int] = {}
        self._status = "waiting"
        self._message = (
            "The encoder is training. The first series appear here when it has "
            "finished."
        )
        try:
            self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        except OSError as error:
            raise OSError(
                f"oracle=web cannot listen on {host}:{port} ({error.strerror}); "
                "set oracle.port to a free port, or to 0 to pick one"
            ) from None
        self._server.daemon_threads = True
        # The store is opened once the port is ours, so that a busy port
        # leaves no empty store behind.
        super().__init__(pool, store)
        self.host = host
        self.port = self._server.server_address[1]
        self.url = f"http://{_url_host(host)}:{self.port}/"
        # On a loopback address, the Host names that the page can be reached
        # by; elsewhere the machine's own names are not known here.
        self.allowed_hosts: set[str] | None = None
        if _is_loopback(host):
            self.allowed_hosts = {
                f"{name}:{self.port}"
                for name in (_url_host(host), "localhost", "127.0.0.1", "[::1]")
            }
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="web-oracle", daemon=True
        )
        self._thread.start()
        log.info("label in the browser at %s", self.url)
        if not _is_loopback(host):
            log.warning(
                "oracle.host=%s: the labelling page has no password, so anyone who "
                "reaches this address can label; prefer 127.0.0.1 and an SSH tunnel",
                host,
            )

    def ask(self, positions: np.ndarray, round: Round) -> None:
        with self._condition:
            self._round = round
            self._asking = [int(p) for p in positions]
            self._answers = {}
            self._status = "labelling"
            self._condition.notify_all()
        log.info(
            "iteration %d: %d series await labels at %s",
            round.iteration,
            len(positions),
            self.url,
        )
        with self._condition:
            try:
                while self._asking:
                    # A timeout, so that Ctrl-C reaches the main thread.
                    self._condition.wait(timeout=WAIT_STEP)
            finally:
                self._end_round()

    def _end_round(self) -> None:
        self._asking = []
        self._status = "waiting"
        self._message = (
            "The classifier is learning from your answers. The next series "
            "appear here in a moment."
        )

    def answer(self, series_id: Any, label: Any) -> dict[str, Any]:
        """Record the answer for one series of the round and return the state.

        Raises:
            ValueError: `label` is no label name, or `series_id` is not asked
                for in this round.
        """
        names = {name: value for value, name in LABEL_NAMES.items()}
        if isinstance(label, int) and not isinstance(label, bool):
            label = LABEL_NAMES.get(label, label)
        if label not in names:
            raise ValueError(
                f"label {label!r} is invalid: send one of {', '.join(sorted(names))}"
            )
        if isinstance(series_id, bool) or not isinstance(series_id, int):
            raise ValueError(
                f"series_id {series_id!r} is invalid: send the series' number as a "
                "JSON integer"
            )
        with self._condition:
            position = next(
                (p for p in self._asking if self.series_id(p) == series_id), None
            )
            if position is None:
                raise LookupError(
                    f"series {series_id} is not asked for now; reload the page"
                )
            self.store.record(position, names[label])
            self._answers[position] = names[label]
            if len(self._answers) == len(self._asking):
                # The round is complete: the page must not show its series as
                # still open while the loop refits.
                self._end_round()
            self._condition.notify_all()
            return self.state()

    def state(self) -> dict[str, Any]:
        """Return what the page shows: the round, its series and their answers."""
        with self._condition:
            round = self._round
            items = [
                {
                    "series_id": self.series_id(p),
                    "probability": _number(round.probability(p)) if round else None,
                    "values": _values(self.pool.series[p]),
                    "label": LABEL_NAMES.get(self._answers.get(p, 99)),
                }
                for p in self._asking
            ]
            normals = [] if round is None else round.normals[: self.references]
            return {
                "status": self._status,
                "message": self._message,
                "iteration": round.iteration if round else None,
                "iterations": round.iterations if round else None,
                "labels_used": round.labels_used if round else 0,
                "answered": len(self._answers),
                "total": len(self._asking),
                "store": str(self.store.path),
                "items": items,
                "references": [_values(self.pool.series[p]) for p in normals],
            }

    def close(self) -> None:
        """Tell the page that the run has ended, then stop the server."""
        with self._condition:
            self._status = "finished"
            self._message = (
                "The run has finished. Its results are in its output folder, and "
                f"every answer is in {self.store.path}."
            )
        if time.monotonic() - self.last_poll < 5:
            time.sleep(FAREWELL)
        self._server.shutdown()
        self._server.server_close()
        log.info("labelling page at %s closed", self.url)


def _handler_for(oracle: WebOracle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "tsal-web-oracle"

        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            if self.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html")
            elif self.path == "/api/state":
                oracle.last_poll = time.monotonic()
                self._send_json(HTTPStatus.OK, oracle.state())
            else:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": "no such page"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/api/answer":
                self._send_json(HTTPStatus.NOT_FOUND, {"error": "no such page"})
                return
            # Answers come only from the page itself: a JSON body (which a
            # form on another site cannot send without asking first) and this
            # server's own host name (which DNS rebinding would change).
            allowed = oracle.allowed_hosts
            host = self.headers.get("Host")
            if allowed is not None and host not in allowed:
                self._reject(HTTPStatus.FORBIDDEN, f"unknown Host header {host!r}")
                return
            if self.headers.get_content_type() != "application/json":
                self._reject(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                    f"content type {self.headers.get_content_type()!r}; send the "
                    "answer as application/json",
                )
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if length > MAX_BODY:
                self._reject(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"a body of {length} bytes is over the limit of {MAX_BODY}",
                )
                return
            try:
                if length <= 0:
                    raise ValueError("the body is empty")
                body = json.loads(self.rfile.read(length))
                if not isinstance(body, dict) or {"series_id", "label"} - set(body):
                    raise ValueError(f"got {str(body)[:80]}")
                state = oracle.answer(body["series_id"], body["label"])
            except LookupError as error:
                self._reject(HTTPStatus.CONFLICT, str(error))
            except ValueError as error:
                self._reject(
                    HTTPStatus.BAD_REQUEST,
                    'send {"series_id": <number>, "label": "normal", "anomaly" '
                    f'or "skip"}} as JSON: {error}',
                )
            else:
                self._send_json(HTTPStatus.OK, state)

        def do_PUT(self) -> None:  # noqa: N802
            self._reject(
                HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not supported"
            )

        do_DELETE = do_PATCH = do_PUT  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("web oracle: " + format, *args)

        def _reject(self, status: HTTPStatus, reason: str) -> None:
            log.warning(
                "web oracle: answer from %s rejected (%d): %s",
                self.client_address[0],
                status,
                reason,
            )
            self._send_json(status, {"error": reason})

        def _send_json(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _values(series: np.ndarray) -> list[float]:
    return [round(float(value), 4) for value in series]


def _number(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
