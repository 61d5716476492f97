"""Reading, finding and downloading UCR data sets.

Downloads go to a server on 127.0.0.1 that each test starts and that serves a
zip the test builds; nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from plugins.data.ucr import DataError, DownloadError, UCRSource, read_ucr_text

NAME = "Toy"


def toy_files() -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    files = {}
    for split, n in (("TRAIN", 6), ("TEST", 9)):
        buffer = io.StringIO()
        classes = np.arange(n) % 3 + 1
        table = np.column_stack([classes, rng.standard_normal((n, 12))])
        np.savetxt(buffer, table, fmt="%16.7e", delimiter="")
        files[f"{NAME}_{split}.txt"] = buffer.getvalue().encode()
    return files


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(files: dict[str, bytes], folder: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(f"{NAME}.arff", b"@relation toy\n")
        for name, data in files.items():
            bundle.writestr(folder + name, data)
    return buffer.getvalue()


class Server:
    """Serves ``routes`` (path -> bytes) on 127.0.0.1 and counts requests."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        # Paths whose responses stop after half the body until `release` is set.
        self.stall: set[str] = set()
        self.release = threading.Event()
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.truncate:
                    body = body[: len(body) // 2]
                    self.close_connection = True
                if self.path in server.stall:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    server.release.wait()
                    return
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"


@pytest.fixture
def server() -> Iterator[Server]:
    server = Server()
    server.thread.start()
    yield server
    server.release.set()
    server.httpd.shutdown()
    server.httpd.server_close()


def cache_contents(cache: Path) -> list[str]:
    """Names in the data cache, without the lock file that downloads share."""
    return sorted(p.name for p in cache.iterdir() if p.name != f".{NAME}.lock")


def source(server: Server, cache: Path, **options) -> UCRSource:
    files = toy_files()
    options.setdefault("sha256", {name: sha(data) for name, data in files.items()})
    return UCRSource(
        NAME, cache_dir=cache, url=server.base + "/{name}.zip", timeout=5, **options
    )


def test_download_extracts_checks_and_reads(server, tmp_path):
    files = toy_files()
    archive = make_zip(files, folder="Toy/")
    server.routes["/Toy.zip"] = archive
    data = source(server, tmp_path, zip_sha256=sha(archive))

    series, classes = data.load()

    assert series.shape == (15, 12)
    assert list(classes[:6]) == [1, 2, 3, 1, 2, 3]
    assert sorted(p.name for p in (tmp_path / NAME).iterdir()) == sorted(files)
    assert cache_contents(tmp_path) == [NAME], "zip or scratch left"


def test_second_load_uses_the_cache(server, tmp_path):
    server.routes["/Toy.zip"] = make_zip(toy_files())
    data = source(server, tmp_path)
    first = data.load()
    second = data.load()
    assert server.requests == ["/Toy.zip"]
    np.testing.assert_array_equal(first[0], second[0])


def test_zip_checksum_mismatch_leaves_nothing(server, tmp_path):
    server.routes["/Toy.zip"] = make_zip(toy_files())
    data = source(server, tmp_path, zip_sha256="0" * 64)
    with pytest.raises(DownloadError, match="sha256") as error:
        data.load()
    assert data.url in str(error.value)
    assert "data.root" in str(error.value)
    assert cache_contents(tmp_path) == []


def test_file_checksum_mismatch_is_rejected(server, tmp_path):
    files = toy_files()
    server.routes["/Toy.zip"] = make_zip(files)
    data = source(server, tmp_path, sha256={f"{NAME}_TEST.txt": "f" * 64})
    with pytest.raises(DownloadError, match=f"{NAME}_TEST.txt in the zip has sha256"):
        data.load()
    assert cache_contents(tmp_path) == []


def test_missing_archive_names_url_and_root(server, tmp_path):
    data = source(server, tmp_path)
    with pytest.raises(DownloadError, match="404") as error:
        data.load()
    assert server.base + "/Toy.zip" in str(error.value)
    assert "TSAL_DATA_ROOT" in str(error.value)


def test_truncated_download_is_rejected(server, tmp_path):
    server.routes["/Toy.zip"] = make_zip(toy_files())
    server.truncate.add("/Toy.zip")
    data = source(server, tmp_path)
    with pytest.raises(DownloadError, match="download"):
        data.load()
    assert cache_contents(tmp_path) == []


@pytest.mark.parametrize("fault", ["truncated", "checksum"])
def test_failed_download_is_retried_cleanly(server, tmp_path, fault):
    archive = make_zip(toy_files())
    data = source(server, tmp_path, zip_sha256=sha(archive))
    if fault == "truncated":
        server.routes["/Toy.zip"] = archive
        server.truncate.add("/Toy.zip")
    else:
        server.routes["/Toy.zip"] = make_zip({**toy_files(), "extra.txt": b"1 2\n"})
    with pytest.raises(DownloadError):
        data.load()
    assert cache_contents(tmp_path) == []

    # The archive is whole again; the next load downloads from scratch.
    server.routes["/Toy.zip"] = archive
    server.truncate.clear()
    series, _ = data.load()

    assert series.shape == (15, 12)
    assert server.requests == ["/Toy.zip", "/Toy.zip"]
    assert cache_contents(tmp_path) == [NAME]


DOWNLOAD = """
import sys
from plugins.data.ucr import UCRSource
UCRSource("Toy", cache_dir=sys.argv[1], url=sys.argv[2], timeout=60).load()
"""


def test_killed_download_leaves_nothing_for_next_run(server, tmp_path, caplog):
    archive = make_zip(toy_files())
    server.routes["/Toy.zip"] = archive
    server.stall.add("/Toy.zip")
    url = server.base + "/Toy.zip"
    job = subprocess.Popen(
        [sys.executable, "-c", DOWNLOAD, str(tmp_path), url],
        cwd=Path(__file__).resolve().parents[1],
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(f".{NAME}-*/{NAME}.zip")):
        assert job.poll() is None, f"the download ended early, code {job.returncode}"
        assert time.monotonic() < deadline, "the download never started"
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)
    assert [p.name for p in tmp_path.glob(f".{NAME}-*")], "no scratch to clean up"

    server.stall.clear()
    caplog.set_level("WARNING", logger="plugins.data.ucr")
    series, _ = source(server, tmp_path, zip_sha256=sha(archive)).load()

    assert series.shape == (15, 12)
    assert cache_contents(tmp_path) == [NAME]
    assert "left by a download that stopped" in caplog.text


