"""The encoder cache: keys, damaged entries, and parallel jobs training once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from small_run import TINY_ENCODER

from framework.cache import CachedEncoder, EncoderCache, encoder_key
from framework.encoder import FitReport

REPO = Path(__file__).resolve().parents[1]
SERIES = {"pool": np.arange(12.0).reshape(3, 4), "validation": np.ones((2, 4))}
ENCODER = {"module": {"_target_": "x.Y", "hidden_sizes": [48, 24]}, "batch_size": 64}
TRAINER = {"max_epochs": 150, "enable_progress_bar": True}


def entry_for_test() -> CachedEncoder:
    return CachedEncoder(
        state_dict={"weight": torch.arange(6.0).reshape(2, 3)},
        features={"pool": np.ones((3, 2)), "test": np.zeros((1, 2))},
        scores={"pool": np.array([1.0, 2.0, 3.0]), "test": np.array([0.5])},
        fit=FitReport(epochs=3, best_epoch=2, best_val_loss=0.25, seconds=1.5),
    )


def test_key_ignores_cosmetic_and_cache_options():
    key = encoder_key(SERIES, ENCODER, TRAINER, seed=0)
    quiet = {**TRAINER, "enable_progress_bar": False}
    elsewhere = {**ENCODER, "cache": True, "cache_dir": "/elsewhere"}
    assert encoder_key(SERIES, ENCODER, quiet, seed=0) == key
    assert encoder_key(SERIES, elsewhere, TRAINER, seed=0) == key


def test_key_changes_with_what_determines_weights():
    key = encoder_key(SERIES, ENCODER, TRAINER, seed=0)
    shifted = {**SERIES, "pool": SERIES["pool"] + 1e-9}
    smaller = {**ENCODER, "module": {**ENCODER["module"], "hidden_sizes": [8, 4]}}
    longer = {**TRAINER, "max_epochs": 151}
    assert encoder_key(SERIES, ENCODER, TRAINER, seed=1) != key
    assert encoder_key(shifted, ENCODER, TRAINER, seed=0) != key
    assert encoder_key(SERIES, smaller, TRAINER, seed=0) != key
    assert encoder_key(SERIES, ENCODER, longer, seed=0) != key


def test_store_then_load_round_trip(tmp_path):
    cache = EncoderCache(tmp_path)
    stored = entry_for_test()
    cache.store("k", stored)
    loaded = cache.load("k")
    assert loaded is not None
    torch.testing.assert_close(loaded.state_dict["weight"], stored.state_dict["weight"])
    np.testing.assert_array_equal(loaded.features["pool"], stored.features["pool"])
    np.testing.assert_array_equal(loaded.scores["test"], stored.scores["test"])
    assert loaded.fit == stored.fit
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"], "scratch left"


def test_missing_entry_loads_as_none(tmp_path):
    assert EncoderCache(tmp_path).load("absent") is None


@pytest.mark.parametrize("damage", ["truncate_weights", "flip_features", "drop_meta"])
def test_damaged_entry_is_deleted(tmp_path, damage, caplog):
    cache = EncoderCache(tmp_path)
    entry = cache.store("k", entry_for_test())
    if damage == "truncate_weights":
        data = (entry / "weights.pt").read_bytes()
        (entry / "weights.pt").write_bytes(data[: len(data) // 2])
    elif damage == "flip_features":
        data = bytearray((entry / "features.npz").read_bytes())
        data[-10] ^= 0xFF
        (entry / "features.npz").write_bytes(bytes(data))
    else:
        (entry / "meta.json").unlink()
    assert cache.load("k") is None
    assert not entry.exists()
    assert "damaged" in caplog.text


def test_load_rejects_pickled_code(tmp_path):
    """Weights load with weights_only=True, so a pickle with code is refused."""
    cache = EncoderCache(tmp_path)
    entry = cache.store("k", entry_for_test())
    torch.save({"weight": print}, entry / "weights.pt")
    meta = json.loads((entry / "meta.json").read_text())
    meta["sha256"]["weights.pt"] = (
        __import__("hashlib").sha256((entry / "weights.pt").read_bytes()).hexdigest()
    )
    (entry / "meta.json").write_text(json.dumps(meta))
    assert cache.load("k") is None


TRAIN_ONCE = """
import json, sys
from hydra import compose, initialize_config_dir
from framework.experiment import load_splits, trained_encoder
with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    cfg = compose("config", overrides=sys.argv[2:])
_, origin = trained_encoder(cfg, load_splits(cfg))
print(json.dumps(origin))
"""


def test_parallel_jobs_train_encoder_once(tmp_path, data_root):
    overrides = [
        "+experiment=ecg5000",
        "logger=none",
        f"encoder.cache_dir={tmp_path / 'encoders'}",
        *TINY_ENCODER,
    ]
    environment = {**os.environ, "TSAL_DATA_ROOT": str(data_root)}
    command = [sys.executable, "-c", TRAIN_ONCE, str(REPO / "conf"), *overrides]
    jobs = [
        subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [job.communicate(timeout=300)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0]
    origins = sorted(
        json.loads(output.strip().splitlines()[-1])["cache"] for output in outputs
    )
    assert origins == ["loaded", "stored"]
    entries = [p for p in (tmp_path / "encoders").iterdir() if p.is_dir()]
    assert len(entries) == 1
