"""Training of an encoder plugin and extraction of its codes and anomaly scores.

An encoder plugin is a `pytorch_lightning.LightningModule` that, besides the
usual `training_step`, `validation_step` and `configure_optimizers`, has:

- `encode(x) -> Tensor` of shape (batch, code_size): the features of the
  classifier;
- `score(x) -> Tensor` of shape (batch,): the anomaly score of each series,
  higher meaning more anomalous.

`x` has shape (batch, length, channels). The validation step must log
`val_loss`, which early stopping and best-weight selection monitor.
"""

from __future__ import annotations

import copy
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping
from torch.utils.data import DataLoader, TensorDataset

log = logging.getLogger(__name__)

REQUIRED_METHODS = ("encode", "score", "training_step", "configure_optimizers")
MONITOR = "val_loss"


def check_encoder(module: Any) -> None:
    """Reject an encoder plugin that lacks what the loop needs.

    Raises:
        TypeError: naming the plugin class and the missing methods.
    """
    name = type(module).__qualname__
    if not isinstance(module, pl.LightningModule):
        raise TypeError(
            f"encoder {name} is not a pytorch_lightning.LightningModule; "
            "subclass it and add encode(x) and score(x)"
        )
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(module, m, None))]
    if missing:
        raise TypeError(f"encoder {name} lacks the methods {missing}")


def adam_with_plateau(
    parameters: Any,
    learning_rate: float,
    lr_patience: int | None,
    min_learning_rate: float,
) -> Any:
    """Build Adam, halved after `lr_patience` epochs without a lower val_loss.

    The return value is what `configure_optimizers` of an encoder returns;
    `lr_patience` None keeps the step size constant.
    """
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    if lr_patience is None:
        return optimizer
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.5, patience=lr_patience, min_lr=min_learning_rate
    )
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler, "monitor": MONITOR},
    }


def as_tensor(series: np.ndarray) -> torch.Tensor:
    """Convert (n_series, length) values to a float32 tensor (n, length, 1)."""
    tensor = torch.as_tensor(series, dtype=torch.float32)
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(-1)
    return tensor


class BestWeights(Callback):
    """Keep the weights with the lowest validation loss and restore them at the end.

    Early stopping halts `patience` epochs after the best one; the classifier
    should see the codes of the best epoch, not of the last.
    """

    def __init__(self, monitor: str = MONITOR) -> None:
        self.monitor = monitor
        self.best_score = float("inf")
        self.best_epoch = 0
        self._state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule):
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise RuntimeError(
                f"encoder {type(module).__qualname__} logged no '{self.monitor}' in "
                f"validation_step; log it with self.log('{self.monitor}', loss)"
            )
        if float(value) < self.best_score:
            self.best_score = float(value)
            # Counted from 1, as in the per-epoch log lines.
            self.best_epoch = trainer.current_epoch + 1
            self._state = copy.deepcopy(module.state_dict())

    def on_fit_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self._state is not None:
            module.load_state_dict(self._state)


class EpochLog(Callback):
    """Log one line per epoch, so that a run's log shows how training went."""

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule):
        # Lightning runs validation before this hook, so both losses here
        # belong to the epoch that just ended.
        metrics = trainer.callback_metrics
        losses = ", ".join(
            f"{name} {float(metrics[name]):.4f}"
            for name in ("train_loss", MONITOR)
            if name in metrics
        )
        log.info(
            "encoder epoch %d/%d: %s",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            losses,
        )


@dataclass(frozen=True)
class FitReport:
    """Summary of one encoder training: epochs, best epoch and its loss, time."""

    epochs: int
    best_epoch: int
    best_val_loss: float
    seconds: float