def test_zip_without_the_data_set(server, tmp_path):
    files = toy_files()
    del files[f"{NAME}_TEST.txt"]
    server.routes["/Toy.zip"] = make_zip(files)
    with pytest.raises(DownloadError, match=f"{NAME}_TEST.txt is missing from the zip"):
        source(server, tmp_path).load()


def test_not_a_zip(server, tmp_path):
    server.routes["/Toy.zip"] = b"<html>maintenance</html>"
    with pytest.raises(DownloadError, match="not a zip"):
        source(server, tmp_path).load()


def test_unreachable_server_fails_fast(tmp_path):
    # Bind a port on 127.0.0.1, then close it so that nothing listens there.
    probe = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()
    data = UCRSource(NAME, cache_dir=tmp_path, url=f"http://127.0.0.1:{port}/x.zip")
    with pytest.raises(DownloadError, match="download failed"):
        data.load()


def test_root_is_used_without_network(tmp_path):
    (tmp_path / NAME).mkdir()
    for name, data in toy_files().items():
        (tmp_path / NAME / name).write_bytes(data)
    data = UCRSource(NAME, root=tmp_path, url="http://127.0.0.1:9/never.zip")
    assert data.load()[0].shape == (15, 12)
    # The files may also sit directly in root.
    flat = UCRSource(NAME, root=tmp_path / NAME, url="http://127.0.0.1:9/never.zip")
    assert flat.load()[0].shape == (15, 12)


