"""Cache of trained encoders, shared by the runs and sweep jobs of one machine.

An entry is keyed by everything that determines the trained weights. The
series of the pool, validation and test splits cover the data, the split
fractions, the anomaly classes and the split seed. The encoder and trainer
settings, the batch size and the seed complete the key. An entry contains the
weights, the codes and scores of every split, and `meta.json` with the sha256
of both files.

Entries are written to a temporary directory and renamed into place, so no
reader sees half an entry. A lock file per key makes parallel jobs with the
same key wait while one of them trains. An entry whose files do not match
their sha256 is deleted and trained again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock, Timeout

from framework.encoder import FitReport

log = logging.getLogger(__name__)

# Bump when the layout of an entry or the meaning of its files changes.
FORMAT = 1
WEIGHTS = "weights.pt"
FEATURES = "features.npz"
META = "meta.json"
# Trainer options that change what is printed, not what is trained.
COSMETIC_TRAINER_OPTIONS = ("enable_progress_bar", "enable_model_summary")
# Options of the encoder group that set where weights are kept, not which.
CACHE_OPTIONS = ("cache", "cache_dir")


@dataclass
class CachedEncoder:
    """A trained encoder's weights, codes and scores, and how it was trained."""

    state_dict: dict[str, torch.Tensor]
    features: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    fit: FitReport


def encoder_key(
    series: Mapping[str, np.ndarray],
    encoder: Mapping[str, Any],
    trainer: Mapping[str, Any],
    seed: int,
) -> str:
    """Hash everything that determines an encoder's weights into a cache key.

    Args:
        series: The series of each split, by split name.
        encoder: The resolved `encoder` config group.
        trainer: The resolved `trainer` config group.
        seed: Seed of the weight initialisation and the batch order.
    """
    digest = hashlib.sha256()
    for name in sorted(series):
        values = np.ascontiguousarray(series[name], dtype=np.float64)
        digest.update(f"{name}:{values.shape}".encode())
        digest.update(values.tobytes())
    trainer = {
        key: value
        for key, value in trainer.items()
        if key not in COSMETIC_TRAINER_OPTIONS
    }
    encoder = {key: value for key, value in encoder.items() if key not in CACHE_OPTIONS}
    settings = {"format": FORMAT, "encoder": encoder, "trainer": trainer, "seed": seed}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class EncoderCache:
    """Directory of trained encoders, one subdirectory per key.

    Args:
        directory: Where entries are kept; created on first use.
        lock_timeout: Seconds a job waits for another job training the same
            key before giving up; None waits without limit.
    """

    def __init__(
        self, directory: str | Path, lock_timeout: float | None = None
    ) -> None:
        self.directory = Path(directory).expanduser()
        self.lock_timeout = lock_timeout

    def entry(self, key: str) -> Path:
        return self.directory / key

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the lock of `key`, logging when another job holds it first."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.directory / f"{key}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("waiting for another run that trains encoder %s", key)
            timeout = -1 if self.lock_timeout is None else self.lock_timeout
            try:
                lock.acquire(timeout=timeout)
            except Timeout:
                raise TimeoutError(
                    f"encoder cache lock {lock.lock_file} still held after "
                    f"{self.lock_timeout} s; if no other run is training, delete "
                    "the lock file"
                ) from None
        try:
            yield
        finally:
            lock.release()

    def load(self, key: str) -> CachedEncoder | None:
        """Return the entry of `key`, or None when it is missing or damaged.

        A damaged entry (a file missing or not matching its sha256) is
        deleted with a warning, so that the caller trains it again.
        """
        entry = self.entry(key)
        if not entry.exists():
            return None
        try:
            meta = json.loads((entry / META).read_text())
            for name in (WEIGHTS, FEATURES):
                actual = _sha256(entry / name)
                expected = meta["sha256"][name]
                if actual != expected:
                    raise ValueError(f"{name} has sha256 {actual}, not {expected}")
            state_dict = torch.load(entry / WEIGHTS, weights_only=True)
            with np.load(entry / FEATURES) as arrays:
                features = {
                    name[len("codes_") :]: arrays[name]
                    for name in arrays.files
                    if name.startswith("codes_")
                }
                scores = {
                    name[len("scores_") :]: arrays[name]
                    for name in arrays.files
                    if name.startswith("scores_")
                }
            fit = FitReport(**meta["fit"])
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            RuntimeError,
            pickle.UnpicklingError,
        ) as error:
            log.warning(
                "encoder cache entry %s is damaged (%s); deleting it and training "
                "again",
                entry,
                error,
            )
            shutil.rmtree(entry, ignore_errors=True)
            return None
        return CachedEncoder(state_dict, features, scores, fit)

    def store(self, key: str, cached: CachedEncoder) -> Path:
        """Write an entry atomically: build it aside, then rename it into place."""
        self.directory.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.directory))
        try:
            torch.save(cached.state_dict, scratch / WEIGHTS)
            arrays = {f"codes_{name}": value for name, value in cached.features.items()}
            arrays.update(
                {f"scores_{name}": value for name, value in cached.scores.items()}
            )
            np.savez(scratch / FEATURES, **arrays)
            meta = {
                "format": FORMAT,
                "fit": asdict(cached.fit),
                "sha256": {
                    name: _sha256(scratch / name) for name in (WEIGHTS, FEATURES)
                },
            }
            (scratch / META).write_text(json.dumps(meta, indent=2))
            entry = self.entry(key)
            if entry.exists():
                shutil.rmtree(entry)
            scratch.rename(entry)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return entry
