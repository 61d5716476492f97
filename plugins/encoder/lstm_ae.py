"""LSTM autoencoder of Šabata and Holeňa (2020).

Encoder: stacked LSTM layers (48 then 24 units); the last hidden state of the
last layer is the code. Decoder: the code repeated at every time step, fed
through the layer sizes in reverse (24 then 48), and a linear map to the
input channels. Trained on the L1 reconstruction error.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch import nn

from framework.encoder import adam_with_plateau


class LSTMAutoencoder(pl.LightningModule):
    """Sequence-to-sequence LSTM autoencoder with a fixed-size code.

    Args:
        hidden_sizes: Units of each encoder LSTM layer; the last one is the
            code size. The decoder uses them in reverse order.
        input_size: Channels of each time step (1 for univariate series).
        learning_rate: Adam step size.
        lr_patience: Epochs without a lower validation loss before the step
            size is halved (ReduceLROnPlateau); None keeps it constant.
        min_learning_rate: Floor of the step size when it is reduced.
    """

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (48, 24),
        input_size: int = 1,
        learning_rate: float = 1e-3,
        lr_patience: int | None = None,
        min_learning_rate: float = 1e-5,
    ) -> None:
        super().__init__()
        hidden_sizes = [int(size) for size in hidden_sizes]
        if not hidden_sizes or min(hidden_sizes) < 1:
            raise ValueError(
                f"encoder hidden_sizes={hidden_sizes} must list at least one "
                "positive layer size"
            )
        if learning_rate <= 0:
            raise ValueError(f"encoder learning_rate={learning_rate} must be > 0")
        if lr_patience is not None and lr_patience < 0:
            raise ValueError(
                f"encoder lr_patience={lr_patience} must be >= 0, or null for a "
                "constant step size"
            )
        self.save_hyperparameters()

        self.encoder_layers = _stack(input_size, hidden_sizes)
        decoder_sizes = hidden_sizes[::-1]
        self.decoder_layers = _stack(decoder_sizes[0], decoder_sizes)
        self.output = nn.Linear(decoder_sizes[-1], input_size)
        self.loss = nn.L1Loss()

    @property
    def code_size(self) -> int:
        return self.hparams.hidden_sizes[-1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Return the code of each series: the last hidden state, (batch, code)."""
        hidden = x
        for layer in self.encoder_layers:
            hidden, (state, _) = layer(hidden)
        return state[-1]

    def decode(self, code: torch.Tensor, length: int) -> torch.Tensor:
        hidden = code.unsqueeze(1).expand(-1, length, -1)
        for layer in self.decoder_layers:
            hidden, _ = layer(hidden)
        return self.output(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x), x.shape[1])

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Return the reconstruction error of each series: sum of |x - x̂|."""
        return (self(x) - x).abs().sum(dim=(1, 2))

    def training_step(self, batch: list[torch.Tensor], batch_idx: int):
        (x,) = batch
        loss = self.loss(self(x), x)
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int):
        (x,) = batch
        loss = self.loss(self(x), x)
        self.log("val_loss", loss, prog_bar=True, on_step=False, on_epoch=True)

    def configure_optimizers(self):
        return adam_with_plateau(
            self.parameters(),
            self.hparams.learning_rate,
            self.hparams.lr_patience,
            self.hparams.min_learning_rate,
        )


def _stack(input_size: int, sizes: Sequence[int]) -> nn.ModuleList:
    layers, previous = [], input_size
    for size in sizes:
        layers.append(nn.LSTM(previous, size, batch_first=True))
        previous = size
    return nn.ModuleList(layers)