def test_wrong_root_is_an_error_not_a_download(tmp_path):
    data = UCRSource(NAME, root=tmp_path / "nowhere", url="http://127.0.0.1:9/x.zip")
    with pytest.raises(DataError, match="nowhere.*data.root"):
        data.load()


def test_damaged_local_file_names_the_file(tmp_path):
    for name, data in toy_files().items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / f"{NAME}_TRAIN.txt").write_bytes(b"1 2 3\n")
    expected = {f"{NAME}_TRAIN.txt": sha(toy_files()[f"{NAME}_TRAIN.txt"])}
    data = UCRSource(NAME, root=tmp_path, sha256=expected)
    with pytest.raises(DataError, match=f"{NAME}_TRAIN.txt has sha256"):
        data.load()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 0.5 0.25\n2 0.5\n", "line 2: 2 fields where line 1 has 3"),
        ("1 0.5 0.25\n2 0.5 oops\n", "line 2, field 3: 'oops' is not a number"),
        ("1 0.5 NaN\n", "line 1, field 3: 'NaN' is not a finite number"),
        ("1 inf 0.5\n", "field 2: 'inf' is not a finite number"),
        ("1.5 0.5 0.5\n", "class label '1.5' is not a whole number"),
        ("\n\n", "contains no series"),
        ("", "contains no series"),
        ("label,t1,t2\n1,0.5,0.25\n", "line 1, field 1: 'label' is not a number"),
        ("1\n", "a label and at least one sample"),
    ],
)
def test_malformed_text_is_reported_with_its_line(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_ucr_text(path)


def test_train_and_test_of_other_lengths_are_rejected(tmp_path):
    (tmp_path / f"{NAME}_TRAIN.txt").write_text("1 0.5 0.25\n2 0.5 0.75\n")
    (tmp_path / f"{NAME}_TEST.txt").write_text("1 0.5 0.25 0.5\n")
    data = UCRSource(NAME, root=tmp_path, url="http://127.0.0.1:9/x.zip")
    with pytest.raises(DataError, match=r"different lengths \[2, 3\]"):
        data.load()


def test_commas_and_blank_lines_are_accepted(tmp_path):
    path = tmp_path / "commas.txt"
    path.write_text("1,0.5,0.25\n\n2,1.5,-2\n")
    series, classes = read_ucr_text(path)
    np.testing.assert_array_equal(series, [[0.5, 0.25], [1.5, -2.0]])
    np.testing.assert_array_equal(classes, [1, 2])


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_ucr_text(tmp_path / "absent.txt")


def test_real_ecg5000_files(data_root):
    series, classes = UCRSource(
        "ECG5000",
        root=data_root,
        sha256={
            "ECG5000_TRAIN.txt": (
                "0d96aff193311a6dc6111bf0dbd2f7d2313987fbf7a1da4a383d92563876057b"
            ),
            "ECG5000_TEST.txt": (
                "baf4ad57d28daa5e79050edd4185968181762bc83d45a757753015b4ba8ab295"
            ),
        },
    ).load()
    assert series.shape == (5000, 140)
    assert np.bincount(classes).tolist() == [0, 2919, 1767, 96, 194, 24]


def test_root_missing_test_file_names_it(tmp_path):
    (tmp_path / NAME).mkdir()
    train = f"{NAME}_TRAIN.txt"
    (tmp_path / NAME / train).write_bytes(toy_files()[train])
    data = UCRSource(NAME, root=tmp_path, url="http://127.0.0.1:9/x.zip")
    with pytest.raises(DataError, match=f"{NAME}_TEST.txt not found in") as error:
        data.load()
    assert f"{train} not found" not in str(error.value)
