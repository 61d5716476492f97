"""Encoder training time against a sample-by-sample reference, side by side.

    TSAL_DATA_ROOT=../shared/data .venv/bin/python benchmarks/encoder_speed.py

trains the LSTM autoencoder on the ECG5000 pool twice in one process:

1. with the framework's training (`fit_encoder` and the `trainer` and
   `encoder` config groups, so any `--override` applies), timing every epoch;
2. as the authors did: a plain PyTorch loop over one series at a time, Adam
   with step size 1e-3, for `--reference-epochs` epochs (150 by default, about
   40 minutes on 2 cores).

It prints the validation loss the reference ends with, the seconds each side
needed to reach it (and a few higher losses on the way), and their ratio.
The reference's clock leaves out its per-epoch validation; the framework's
clock includes everything Lightning does, validation too.

`--reference-epochs 0 --target LOSS` trains the framework side only and
prints its seconds to each loss, for trying settings against a reference
loss measured before (0.0865 in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from framework.encoder import as_tensor, fit_encoder
from framework.experiment import load_splits

CONF = Path(__file__).resolve().parents[1] / "conf"
MILESTONES = (0.3, 0.2, 0.15, 0.12, 0.1)


class EpochClock(pl.Callback):
    """Record (seconds since training started, validation loss) per epoch."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.curve: list[tuple[float, float]] = []

    def on_fit_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule):
        if trainer.sanity_checking:
            return
        loss = float(trainer.callback_metrics["val_loss"])
        self.curve.append((time.perf_counter() - self.start, loss))


def framework_curve(cfg, splits) -> list[tuple[float, float]]:
    torch.manual_seed(cfg.seed)
    module = instantiate(cfg.encoder.module)
    clock = EpochClock()
    fit_encoder(
        module,
        OmegaConf.to_container(cfg.trainer, resolve=True),
        splits.pool.series,
        splits.validation.series,
        batch_size=cfg.encoder.batch_size,
        seed=cfg.seed,
        callbacks=[clock],
    )
    return clock.curve


def reference_curve(cfg, splits, epochs: int) -> list[tuple[float, float]]:
    """Train one series per step, Adam 1e-3, as the authors' code does."""
    torch.manual_seed(cfg.seed)
    module = instantiate(cfg.encoder.module, learning_rate=1e-3)
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-3)
    train, validation = (
        as_tensor(splits.pool.series),
        as_tensor(splits.validation.series),
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    curve, training_seconds = [], 0.0
    for epoch in range(epochs):
        module.train()
        start = time.perf_counter()
        for index in torch.randperm(len(train), generator=generator):
            series = train[index : index + 1]
            optimiser.zero_grad()
            module.loss(module(series), series).backward()
            optimiser.step()
        training_seconds += time.perf_counter() - start
        module.eval()
        with torch.no_grad():
            loss = float(module.loss(module(validation), validation))
        curve.append((training_seconds, loss))
        print(
            f"reference epoch {epoch + 1}/{epochs}: validation loss {loss:.4f} "
            f"after {training_seconds:.0f} s",
            flush=True,
        )
    return curve


def seconds_to_reach(curve: list[tuple[float, float]], loss: float) -> float | None:
    return next((seconds for seconds, value in curve if value <= loss), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-epochs", type=int, default=150)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads of both sides"
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        help="config override of the framework side, e.g. trainer.max_epochs=50",
    )
    parser.add_argument(
        "--target",
        type=float,
        help="validation loss to time; default: the reference's last one",
    )
    arguments = parser.parse_args()
    if arguments.reference_epochs < 0:
        parser.error(f"--reference-epochs {arguments.reference_epochs} must be >= 0")
    if arguments.reference_epochs == 0 and arguments.target is None:
        parser.error(
            "--reference-epochs 0 needs --target LOSS, the loss to time the "
            "framework side against (0.0865 in docs/benchmarks.md)"
        )
    torch.set_num_threads(arguments.threads)

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "+experiment=ecg5000",
                "trainer.enable_progress_bar=false",
                *arguments.override,
            ],
        )
    splits = load_splits(cfg)
    print(
        f"pool {len(splits.pool)} series, validation {len(splits.validation)}, "
        f"{arguments.threads} torch thread(s), {os.cpu_count()} cores",
        flush=True,
    )

    ours = framework_curve(cfg, splits)
    print(
        f"framework: {len(ours)} epochs in {ours[-1][0]:.0f} s, best validation "
        f"loss {min(loss for _, loss in ours):.4f} "
        f"(batch size {cfg.encoder.batch_size}, "
        f"step size {cfg.encoder.module.learning_rate})",
        flush=True,
    )
    if arguments.reference_epochs == 0:
        print()
        print(f"{'validation loss':<18}{'framework s':>12}")
        for loss in (
            *[m for m in MILESTONES if m > arguments.target],
            arguments.target,
        ):
            print(f"{loss:<18.4f}{_seconds(seconds_to_reach(ours, loss)):>12}")
        print_verdict(ours, arguments.target)
        return
    reference = reference_curve(cfg, splits, arguments.reference_epochs)
    target = reference[-1][1] if arguments.target is None else arguments.target

    print()
    print(f"{'validation loss':<18}{'reference s':>12}{'framework s':>12}{'ratio':>8}")
    for loss in (*[m for m in MILESTONES if m > target], target):
        theirs, mine = seconds_to_reach(reference, loss), seconds_to_reach(ours, loss)
        if loss == target and arguments.target is None:
            theirs = reference[-1][0]
        ratio = f"{theirs / mine:8.1f}" if theirs and mine else f"{'-':>8}"
        print(
            f"{loss:<18.4f}{_seconds(theirs):>12}{_seconds(mine):>12}{ratio}"
            + (
                "  <- reference after all its epochs"
                if loss == target and arguments.target is None
                else ""
            )
        )
    print_verdict(ours, target)


def print_verdict(ours: list[tuple[float, float]], target: float) -> None:
    reached = seconds_to_reach(ours, target)
    verdict = (
        f"reached in {reached:.0f} s"
        if reached is not None
        else "not reached; best " + f"{min(loss for _, loss in ours):.4f}"
    )
    print(
        f"target: under 60 s to a validation loss of {target:.4f}; framework {verdict}"
    )


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    main()
