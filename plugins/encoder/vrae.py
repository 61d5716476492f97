"""Variational recurrent autoencoder (VRAE), an alternative to the LSTM autoencoder.

Encoder: an LSTM over the series, and two linear maps from its last hidden
state to the mean and log-variance of a diagonal Gaussian over the latent
code. Decoder: a code repeated at every time step, an LSTM and a linear map to
the input channels. Training decodes a sample of the Gaussian
(reparameterisation) and minimises the reconstruction error plus beta times the
KL divergence from a standard normal prior. Everything outside training uses
the mean, so the codes and scores of a series are not random.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from framework.encoder import adam_with_plateau

RECONSTRUCTION_ERRORS = ("l1", "mse")


class VariationalRecurrentAutoencoder(pl.LightningModule):
    """LSTM encoder to a Gaussian latent code, LSTM decoder from a sample of it.

    The loss of a series is its reconstruction error summed over time steps
    and channels plus the KL weight times its KL divergence, divided by
    length times channels. With beta 0 the loss is thus the mean error per
    value, as the LSTM autoencoder reports it.

    Args:
        hidden_size: Units of the encoder and decoder LSTM layers.
        latent_size: Size of the latent code, and so of the classifier's
            features.
        num_layers: Stacked LSTM layers in the encoder and in the decoder.
        input_size: Channels of each time step (1 for univariate series).
        reconstruction: Error per value, "l1" (absolute) or "mse" (squared).
        beta: Weight of the KL divergence in the loss, 0 or more; 1 is the
            evidence lower bound with a unit-scale likelihood.
        kl_warmup_epochs: Epochs over which the training loss's KL weight
            rises linearly from 0 to `beta`; 0 uses `beta` from the first
            epoch. The validation loss always uses `beta`, so that the
            losses of different epochs stay comparable for early stopping.
        score_includes_kl: Whether the anomaly score adds `beta` times the KL
            divergence to the reconstruction error.
        learning_rate: Adam step size.
        lr_patience: Epochs without a lower validation loss before the step
            size is halved (ReduceLROnPlateau); None keeps it constant.
        min_learning_rate: Floor of the step size when it is reduced.
    """

    def __init__(
        self,
        hidden_size: int = 48,
        latent_size: int = 24,
        num_layers: int = 1,
        input_size: int = 1,
        reconstruction: str = "l1",
        beta: float = 1.0,
        kl_warmup_epochs: int = 0,
        score_includes_kl: bool = False,
        learning_rate: float = 1e-3,
        lr_patience: int | None = None,
        min_learning_rate: float = 1e-5,
    ) -> None:
        super().__init__()
        _check_settings(
            hidden_size=hidden_size,
            latent_size=latent_size,
            num_layers=num_layers,
            input_size=input_size,
            reconstruction=reconstruction,
            beta=beta,
            kl_warmup_epochs=kl_warmup_epochs,
            learning_rate=learning_rate,
            lr_patience=lr_patience,
        )
        self.save_hyperparameters()

        self.encoder_lstm = nn.LSTM(
            input_size, hidden_size, num_layers=num_layers, batch_first=True
        )
        self.to_mean = nn.Linear(hidden_size, latent_size)
        self.to_log_variance = nn.Linear(hidden_size, latent_size)
        self.decoder_lstm = nn.LSTM(
            latent_size, hidden_size, num_layers=num_layers, batch_first=True
        )
        self.output = nn.Linear(hidden_size, input_size)

    @property
    def code_size(self) -> int:
        return self.hparams.latent_size

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the mean and log-variance of each series' code, (batch, latent)."""
        _, (state, _) = self.encoder_lstm(x)
        last = state[-1]
        return self.to_mean(last), self.to_log_variance(last)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Return the code of each series: the posterior mean, (batch, latent)."""
        return self.posterior(x)[0]

    def decode(self, code: torch.Tensor, length: int) -> torch.Tensor:
        repeated = code.unsqueeze(1).expand(-1, length, -1)
        hidden, _ = self.decoder_lstm(repeated)
        return self.output(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct each series from its posterior mean."""
        return self.decode(self.encode(x), x.shape[1])

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Return the anomaly score of each series, (batch,).

        The score is the reconstruction error from the posterior mean, summed
        over time steps and channels, plus `beta` times the KL divergence when
        `score_includes_kl` is set.
        """
        mean, log_variance = self.posterior(x)
        error = self.reconstruction_error(self.decode(mean, x.shape[1]), x)
        if self.hparams.score_includes_kl:
            error = error + self.hparams.beta * kl_divergence(mean, log_variance)
        return error

    def reconstruction_error(
        self, reconstructed: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        """Return the error of each series summed over steps and channels, (batch,)."""
        difference = reconstructed - x
        if self.hparams.reconstruction == "mse":
            return difference.square().sum(dim=(1, 2))
        return difference.abs().sum(dim=(1, 2))

    def kl_weight(self) -> float:
        """Return the KL weight of the training loss in the current epoch."""
        warmup = self.hparams.kl_warmup_epochs
        if warmup == 0:
            return float(self.hparams.beta)
        return float(self.hparams.beta) * min(1.0, self.current_epoch / warmup)

    def loss(
        self, x: torch.Tensor, kl_weight: float, sample: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return the loss, mean reconstruction error and mean KL of a batch.

        All three are divided by the values per series (length × channels).
        `sample` decodes a reparameterised sample instead of the mean.
        """
        mean, log_variance = self.posterior(x)
        code = mean
        if sample:
            noise = torch.randn_like(mean)
            code = mean + noise * torch.exp(0.5 * log_variance)
        values = x.shape[1] * x.shape[2]
        error = self.reconstruction_error(self.decode(code, x.shape[1]), x)
        kl = kl_divergence(mean, log_variance)
        loss = (error + kl_weight * kl).mean() / values
        return loss, error.mean() / values, kl.mean() / values

    def training_step(self, batch: list[torch.Tensor], batch_idx: int):
        (x,) = batch
        loss, _, kl = self.loss(x, self.kl_weight(), sample=True)
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        self.log("train_kl", kl, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int):
        (x,) = batch
        loss, error, kl = self.loss(x, float(self.hparams.beta), sample=False)
        self.log("val_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        self.log("val_reconstruction", error, on_step=False, on_epoch=True)
        self.log("val_kl", kl, on_step=False, on_epoch=True)

    def configure_optimizers(self):
        return adam_with_plateau(
            self.parameters(),
            self.hparams.learning_rate,
            self.hparams.lr_patience,
            self.hparams.min_learning_rate,
        )


def kl_divergence(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """Return KL(N(mean, exp(log_variance)) || N(0, I)) of each row, (batch,)."""
    return 0.5 * (log_variance.exp() + mean.square() - 1.0 - log_variance).sum(dim=1)


def _check_settings(
    *,
    hidden_size: int,
    latent_size: int,
    num_layers: int,
    input_size: int,
    reconstruction: str,
    beta: float,
    kl_warmup_epochs: int,
    learning_rate: float,
    lr_patience: int | None,
) -> None:
    """Reject constructor arguments that cannot train, naming the config key."""
    sizes = {
        "hidden_size": hidden_size,
        "latent_size": latent_size,
        "num_layers": num_layers,
        "input_size": input_size,
    }
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"encoder.module.{key}={value!r} is invalid: it must be a whole "
                "number, at least 1"
            )
    if reconstruction not in RECONSTRUCTION_ERRORS:
        raise ValueError(
            f"encoder.module.reconstruction={reconstruction!r} is invalid: it must "
            f"be one of {list(RECONSTRUCTION_ERRORS)}"
        )
    if beta < 0:
        raise ValueError(f"encoder.module.beta={beta} is invalid: it must be >= 0")
    if (
        isinstance(kl_warmup_epochs, bool)
        or not isinstance(kl_warmup_epochs, int)
        or kl_warmup_epochs < 0
    ):
        raise ValueError(
            f"encoder.module.kl_warmup_epochs={kl_warmup_epochs!r} is invalid: it "
            "must be a whole number of epochs, 0 or more"
        )
    if learning_rate <= 0:
        raise ValueError(
            f"encoder.module.learning_rate={learning_rate} is invalid: it must be > 0"
        )
    if lr_patience is not None and lr_patience < 0:
        raise ValueError(
            f"encoder.module.lr_patience={lr_patience} is invalid: it must be >= 0, "
            "or null for a constant step size"
        )
