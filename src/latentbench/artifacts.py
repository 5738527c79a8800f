"""What a comparison saves beside its metrics, so that every figure and the report can
be redrawn from the run folder alone (``latentbench report RUN_DIR``).

::

    reconstructions.npz       the same test images, two a class (the first 20
                              without labels): ``index`` into the test split,
                              labels ``y`` (when the data have them), originals
                              ``X`` (n, h, w) and ``X_hat_<model>`` (n, h, w) for
                              every model (28x28 for the convolutional one)
    latent_maps/<model>.npz   for 2 components only: the decoder's images over a grid
                              of the latent plane, ``images`` (n2, n1, h, w) at the
                              points ``(z1[j], z2[i])``

The models are read back from the run folder (``models/pca.npz`` and each
autoencoder's best checkpoint), so these files show what was saved, not a model
still in memory. UMAP and t-SNE have no decoder and appear in neither file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from latentbench._io import read_npz, write_npz
from latentbench.constants import CONV_MODEL_NAMES, MANIFOLD_MODEL_NAMES, N_CLASSES
from latentbench.data import Split
from latentbench.data.datasets import resized_split
from latentbench.models import AUTOENCODERS, load_pca

logger = logging.getLogger(__name__)

N_PER_CLASS = 2
LATENT_GRID_SIZE = 15
# The grid spans the central 99% of the test codes along each axis: a few outlying
# codes would otherwise stretch it over empty plane.
LATENT_QUANTILES = (0.005, 0.995)

Coder = Callable[[np.ndarray], np.ndarray]


def sample_indices(
    y: np.ndarray | None, n_per_class: int = N_PER_CLASS, n_test: int = 0
) -> np.ndarray:
    """The first ``n_per_class`` test images of each class, in class order; without
    labels (``y`` None), the first ``n_per_class * 10`` of the ``n_test`` images.

    Deterministic: it depends on the labels only, so every model and every run on
    the same test split shows the same digits.
    """
    if y is None:
        return np.arange(min(n_per_class * N_CLASSES, n_test), dtype=np.int64)
    picks = [np.flatnonzero(y == c)[:n_per_class] for c in np.unique(y)]
    return np.concatenate(picks).astype(np.int64)


def load_coders(run_dir: str | os.PathLike, name: str) -> tuple[Coder, Coder]:
    """``(reconstruct, decode)`` of model ``name`` as saved in ``run_dir``.

    ``reconstruct`` maps images (n, 784) on [0, 1] to their reconstructions (n, 784);
    ``decode`` maps codes (n, k) to images (n, 784).
    """
    run_dir = Path(run_dir)
    if name == "pca":
        pca = load_pca(run_dir / "models" / "pca.npz")
        return (
            lambda X: pca.inverse_transform(pca.transform(X)),
            pca.inverse_transform,
        )
    checkpoint = run_dir / "models" / name / "checkpoints" / "best.ckpt"
    model = AUTOENCODERS[name].load_from_checkpoint(checkpoint).eval()

    @torch.no_grad()
    def reconstruct(X: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        return model(x.reshape(len(X), *model.input_shape)).reshape(len(X), -1).numpy()

    @torch.no_grad()
    def decode(Z: np.ndarray) -> np.ndarray:
        z = torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float32))
        return model.decode(z).reshape(len(Z), -1).numpy()

    return reconstruct, decode


def latent_grid(Z: np.ndarray, n: int = LATENT_GRID_SIZE) -> tuple[np.ndarray, ...]:
    """Grid coordinates ``z1``, ``z2`` (each (n,)) over the central range of ``Z``."""
    low, high = np.quantile(Z, LATENT_QUANTILES, axis=0)
    return np.linspace(low[0], high[0], n), np.linspace(low[1], high[1], n)


def decode_grid(
    decode: Coder,
    z1: np.ndarray,
    z2: np.ndarray,
    image_size: tuple[int, int] = (28, 28),
) -> np.ndarray:
    """Images (len(z2), len(z1), height, width) decoded at every point
    ``(z1[j], z2[i])``; ``image_size`` is the decoder's ``(height, width)``."""
    Z1, Z2 = np.meshgrid(z1, z2)  # (len(z2), len(z1)) each
    codes = np.column_stack([Z1.ravel(), Z2.ravel()])
    images = decode(codes)
    return images.reshape(len(z2), len(z1), *image_size)


def save_figure_data(
    run_dir: str | os.PathLike, test: Split, models: Sequence[str]
) -> list[Path]:
    """Write ``reconstructions.npz`` and, for 2 components, ``latent_maps/*.npz``.

    Parameters
    ----------
    run_dir : path
        A run folder whose ``models/`` and ``embeddings/`` are written.
    test : Split
        The test split the run embedded.
    models : sequence of str
        The models of the run, in order.
    """
    run_dir = Path(run_dir)
    index = sample_indices(test.y, n_test=len(test))
    sample = Split(test.X[index], None)
    # Images as (n, height, width): the convolutional model's are resized to 28x28.
    arrays = {"index": index, "X": sample.X[:, 0].numpy()}
    if test.y is not None:
        arrays["y"] = test.y[index]
    written = []
    for name in models:
        if name in MANIFOLD_MODEL_NAMES:
            continue  # no decoder: nothing to reconstruct or to map
        reconstruct, decode = load_coders(run_dir, name)
        seen = resized_split(sample) if name in CONV_MODEL_NAMES else sample
        size = tuple(seen.X.shape[2:])
        X_hat = reconstruct(seen.X_flat).astype(np.float32)
        arrays[f"X_hat_{name}"] = X_hat.reshape(len(index), *size)

        Z = read_npz(run_dir / "embeddings" / f"{name}.npz")["Z"]
        if Z.shape[1] == 2:
            z1, z2 = latent_grid(Z)
            path = run_dir / "latent_maps" / f"{name}.npz"
            images = decode_grid(decode, z1, z2, size).astype(np.float32)
            write_npz(path, images=images, z1=z1, z2=z2)
            written.append(path)
    path = run_dir / "reconstructions.npz"
    write_npz(path, **arrays)
    logger.info(
        "saved %d sample reconstructions and %d latent maps", len(index), len(written)
    )
    return [path, *written]
