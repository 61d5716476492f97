"""The variational recurrent autoencoder, trained for real on ECG5000 series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from pytorch_lightning.callbacks import Callback

from framework.cache import CachedEncoder, EncoderCache
from framework.encoder import check_encoder, encode_and_score, fit_encoder
from framework.experiment import run
from plugins.data.ucr import read_ucr_text
from plugins.encoder.vrae import VariationalRecurrentAutoencoder, kl_divergence

CONF = Path(__file__).resolve().parents[1] / "conf"
TRAINER = {
    "max_epochs": 2,
    "accelerator": "cpu",
    "devices": 1,
    "deterministic": True,
    "enable_progress_bar": False,
    "early_stopping": None,
}
SMALL = {"hidden_size": 12, "latent_size": 4, "learning_rate": 0.01}
TINY_VRAE = [
    "encoder=vrae",
    "encoder.module.hidden_size=8",
    "encoder.module.latent_size=4",
    "encoder.batch_size=256",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
]


@pytest.fixture(scope="module")
def heartbeats(data_root) -> tuple[np.ndarray, np.ndarray]:
    """48 training and 16 validation series of ECG5000, 140 values each."""
    series, _ = read_ucr_text(data_root / "ECG5000" / "ECG5000_TRAIN.txt")
    return series[:48], series[48:64]


def train(heartbeats, seed: int = 0, callbacks=(), **settings):
    torch.manual_seed(seed)
    module = VariationalRecurrentAutoencoder(**{**SMALL, **settings})
    train_series, val_series = heartbeats
    report = fit_encoder(
        module,
        TRAINER,
        train_series,
        val_series,
        batch_size=16,
        seed=seed,
        callbacks=callbacks,
    )
    return module, report


@pytest.fixture(scope="module")
def trained(heartbeats):
    """A VRAE trained for 2 epochs with beta 0.5 and a 4-epoch KL warm-up."""
    return train(heartbeats, beta=0.5, kl_warmup_epochs=4)


def as_batch(series: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(series, dtype=torch.float32).unsqueeze(-1)


def test_vrae_shapes(trained, heartbeats):
    module, _ = trained
    x = as_batch(heartbeats[1])
    check_encoder(module)
    with torch.no_grad():
        mean, log_variance = module.posterior(x)
        assert module.encode(x).shape == (16, 4)
        assert mean.shape == (16, 4)
        assert log_variance.shape == (16, 4)
        assert module(x).shape == (16, 140, 1)
        assert module.score(x).shape == (16,)


def test_vrae_code_is_posterior_mean(trained, heartbeats):
    module, _ = trained
    x = as_batch(heartbeats[1])
    with torch.no_grad():
        module.train()
        in_training_mode = module.encode(x)
        module.eval()
        again = module.encode(x)
        mean, _ = module.posterior(x)
    assert torch.equal(in_training_mode, again)
    assert torch.equal(again, mean)


def test_vrae_encoding_is_deterministic(trained, heartbeats):
    module, _ = trained
    codes, scores = encode_and_score(module, heartbeats[1])
    codes_again, scores_again = encode_and_score(module, heartbeats[1])
    np.testing.assert_array_equal(codes, codes_again)
    np.testing.assert_array_equal(scores, scores_again)


def test_vrae_score_without_kl_is_l1_error(trained, heartbeats):
    module, _ = trained
    x = as_batch(heartbeats[1])
    with torch.no_grad():
        expected = (module(x) - x).abs().sum(dim=(1, 2))
        torch.testing.assert_close(module.score(x), expected)


def test_vrae_score_adds_weighted_kl(trained, heartbeats):
    module, _ = trained
    x = as_batch(heartbeats[1])
    with torch.no_grad():
        without = module.score(x)
        module.hparams.score_includes_kl = True
        try:
            with_kl = module.score(x)
        finally:
            module.hparams.score_includes_kl = False
        kl = kl_divergence(*module.posterior(x))
    assert (kl > 0).all()
    torch.testing.assert_close(with_kl, without + 0.5 * kl)


def test_vrae_mse_score_is_squared_error(heartbeats):
    module = VariationalRecurrentAutoencoder(**SMALL, reconstruction="mse")
    x = as_batch(heartbeats[1])
    with torch.no_grad():
        expected = (module(x) - x).square().sum(dim=(1, 2))
        torch.testing.assert_close(module.score(x), expected)


def test_vrae_validation_loss_uses_full_beta(trained, heartbeats):
    module, report = trained
    x = as_batch(heartbeats[1])
    with torch.no_grad():
        loss, error, kl = module.loss(x, kl_weight=0.5, sample=False)
    # The fixture trains with a KL warm-up, so the training loss weighted the
    # KL by less than beta = 0.5 in both epochs. The 16 validation series form
    # one batch, so the logged loss is this one.
    assert report.best_val_loss == pytest.approx(float(loss), rel=1e-5)
    assert float(loss) == pytest.approx(float(error + 0.5 * kl), rel=1e-6)


def test_vrae_training_lowers_validation_loss(heartbeats):
    untrained = VariationalRecurrentAutoencoder(**SMALL)
    with torch.no_grad():
        before, _, _ = untrained.loss(as_batch(heartbeats[1]), 1.0, sample=False)
    _, report = train(heartbeats)
    assert report.epochs == 2
    assert report.best_val_loss < float(before)


def test_vrae_training_is_reproducible(heartbeats):
    first, _ = train(heartbeats, seed=3)
    second, _ = train(heartbeats, seed=3)
    other, _ = train(heartbeats, seed=4)
    codes = [encode_and_score(m, heartbeats[1])[0] for m in (first, second, other)]
    np.testing.assert_array_equal(codes[0], codes[1])
    assert not np.array_equal(codes[0], codes[2])


class KLWeightLog(Callback):
    def __init__(self) -> None:
        self.weights: list[float] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        self.weights.append(module.kl_weight())


def test_vrae_kl_weight_warms_up(heartbeats):
    weights = KLWeightLog()
    train(heartbeats, callbacks=[weights], beta=0.4, kl_warmup_epochs=4)
    assert weights.weights == pytest.approx([0.0, 0.1])
    full = VariationalRecurrentAutoencoder(**SMALL, beta=0.4)
    assert full.kl_weight() == pytest.approx(0.4)


def test_vrae_cache_round_trip(trained, heartbeats, tmp_path):
    module, report = trained
    features, scores = encode_and_score(module, heartbeats[1])
    cache = EncoderCache(tmp_path)
    cache.store("vrae", CachedEncoder(module.state_dict(), {"v": features}, {}, report))

    loaded = cache.load("vrae")
    rebuilt = VariationalRecurrentAutoencoder(**module.hparams)
    rebuilt.load_state_dict(loaded.state_dict)
    codes_again, scores_again = encode_and_score(rebuilt, heartbeats[1])

    np.testing.assert_array_equal(loaded.features["v"], features)
    np.testing.assert_array_equal(codes_again, features)
    np.testing.assert_array_equal(scores_again, scores)
    assert loaded.fit == report


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"reconstruction": "l2"}, "reconstruction='l2' is invalid"),
        ({"beta": -0.1}, "beta=-0.1 is invalid"),
        ({"kl_warmup_epochs": -1}, "kl_warmup_epochs=-1 is invalid"),
        ({"latent_size": 0}, "latent_size=0 is invalid"),
        ({"lr_patience": -1}, "lr_patience=-1 is invalid"),
    ],
)
def test_vrae_rejects_bad_settings(setting, message):
    with pytest.raises(ValueError, match=message):
        VariationalRecurrentAutoencoder(**setting)


def test_vrae_in_full_run(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("TSAL_DATA_ROOT", str(data_root))
    overrides = [
        "+experiment=ecg5000",
        "logger=none",
        "plot=false",
        *TINY_VRAE,
        "loop.iterations=1",
        "loop.n_instances=5",
        f"encoder.cache_dir={tmp_path / 'encoders'}",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides)

    first = run(cfg, tmp_path / "first")
    second = run(cfg, tmp_path / "second")

    assert first["completed"] is True
    assert first["encoder"]["cache"] == "stored"
    assert second["encoder"]["cache"] == "loaded"
    assert second["final"] == first["final"]
    assert first["choices"]["encoder"] == "VariationalRecurrentAutoencoder"