def fit_encoder(
    module: pl.LightningModule,
    trainer_options: dict[str, Any],
    train_series: np.ndarray,
    val_series: np.ndarray,
    batch_size: int,
    seed: int,
    callbacks: Sequence[Callback] = (),
) -> FitReport:
    """Train `module` on `train_series`, early-stopping on `val_series`.

    Args:
        module: The encoder plugin; trained in place and left on the CPU with
            the weights of its best validation epoch.
        trainer_options: Keyword arguments of `pytorch_lightning.Trainer`, plus
            `early_stopping` (keyword arguments of `EarlyStopping`, or None to
            train for `max_epochs`). `enable_progress_bar` may also be "auto":
            a bar when stderr is a terminal, none in log files.
        train_series: Unlabelled series, shape (n_series, length).
        val_series: Series whose loss is monitored, shape (n_series, length).
        batch_size: Series per mini-batch.
        seed: Seed of the weight initialisation and the batch order.
        callbacks: Further Lightning callbacks, for example to time epochs.
    """
    if batch_size < 1:
        raise ValueError(f"encoder.batch_size={batch_size} must be at least 1")
    options = dict(trainer_options)
    early_stopping = options.pop("early_stopping", None)
    if options.get("enable_progress_bar") == "auto":
        options["enable_progress_bar"] = sys.stderr.isatty()
    best = BestWeights()
    all_callbacks: list[Callback] = [best, EpochLog(), *callbacks]
    if early_stopping:
        all_callbacks.append(EarlyStopping(**{"monitor": MONITOR, **early_stopping}))

    options.setdefault("logger", False)
    options.setdefault("enable_checkpointing", False)
    options.setdefault("enable_model_summary", False)
    trainer = pl.Trainer(callbacks=all_callbacks, **options)

    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        TensorDataset(as_tensor(train_series)),
        batch_size=batch_size,
        shuffle=True,
        generator=generator,
    )
    val_loader = DataLoader(
        TensorDataset(as_tensor(val_series)), batch_size=max(batch_size, 256)
    )

    module.train()
    start = time.perf_counter()
    with warnings.catch_warnings():
        # The series are in memory as tensors; worker processes would only
        # add start-up time.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # Raised inside Lightning's own pytree helper on recent torch; nothing
        # a user of the framework can act on.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
        trainer.fit(module, train_loader, val_loader)
    seconds = time.perf_counter() - start
    module.cpu().eval()

    report = FitReport(
        epochs=trainer.current_epoch,
        best_epoch=best.best_epoch,
        best_val_loss=best.best_score,
        seconds=seconds,
    )
    log.info(
        "encoder trained: %d epochs in %.1f s, best validation loss %.4f at epoch %d",
        report.epochs,
        report.seconds,
        report.best_val_loss,
        report.best_epoch,
    )
    return report


@torch.no_grad()
def encode_and_score(
    module: pl.LightningModule, series: np.ndarray, batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Return the codes (n_series, code_size) and anomaly scores (n_series,)."""
    module.eval()
    device = module.device
    codes, scores = [], []
    for (batch,) in DataLoader(TensorDataset(as_tensor(series)), batch_size):
        batch = batch.to(device)
        codes.append(module.encode(batch).cpu().numpy())
        scores.append(module.score(batch).cpu().numpy())
    return (
        np.concatenate(codes).astype(np.float64),
        np.concatenate(scores).astype(np.float64),
    )


def reconstruction_profiles(
    module: pl.LightningModule, series: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """Return each series' reconstruction error at each time step, (n, length).

    An encoder may define `errors(x) -> Tensor (batch, length)`; otherwise
    the profile is |module(x) - x| summed over channels, which needs a
    `forward` that returns the reconstruction.

    Raises:
        TypeError: the encoder has no `errors` and its output is not a
            reconstruction of the input.
    """
    module.eval()
    device = module.device
    profiles = []
    with torch.no_grad():
        for (batch,) in DataLoader(TensorDataset(as_tensor(series)), batch_size):
            batch = batch.to(device)
            if callable(getattr(module, "errors", None)):
                profile = module.errors(batch)
            else:
                reconstructed = module(batch)
                if not isinstance(reconstructed, torch.Tensor) or (
                    reconstructed.shape != batch.shape
                ):
                    raise TypeError(
                        f"encoder {type(module).__qualname__} has no errors(x) and "
                        "its forward(x) does not return a reconstruction of x, so "
                        "features.profile_segments cannot be computed; add "
                        "errors(x) returning the error of each time step"
                    )
                profile = (reconstructed - batch).abs().sum(dim=2)
            profiles.append(profile.cpu().numpy())
    return np.concatenate(profiles).astype(np.float64)
