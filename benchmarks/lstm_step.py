"""Seconds per training step of the LSTM autoencoder by batch size and precision.

    .venv/bin/python benchmarks/lstm_step.py

times forward, backward and an Adam step of the (48, 24) autoencoder on
random series of length 140, with one torch thread by default, for batch
sizes 1 to 64, in float32 and under bfloat16 autocast. It prints the time
per step and per epoch of 3500 series (the ECG5000 pool), which shows how
much a larger batch buys on this CPU.
"""

from __future__ import annotations

import argparse
import time

import torch

from plugins.encoder.lstm_ae import LSTMAutoencoder

BATCH_SIZES = (1, 8, 16, 32, 64)
POOL = 3500


def seconds_per_step(batch_size: int, bfloat16: bool, steps: int) -> float:
    torch.manual_seed(0)
    module = LSTMAutoencoder(hidden_sizes=(48, 24))
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    series = torch.randn(batch_size, 140, 1)

    def step() -> None:
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            loss = module.loss(module(series), series)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up: oneDNN picks its kernels on first use
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20, help="timed steps each")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)

    print(f"{arguments.threads} torch thread(s)")
    print(f"{'precision':<10}{'batch':>6}{'ms/step':>10}{'s/epoch':>10}")
    for bfloat16 in (False, True):
        for batch_size in BATCH_SIZES:
            seconds = seconds_per_step(batch_size, bfloat16, arguments.steps)
            epoch = seconds * POOL / batch_size
            name = "bfloat16" if bfloat16 else "float32"
            print(f"{name:<10}{batch_size:>6}{seconds * 1000:>10.1f}{epoch:>10.1f}")


if __name__ == "__main__":
    main()
