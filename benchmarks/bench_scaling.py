"""Fit time and peak memory from 10,000 to 1,000,000 images, with growth exponents.

The images are MNIST's training digits repeated, each copy shifted by a random
-2..2 pixels in x and y, so that no two copies are identical. Every (size, task)
runs in a fresh process, so the peak memory it reports is its own (anonymous
resident memory, sampled: a memory-mapped file's cached pages are not counted):

- ``pca``: latentbench's in-memory PCA (scikit-learn, covariance_eigh solver);
- ``pca-stream``: the exact streaming fit over a memory-mapped ``.npy`` on disk;
- ``fc-epoch``: one epoch of the fully connected autoencoder through latentbench's
  Lightning path (validation on 1,000 images).

The growth exponent ``b`` fits ``seconds ~ n**b`` over the sizes from 30,000 up.

    python benchmarks/bench_scaling.py --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)
TASKS = ("pca", "pca-stream", "fc-epoch")


def shifted_copies(
    images: np.ndarray, n: int, seed: int = 0, out: np.ndarray | None = None
) -> np.ndarray:
    """``n`` images (n, 784) float32: copies of ``images`` (m, 28, 28), each shifted.

    ``out`` may be a memory-mapped array, which is filled a block at a time.
    """
    rng = np.random.default_rng(seed)
    if out is None:
        out = np.empty((n, 28 * 28), dtype=np.float32)
    for start in range(0, n, len(images)):
        block = images[: min(len(images), n - start)]
        dx, dy = rng.integers(-2, 3, size=2)
        shifted = np.roll(block, shift=(int(dy), int(dx)), axis=(1, 2))
        out[start : start + len(block)] = shifted.reshape(len(block), -1)
    return out


class MemorySampler(threading.Thread):
    """Peak anonymous resident memory (RssAnon) of this process, sampled every 20 ms.

    Anonymous memory is what the process really holds: pages of a memory-mapped
    file also count as resident while cached, but the kernel drops them at will.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak_kib = max(self.peak_kib, _rss_anon_kib())
            time.sleep(0.02)

    def stop(self) -> float:
        self.running = False
        self.join()
        return max(self.peak_kib, _rss_anon_kib()) / 1024


def _rss_anon_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def one(task: str, n: int, data_dir: str) -> dict:
    """Run one task at one size in this process; return seconds and peak memory."""
    import torch

    from latentbench.data import ImageData, Split, load_mnist
    from latentbench.models import make_pca
    from latentbench.models.pca import fit_pca_streaming
    from latentbench.training import TrainSettings, fit_autoencoder, init_autoencoder

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    mnist = load_mnist(data_dir)
    images = mnist.train.X.squeeze(1).numpy()
    sampler = MemorySampler()
    sampler.start()

    with tempfile.TemporaryDirectory() as tmp:
        if task == "pca-stream":
            # The data go straight to disk and never sit in memory whole.
            path = Path(tmp) / "X.npy"
            disk = np.lib.format.open_memmap(path, "w+", np.float32, (n, 28 * 28))
            shifted_copies(images, n, out=disk)
            disk.flush()
            del disk
            X_disk = np.load(path, mmap_mode="r")
            start = time.perf_counter()
            fit_pca_streaming(X_disk, 2)
        elif task == "pca":
            X = shifted_copies(images, n)
            start = time.perf_counter()
            make_pca(2).fit(X)
        else:
            X = shifted_copies(images, n)
            val = Split(mnist.val.X[:1000], mnist.val.y[:1000])
            train = Split(torch.from_numpy(X).reshape(n, 1, 28, 28), np.zeros(n, int))
            data = ImageData("shifted", "local", "", {}, True, train, val, val)
            model = init_autoencoder("fc", 2, 1e-3, seed=0)
            settings = TrainSettings(max_epochs=1, progress=False)
            start = time.perf_counter()
            fit_autoencoder(model, data, settings, tmp)
        seconds = time.perf_counter() - start
    return {"task": task, "n": n, "seconds": seconds, "peak_mib": sampler.stop()}


def growth_exponent(sizes, seconds) -> float:
    keep = [(n, s) for n, s in zip(sizes, seconds) if n >= 30_000]
    x = np.log([n for n, _ in keep])
    y = np.log([s for _, s in keep])
    return float(np.polyfit(x, y, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--one", nargs=2, metavar=("TASK", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.data_dir)))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    tasks = args.tasks.split(",")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} "
        "cores; one fresh process per cell; peak = peak anonymous resident memory "
        "of that process (torch, MNIST and the data built included)"
    )
    print()
    print(f"{'task':<11} {'images':>10} {'seconds':>9} {'peak MiB':>9}")
    for task in tasks:
        rows = []
        for n in sizes:
            done = subprocess.run(
                [sys.executable, __file__, "--data-dir", args.data_dir, "--one", task,
                 str(n)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{task:<11} {n:>10,} {row['seconds']:>9.2f} {row['peak_mib']:>9,.0f}"
            )
        if len(rows) >= 3:
            exponent = growth_exponent(sizes, [r["seconds"] for r in rows])
            print(
                f"{task:<11} growth exponent (time ~ n^b, n >= 30,000): b = {exponent:.2f}"
            )
        print()


if __name__ == "__main__":
    main()
