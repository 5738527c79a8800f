"""Seconds per training epoch against the number of intra-op threads.

Times one epoch of each autoencoder over the 55,000 MNIST training images through
latentbench's Lightning path, for every thread count from 1 to the number of cores,
with torch.set_num_threads (data in memory, no worker processes). The ratio is
against the default, which torch sets to the number of cores.

    python benchmarks/bench_threads.py --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from latentbench.data import load_mnist
from latentbench.training import TrainSettings, fit_autoencoder, init_autoencoder


def epoch_seconds(name: str, data, threads: int) -> float:
    torch.set_num_threads(threads)
    model = init_autoencoder(name, 2, 1e-3, seed=0)
    settings = TrainSettings(max_epochs=1, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        fit_autoencoder(model, data, settings, Path(tmp))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    data = load_mnist(args.data_dir)
    default = torch.get_num_threads()
    counts = range(1, (os.cpu_count() or 1) + 1)
    print(
        f"{os.cpu_count()} cores, torch default {default} threads; median of "
        f"{args.repeats} fits of one epoch (validation included)"
    )
    print(f"{'model':<6} {'threads':>7} {'seconds':>8} {'x default':>10}")
    for name in ("fc", "cnn"):
        seconds = {
            n: statistics.median(
                epoch_seconds(name, data, n) for _ in range(args.repeats)
            )
            for n in counts
        }
        for n, s in seconds.items():
            print(f"{name:<6} {n:>7} {s:>8.2f} {s / seconds[default]:>9.2f}x")
    torch.set_num_threads(default)


if __name__ == "__main__":
    main()
