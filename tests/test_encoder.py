import numpy as np
import pytest
import torch

from framework.encoder import check_encoder, encode_and_score, fit_encoder
from plugins.encoder.lstm_ae import LSTMAutoencoder

TRAINER = {
    "max_epochs": 3,
    "accelerator": "cpu",
    "devices": 1,
    "deterministic": True,
    "enable_progress_bar": False,
    "early_stopping": None,
}


def sines(n: int, length: int = 30, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    return np.sin(np.linspace(0, 4 * np.pi, length) + phase)


def test_lstm_autoencoder_code_is_last_hidden_state():
    module = LSTMAutoencoder(hidden_sizes=(48, 24))
    x = torch.as_tensor(sines(5), dtype=torch.float32).unsqueeze(-1)
    hidden, _ = module.encoder_layers[0](x)
    outputs, _ = module.encoder_layers[1](hidden)
    assert torch.allclose(module.encode(x), outputs[:, -1])


def test_lstm_autoencoder_shapes():
    module = LSTMAutoencoder(hidden_sizes=(48, 24))
    x = torch.zeros(4, 30, 1)
    assert module.encode(x).shape == (4, 24)
    assert module(x).shape == (4, 30, 1)
    assert module.score(x).shape == (4,)


def test_lstm_autoencoder_score_is_sum_of_absolute_errors():
    module = LSTMAutoencoder(hidden_sizes=(8, 4))
    x = torch.as_tensor(sines(3), dtype=torch.float32).unsqueeze(-1)
    with torch.no_grad():
        expected = (module(x) - x).abs().sum(dim=(1, 2))
        assert torch.allclose(module.score(x), expected)


def test_lstm_autoencoder_rejects_bad_sizes():
    with pytest.raises(ValueError, match="hidden_sizes"):
        LSTMAutoencoder(hidden_sizes=(48, 0))


def test_lstm_autoencoder_halves_step_size_on_plateau():
    module = LSTMAutoencoder(hidden_sizes=(8, 4), learning_rate=0.01, lr_patience=0)
    config = module.configure_optimizers()
    scheduler = config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["monitor"] == "val_loss"
    scheduler.step(1.0)
    scheduler.step(2.0)  # no improvement with patience 0: halve
    assert config["optimizer"].param_groups[0]["lr"] == pytest.approx(0.005)


def test_lstm_autoencoder_constant_step_size_without_patience():
    optimizer = LSTMAutoencoder(hidden_sizes=(8, 4)).configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)


def test_lstm_autoencoder_rejects_negative_lr_patience():
    with pytest.raises(ValueError, match="lr_patience=-1"):
        LSTMAutoencoder(hidden_sizes=(8, 4), lr_patience=-1)


def test_fit_encoder_lowers_validation_loss():
    train, val = sines(48, seed=0), sines(16, seed=1)
    module = LSTMAutoencoder(hidden_sizes=(16, 8), learning_rate=0.01)
    _, before = encode_and_score(module, val)
    report = fit_encoder(module, TRAINER, train, val, batch_size=8, seed=0)
    _, after = encode_and_score(module, val)
    assert report.epochs == 3
    assert after.mean() < before.mean()


def test_fit_encoder_is_reproducible():
    train, val = sines(32, seed=0), sines(8, seed=1)
    codes = []
    for _ in range(2):
        torch.manual_seed(0)
        module = LSTMAutoencoder(hidden_sizes=(8, 4))
        fit_encoder(module, TRAINER, train, val, batch_size=8, seed=0)
        codes.append(encode_and_score(module, val)[0])
    assert np.array_equal(codes[0], codes[1])


def test_fit_encoder_keeps_best_epoch_weights():
    train, val = sines(32, seed=0), sines(8, seed=1)
    module = LSTMAutoencoder(hidden_sizes=(8, 4), learning_rate=0.01)
    report = fit_encoder(module, TRAINER, train, val, batch_size=8, seed=0)
    _, scores = encode_and_score(module, val)
    val_loss = scores.sum() / val.size
    assert val_loss == pytest.approx(report.best_val_loss, rel=1e-4)


def test_fit_encoder_stops_early():
    train, val = sines(16, seed=0), sines(8, seed=1)
    module = LSTMAutoencoder(hidden_sizes=(8, 4))
    # No epoch improves the loss by 10, so training stops after patience + 1.
    stopping = {"patience": 2, "min_delta": 10.0}
    options = {**TRAINER, "max_epochs": 20, "early_stopping": stopping}
    report = fit_encoder(module, options, train, val, batch_size=8, seed=0)
    assert report.epochs == 3


def test_check_encoder_names_missing_methods():
    class NoScore(LSTMAutoencoder):
        score = None

    with pytest.raises(TypeError, match=r"NoScore lacks the methods \['score'\]"):
        check_encoder(NoScore())


def test_check_encoder_rejects_plain_module():
    with pytest.raises(TypeError, match="not a pytorch_lightning.LightningModule"):
        check_encoder(torch.nn.Linear(2, 2))


def test_epoch_log_lines_carry_both_losses(caplog):
    caplog.set_level("INFO", logger="framework.encoder")
    train, val = sines(16, seed=0), sines(8, seed=1)
    module = LSTMAutoencoder(hidden_sizes=(8, 4))
    report = fit_encoder(module, TRAINER, train, val, batch_size=8, seed=0)
    lines = [r.getMessage() for r in caplog.records if "encoder epoch" in r.message]
    assert [line.split(":")[0] for line in lines] == [
        "encoder epoch 1/3",
        "encoder epoch 2/3",
        "encoder epoch 3/3",
    ]
    assert all("train_loss" in line and "val_loss" in line for line in lines)
    assert 1 <= report.best_epoch <= 3
    best_line = lines[report.best_epoch - 1]
    assert f"val_loss {report.best_val_loss:.4f}" in best_line
