"""Data sets of the UCR time-series classification archive.

A data set ``NAME`` is the pair ``NAME_TRAIN.txt`` and ``NAME_TEST.txt``: one
series per line, the class label first, then the samples, separated by
whitespace or commas. The framework pools both files and makes its own split,
so :meth:`UCRSource.load` returns them concatenated.

Where the files come from, first match wins:

1. ``root`` when given: ``<root>/<NAME>/`` or ``<root>/`` itself. A ``root``
   that contains neither is an error, never a silent download.
2. The cache: ``<cache_dir>/<NAME>/``.
3. The archive: ``<url>`` is downloaded into the cache, checked and extracted.

Every file is checked against its sha256 when the configuration lists one.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from framework.series_files import SeriesFileError, read_ucr

log = logging.getLogger(__name__)

ARCHIVE_URL = "https://timeseriesclassification.com/aeon-toolkit/{name}.zip"
SPLITS = ("TRAIN", "TEST")
_CHUNK = 1 << 20


class DataError(ValueError):
    """A data file is missing, malformed or not the expected one."""


class DownloadError(RuntimeError):
    """The archive could not be fetched, checked or extracted."""


def read_ucr_text(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one UCR text file into ``(series, classes)``.

    ``series`` is a float array of shape ``(n, length)`` and ``classes`` an
    integer array of shape ``(n,)``. Blank lines are ignored; every other line
    must hold the same number of finite numbers.

    Parsed files are kept in memory, keyed by path, size and modification
    time, so the jobs of a sweep that share a worker process parse each file
    once.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    stat = path.stat()
    series, classes = _read_ucr_text(
        str(path.resolve()), stat.st_size, stat.st_mtime_ns
    )
    return series.copy(), classes.copy()


@functools.lru_cache(maxsize=8)
def _read_ucr_text(
    path_text: str, size: int, mtime_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    # `size` and `mtime_ns` only key the cache, so an edited file is read again.
    try:
        parsed = read_ucr(path_text)
    except SeriesFileError as error:
        raise DataError(str(error)) from None
    return parsed.series, parsed.classes


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class UCRSource:
    """Finds, fetches and reads one data set of the UCR archive.

    Parameters
    ----------
    name:
        Data set name as the archive spells it, for example ``ECG5000``.
    root:
        Directory with local copies of the files; see the module docstring.
    cache_dir:
        Where downloaded data sets are kept, one directory per data set.
    url:
        Address of the zip; ``{name}`` is replaced by ``name``.
    sha256:
        Expected sha256 of each text file, by file name. Files not listed are
        not checked.
    zip_sha256:
        Expected sha256 of the downloaded zip, when known.
    timeout:
        Seconds to wait for the server before giving up.
    """

    def __init__(
        self,
        name: str,
        root: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike = "~/.cache/tsal/datasets",
        url: str = ARCHIVE_URL,
        sha256: Mapping[str, str] | None = None,
        zip_sha256: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        if not name or "/" in name or "\\" in name:
            raise DataError(
                f"data set name {name!r} is not a plain archive name such as 'ECG5000'"
            )
        self.name = name
        self.root = Path(root).expanduser() if root else None
        self.cache_dir = Path(cache_dir).expanduser()
        self.url = url.format(name=name)
        self.sha256 = dict(sha256 or {})
        self.zip_sha256 = zip_sha256
        self.timeout = timeout

    @property
    def files(self) -> list[str]:
        return [f"{self.name}_{split}.txt" for split in SPLITS]

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(series, classes)`` of both archive files, TRAIN first."""
        directory = self.locate()
        parts = [read_ucr_text(directory / file) for file in self.files]
        lengths = {part[0].shape[1] for part in parts}
        if len(lengths) > 1:
            raise DataError(
                f"{self.files[0]} and {self.files[1]} in {directory} hold series "
                f"of different lengths {sorted(lengths)}"
            )
        series = np.concatenate([part[0] for part in parts])
        classes = np.concatenate([part[1] for part in parts])
        return series, classes

    def locate(self) -> Path:
        """Directory holding checked copies of both files, downloading if needed."""
        if self.root is not None:
            candidates = (self.root / self.name, self.root)
            for directory in candidates:
                if self._has_files(directory):
                    self._verify(directory, fix="replace it with the archive's copy")
                    log.info("data %s read from %s", self.name, directory)
                    return directory
            # Name the files that are missing where the data set partly is.
            partial = next(
                (d for d in candidates if any((d / f).is_file() for f in self.files)),
                candidates[0],
            )
            missing = [f for f in self.files if not (partial / f).is_file()]
            raise DataError(
                f"data.root={self.root}: {', '.join(missing)} not found in "
                f"{partial}; put {' and '.join(self.files)} in {candidates[0]} or "
                f"{candidates[1]}, point data.root (or TSAL_DATA_ROOT) at the "
                "directory holding them, or set it to null to download them"
            )
        cached = self.cache_dir / self.name
        if self._has_files(cached):
            self._verify(cached, fix="delete it to download it again")
            log.info("data %s read from the cache %s", self.name, cached)
            return cached
        self.download(cached)
        return cached

    def _has_files(self, directory: Path) -> bool:
        return all((directory / file).is_file() for file in self.files)

    def _verify(self, directory: Path, fix: str | None = None) -> None:
        """Check each file against its sha256; `fix` is the advice for a mismatch."""
        for file in self.files:
            expected = self.sha256.get(file)
            if expected is None:
                continue
            actual = sha256_of(directory / file)
            if actual == expected.lower():
                continue
            where = f"{directory / file}" if fix else f"{file} in the zip"
            advice = (
                f"; the file is damaged or a different version: {fix}" if fix else ""
            )
            raise DataError(
                f"{where} has sha256 {actual}, expected {expected}{advice}. To "
                "use other files on purpose, set data.source.sha256=null"
            )

    def download(self, target: Path) -> None:
        """Fetch the zip, check it and extract both files into ``target``.

        The zip is fetched and extracted in a scratch directory next to
        ``target`` and renamed into place only when every check passes, so a
        failed download leaves nothing behind. A lock file lets one run at a
        time download; the run holding it deletes scratch directories that a
        killed run left behind.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(target.parent / f".{self.name}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("waiting for another run that downloads data %s", self.name)
            lock.acquire()
        try:
            if self._has_files(target):
                log.info("data %s already downloaded by another run", self.name)
                self._verify(target, fix="delete it to download it again")
                return
            for stale in target.parent.glob(f".{self.name}-*"):
                log.warning("deleting %s, left by a download that stopped", stale)
                shutil.rmtree(stale, ignore_errors=True)
            self._download_unlocked(target)
        finally:
            lock.release()

    def _download_unlocked(self, target: Path) -> None:
        log.info("data %s not found locally; downloading %s", self.name, self.url)
        with tempfile.TemporaryDirectory(
            prefix=f".{self.name}-", dir=target.parent
        ) as scratch:
            scratch = Path(scratch)
            archive = scratch / f"{self.name}.zip"
            try:
                self._fetch(archive)
                self._check_zip(archive)
                extracted = scratch / self.name
                self._extract(archive, extracted)
                self._verify(extracted)
            except (DataError, DownloadError, zipfile.BadZipFile) as error:
                raise DownloadError(
                    f"could not get data set {self.name} from {self.url}: {error}. "
                    f"Download the zip yourself, extract {self.files[0]} and "
                    f"{self.files[1]} into a directory and set data.root (or "
                    "TSAL_DATA_ROOT) to it"
                ) from error
            if target.exists():
                shutil.rmtree(target)
            extracted.rename(target)
        log.info("data %s extracted to %s", self.name, target)

    def _fetch(self, archive: Path) -> None:
        try:
            with (
                urllib.request.urlopen(self.url, timeout=self.timeout) as response,
                archive.open("wb") as handle,
            ):
                expected = response.headers.get("Content-Length")
                received = 0
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
                    received += len(chunk)
        except urllib.error.HTTPError as error:
            raise DownloadError(
                f"the server responded {error.code} {error.reason}"
            ) from error
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", None) or repr(error)
            raise DownloadError(f"the download failed ({reason})") from error
        if expected is not None and received != int(expected):
            raise DownloadError(
                f"the download stopped after {received} of {expected} bytes"
            )

    def _check_zip(self, archive: Path) -> None:
        if self.zip_sha256 is not None:
            actual = sha256_of(archive)
            if actual != self.zip_sha256.lower():
                raise DownloadError(
                    f"the zip has sha256 {actual}, expected {self.zip_sha256}"
                )
        if not zipfile.is_zipfile(archive):
            raise DownloadError("the downloaded file is not a zip archive")

    def _extract(self, archive: Path, directory: Path) -> None:
        directory.mkdir()
        with zipfile.ZipFile(archive) as bundle:
            members = {
                Path(info.filename).name: info
                for info in bundle.infolist()
                if not info.is_dir()
            }
            for file in self.files:
                if file not in members:
                    raise DownloadError(f"{file} is missing from the zip")
                with (
                    bundle.open(members[file]) as source,
                    (directory / file).open("wb") as sink,
                ):
                    shutil.copyfileobj(source, sink, _CHUNK)
