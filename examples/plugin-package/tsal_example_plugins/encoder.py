"""A GRU autoencoder: the LSTM autoencoder's shape with GRU layers."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn


class GRUAutoencoder(pl.LightningModule):
    """Sequence-to-sequence GRU autoencoder; the code is the last hidden state.

    Args:
        hidden_size: Units of the encoder and decoder layer, the code size.
        learning_rate: Adam step size.
    """

    def __init__(self, hidden_size: int = 24, learning_rate: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.encoder = nn.GRU(1, hidden_size, batch_first=True)
        self.decoder = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.output = nn.Linear(hidden_size, 1)

    # The two methods the framework needs besides Lightning's own.
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Features of each series for the classifier: (batch, hidden_size)."""
        _, state = self.encoder(x)
        return state[-1]

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Anomaly score of each series: its summed absolute reconstruction error."""
        return (self(x) - x).abs().sum(dim=(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = self.encode(x)
        repeated = code.unsqueeze(1).expand(-1, x.shape[1], -1)
        hidden, _ = self.decoder(repeated)
        return self.output(hidden)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int):
        (x,) = batch
        loss = (self(x) - x).abs().mean()
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int):
        (x,) = batch
        self.log("val_loss", (self(x) - x).abs().mean(), on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)
