"""Embedding a data set with a saved model (``latentbench embed MODEL DATA``).

The model is an autoencoder checkpoint (``.ckpt``), a safetensors export
(``.safetensors``) or a PCA (``.npz``, as ``save_pca`` writes it). The data is a
folder of MNIST IDX files or an ``.npz`` holding images ``X`` and, optionally, labels
``y``. Either way the pixels reach the model as float32 on [0, 1], the scale every
model was fit on.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from latentbench._io import read_npz, write_npz
from latentbench.constants import IMAGE_HEIGHT, IMAGE_SHAPE, IMAGE_WIDTH, N_PIXELS
from latentbench.data import read_images, read_labels
from latentbench.data.datasets import MNIST_FILES
from latentbench.errors import CheckpointError, ConfigError, DataError
from latentbench.export import load_autoencoder
from latentbench.models import load_pca
from latentbench.training import encode

logger = logging.getLogger(__name__)

SPLITS = ("test", "train")
_IMAGE_SHAPES = "(n, 28, 28), (n, 784) or (n, 1, 28, 28)"

Encoder = Callable[[torch.Tensor], np.ndarray]


def load_encoder(path: str | os.PathLike) -> Encoder:
    """The encoding function of a saved model.

    Parameters
    ----------
    path : path
        ``.ckpt`` (fc or cnn checkpoint), ``.safetensors`` (``latentbench export``)
        or ``.npz`` (a PCA written by ``save_pca``).

    Returns
    -------
    callable
        Maps images, a float32 tensor (n, 1, 28, 28) on [0, 1], to codes, a float32
        array (n, n_components).
    """
    path = Path(path)
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "does not exist"
        raise CheckpointError(
            f"model {path} {state}; expected a .ckpt checkpoint, a .safetensors "
            "export or a PCA .npz"
        )
    if path.suffix == ".npz":
        pca = load_pca(path)
        if pca.n_features_in_ != N_PIXELS:
            raise CheckpointError(
                f"{path} is a PCA of {pca.n_features_in_} features; expected "
                f"{N_PIXELS} (28x28 images)"
            )
        return lambda X: pca.transform(X.reshape(len(X), N_PIXELS).numpy()).astype(
            np.float32
        )
    if path.suffix not in (".ckpt", ".safetensors"):
        raise CheckpointError(
            f"model {path} has suffix {path.suffix!r}; expected a .ckpt checkpoint, "
            "a .safetensors export or a PCA .npz"
        )
    model = load_autoencoder(path)
    if tuple(model.input_shape) != IMAGE_SHAPE:
        size = "x".join(map(str, model.input_shape[1:]))
        raise CheckpointError(
            f"{path} was trained on {size} images; embed reads 28x28 images only "
            "(use the model from Python: latentbench.export.load_autoencoder)"
        )
    return lambda X: encode(model, X).numpy().astype(np.float32, copy=False)


def load_images(
    path: str | os.PathLike, split: str = "test"
) -> tuple[torch.Tensor, np.ndarray | None]:
    """Images and labels from a folder of MNIST IDX files or an ``.npz``.

    Parameters
    ----------
    path : path
        A folder holding MNIST's IDX files (gzipped or not; flat, in ``mnist/`` or
        torchvision's ``MNIST/raw/``), or an ``.npz`` with ``X`` of shape
        (n, 28, 28) or (n, 784), uint8 0..255 or float on [0, 1], and optional
        integer labels ``y`` of shape (n,).
    split : {"test", "train"}
        For a folder: the 10,000 test images or all 60,000 training images (in file
        order, with no validation split taken out).

    Returns
    -------
    X : Tensor of shape (n, 1, 28, 28), float32 on [0, 1]
    y : ndarray of shape (n,), int64, or None when there are no labels
    """
    if split not in SPLITS:
        raise ConfigError(f"--split {split!r} is not one of {', '.join(SPLITS)}")
    path = Path(path)
    if path.is_dir():
        return _read_idx_split(path, split)
    if not path.exists():
        raise DataError(
            f"data {path} does not exist; expected a folder of MNIST IDX files or an "
            ".npz holding X"
        )
    if path.suffix != ".npz":
        raise DataError(
            f"data {path} is neither a folder of MNIST IDX files nor an .npz file"
        )
    return _read_npz_images(path)


def _read_idx_split(folder: Path, split: str) -> tuple[torch.Tensor, np.ndarray | None]:
    image_name = MNIST_FILES[f"{split}_images"]
    label_name = MNIST_FILES[f"{split}_labels"]
    for layout in (folder, folder / "mnist", folder / "MNIST" / "raw"):
        image_file = _with_or_without_gz(layout, image_name)
        if image_file is not None:
            break
    else:
        raise DataError(
            f"{folder} holds no {image_name} (with or without .gz, there, in mnist/ "
            f"or in MNIST/raw/) for --split {split}"
        )
    images = read_images(image_file)
    if images.shape[1:] != (IMAGE_HEIGHT, IMAGE_WIDTH):
        raise DataError(
            f"{image_file} holds images of {images.shape[1]}x{images.shape[2]} "
            f"pixels; expected {IMAGE_HEIGHT}x{IMAGE_WIDTH}"
        )
    label_file = _with_or_without_gz(image_file.parent, label_name)
    y = None
    if label_file is not None:
        y = read_labels(label_file).astype(np.int64)
        if len(y) != len(images):
            raise DataError(
                f"{image_file} holds {len(images)} images but {label_file} holds "
                f"{len(y)} labels; they must be equal"
            )
    return _unit_pixels(images), y


def _with_or_without_gz(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _read_npz_images(path: Path) -> tuple[torch.Tensor, np.ndarray | None]:
    try:
        arrays = read_npz(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"cannot read {path} as an .npz without pickles: {exc}"
        ) from None
    if "X" not in arrays:
        raise DataError(
            f"{path} has no array 'X' (it holds: {', '.join(arrays) or 'nothing'}); "
            f"expected images X of shape {_IMAGE_SHAPES}"
        )
    X = arrays["X"]
    n = len(X) if X.ndim else 0
    if n == 0 or X.shape[1:] not in (
        (IMAGE_HEIGHT, IMAGE_WIDTH),
        (N_PIXELS,),
        IMAGE_SHAPE,
    ):
        raise DataError(
            f"{path}: X has shape {X.shape}; expected {_IMAGE_SHAPES} with n >= 1"
        )
    if X.dtype != np.uint8 and not np.issubdtype(X.dtype, np.floating):
        raise DataError(
            f"{path}: X has dtype {X.dtype}; expected uint8 (0..255) or float (0..1)"
        )
    if X.dtype != np.uint8:
        _check_unit_range(X, path)

    y = arrays.get("y")
    if y is not None and (y.shape != (n,) or not np.issubdtype(y.dtype, np.integer)):
        raise DataError(
            f"{path}: y has shape {y.shape} and dtype {y.dtype}; expected integer "
            f"labels of shape ({n},), one per image of X"
        )
    return _unit_pixels(X), None if y is None else y.astype(np.int64)


def _check_unit_range(X: np.ndarray, path: Path) -> None:
    n_bad = int(np.count_nonzero(~np.isfinite(X)))
    if n_bad:
        raise DataError(
            f"{path}: X holds {n_bad} NaN or infinite values; every pixel must be "
            "a finite number on [0, 1]"
        )
    low, high = float(X.min()), float(X.max())
    if low < 0.0 or high > 1.0:
        raise DataError(
            f"{path}: X has values from {low:g} to {high:g}; float images must be on "
            "[0, 1] (divide 0..255 images by 255, or store them as uint8)"
        )


def _unit_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 0..255 or floats on [0, 1] as a float32 tensor (n, 1, 28, 28) on [0, 1]."""
    X = images.astype(np.float32)  # a copy: the division below must not touch input
    if images.dtype == np.uint8:
        X /= 255.0  # the same arithmetic as the training data path
    return torch.from_numpy(X).reshape(len(images), *IMAGE_SHAPE)


def embed_file(
    model_path: str | os.PathLike,
    data_path: str | os.PathLike,
    out: str | os.PathLike,
    split: str = "test",
) -> dict[str, np.ndarray]:
    """Embed the images of ``data_path`` with ``model_path`` and write ``out``.

    ``out`` is an ``.npz`` with ``Z`` (n, n_components) float32 and, when the data
    has labels, ``y`` (n,) int64, written atomically. The model and the data are
    both checked before anything is written.

    Returns
    -------
    dict
        The arrays written.
    """
    out = Path(out)
    if out.suffix != ".npz":
        raise ConfigError(f"--out {out} must end in .npz")
    if out.is_dir():
        raise ConfigError(
            f"--out {out} is a folder; expected a file name ending in .npz"
        )
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist")
    encoder = load_encoder(model_path)
    X, y = load_images(data_path, split)

    arrays = {"Z": encoder(X)}
    if y is not None:
        arrays["y"] = y
    write_npz(out, **arrays)
    logger.info(
        "embedded %d images of %s into %d components with %s: %s",
        len(X),
        data_path,
        arrays["Z"].shape[1],
        model_path,
        out,
    )
    return arrays
