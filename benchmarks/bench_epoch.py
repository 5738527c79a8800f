"""Seconds per training epoch and per PCA fit on the full MNIST, with baselines.

For each autoencoder, one epoch over the 55,000 training images is timed three ways
in the same process:

- ``plain loop``: a bare PyTorch loop over slices of the in-memory tensor (the floor);
- ``latentbench``: latentbench's Lightning Trainer and in-memory batches, as
  ``compare`` trains (validation, checkpoints and the CSV log included);
- ``per-image DataLoader``: a Dataset that turns each uint8 image into a PIL image and
  then into a float tensor on access, as torchvision's MNIST does, batched by
  ``torch.utils.data.DataLoader`` with default collation.

PCA is timed with latentbench's solver against scikit-learn's ``full`` solver.
Each figure is the median of ``--repeats`` runs.

    python benchmarks/bench_epoch.py --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from PIL import Image
from sklearn.decomposition import PCA

from latentbench.data import load_mnist
from latentbench.models import AUTOENCODERS
from latentbench.models.pca import PCA_SOLVER
from latentbench.training import InMemoryBatches, TrainSettings, make_trainer


class EpochTimer(Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds = time.perf_counter() - self.start


class PerImageMNIST(torch.utils.data.Dataset):
    """uint8 images converted one at a time on access, as torchvision's MNIST does."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        pil = Image.fromarray(self.images[index], mode="L")
        # What transforms.ToTensor does to a greyscale PIL image.
        x = torch.from_numpy(np.array(pil, dtype=np.uint8, copy=True))
        return x.view(1, 28, 28).float().div(255)


def _train_epoch(model, batches, optimizer) -> float:
    model.train()
    start = time.perf_counter()
    for x in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x), x)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def time_plain_loop(name, X, batch_size, seed) -> float:
    torch.manual_seed(seed)
    model = AUTOENCODERS[name](2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = InMemoryBatches(X, batch_size, shuffle=True, seed=seed)
    return _train_epoch(model, batches, optimizer)


def time_per_image_loader(name, images, batch_size, seed) -> float:
    torch.manual_seed(seed)
    model = AUTOENCODERS[name](2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(
        PerImageMNIST(images), batch_size=batch_size, shuffle=True
    )
    return _train_epoch(model, loader, optimizer)


def time_lightning(name, data, batch_size, seed) -> tuple[float, float]:
    """(epoch seconds, whole fit call seconds) through latentbench's Trainer."""
    model = AUTOENCODERS[name](2)
    settings = TrainSettings(
        max_epochs=1, batch_size=batch_size, seed=seed, progress=False
    )
    train = InMemoryBatches(data.train.X, batch_size, shuffle=True, seed=seed)
    val = InMemoryBatches(data.val.X, 1024)
    with tempfile.TemporaryDirectory() as tmp:
        L.seed_everything(seed, verbose=False)
        trainer = make_trainer(settings, Path(tmp), len(train))
        timer = EpochTimer()
        trainer.callbacks.append(timer)
        start = time.perf_counter()
        trainer.fit(model, train, val)
        return timer.seconds, time.perf_counter() - start


def median_of(repeats, fn, *args):
    return statistics.median(fn(*args) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="fc,cnn")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    data = load_mnist(args.data_dir)
    images = (data.train.X.squeeze(1).numpy() * 255).round().astype(np.uint8)
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"lightning {L.__version__}; {len(data.train):,} images, batch {args.batch_size}, "
        f"median of {args.repeats}"
    )
    print()
    print(f"{'model':<6} {'path':<34} {'seconds':>8} {'x plain loop':>13}")
    for name in args.models.split(","):
        floor = median_of(
            args.repeats, time_plain_loop, name, data.train.X, args.batch_size, 0
        )
        runs = [
            time_lightning(name, data, args.batch_size, 0) for _ in range(args.repeats)
        ]
        epoch = statistics.median(r[0] for r in runs)
        fit = statistics.median(r[1] for r in runs)
        slow = median_of(
            args.repeats, time_per_image_loader, name, images, args.batch_size, 0
        )
        rows = [
            ("plain PyTorch loop (floor)", floor),
            ("latentbench Lightning epoch", epoch),
            ("latentbench fit() incl. val+ckpt", fit),
            ("per-image Dataset + DataLoader", slow),
        ]
        for label, seconds in rows:
            print(f"{name:<6} {label:<34} {seconds:>8.2f} {seconds / floor:>12.2f}x")

    X = data.train.X_flat
    print()
    print(f"{'PCA solver (k=2)':<41} {'seconds':>8} {'x ours':>13}")
    ours = median_of(args.repeats, lambda: _time_pca(X, PCA_SOLVER))
    full = median_of(args.repeats, lambda: _time_pca(X, "full"))
    print(f"{PCA_SOLVER + ' (latentbench)':<41} {ours:>8.2f} {1.0:>12.2f}x")
    print(f"{'full (LAPACK SVD)':<41} {full:>8.2f} {full / ours:>12.2f}x")


def _time_pca(X, solver) -> float:
    start = time.perf_counter()
    PCA(n_components=2, svd_solver=solver).fit(X)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
