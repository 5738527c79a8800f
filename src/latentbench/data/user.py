"""A user's own images: a ``.npz`` file, or a folder with one subfolder per class.

``.npz``
    ``X`` of shape (n, h, w), or (n, h * w) with h = w; optional ``y`` of shape (n,),
    integers or strings (the class names are the sorted distinct values).
folder
    ``<folder>/<class>/<image>``: every subfolder is a class (sorted by name), every
    image file in it (PNG, JPEG, BMP, GIF, TIFF, WebP, PGM) one sample, read with
    Pillow and converted to greyscale. All images must share one size.

Pixels are uint8 on 0..255 or floats on [0, 1]; anything else is refused. The
images are split by a seeded permutation: 20% test, 10% validation, the remaining
70% training (:data:`TEST_FRACTION`, :data:`VAL_FRACTION`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from latentbench._io import read_npz
from latentbench.config import is_dataset_path
from latentbench.constants import MIN_TEST_IMAGES
from latentbench.data.datasets import ImageData, Split, sha256_file, validate_images
from latentbench.errors import DataError

logger = logging.getLogger(__name__)

TEST_FRACTION = 0.2
VAL_FRACTION = 0.1
IMAGE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".pgm",
)
_PIXELS_EXPECTED = "expected uint8 pixels on 0..255 or float pixels on [0, 1]"


looks_like_path = is_dataset_path


def dataset_label(name: str) -> str:
    """A short name for run folders: the data set's name, or the path's stem."""
    return Path(name).stem if looks_like_path(name) else name


def load_user_data(path: str | os.PathLike, *, seed: int = 0) -> ImageData:
    """Load a ``.npz`` file or an image folder and split it 70 / 10 / 20.

    Parameters
    ----------
    path : path
        A ``.npz`` file with ``X`` and optionally ``y``, or a folder of class
        subfolders (see the module's description).
    seed : int
        Seed of the permutation that splits train, validation and test.

    Returns
    -------
    ImageData
        Images (n, 1, h, w) float32 on [0, 1]; ``class_names`` None when the data
        have no labels.

    Raises
    ------
    DataError
        Naming the file, the field, the value found and what is expected.
    """
    path = Path(path)
    if path.is_dir():
        images, y_raw, class_names, hashes = _read_folder(path)
        source = "folder"
    elif path.is_file() and path.suffix == ".npz":
        images, y_raw, hashes = _read_npz(path)
        class_names = None
        source = "npz"
    elif path.is_file():
        raise DataError(
            f"--dataset {path} is a {path.suffix or 'suffix-less'} file; expected a "
            ".npz file or a folder with one subfolder of images per class"
        )
    else:
        raise DataError(
            f"--dataset {path} does not exist; expected a data set name, a .npz "
            "file or a folder with one subfolder of images per class"
        )

    X = torch.from_numpy(images).unsqueeze(1)  # (n, h, w) -> (n, 1, h, w)
    validate_images(X, str(path))
    y, class_names = _labels(y_raw, class_names, path)
    if y is not None and len(y) != len(X):
        raise DataError(
            f"{path}: field y has {len(y)} labels but X has {len(X)} images; expected "
            "one label an image"
        )
    train, val, test = _split(X, y, seed, path)
    logger.info(
        "loaded %s (%s): %dx%d images, %s; %d train, %d validation, %d test",
        path,
        source,
        X.shape[2],
        X.shape[3],
        f"{len(class_names)} classes" if class_names else "no labels",
        len(train),
        len(val),
        len(test),
    )
    return ImageData(
        str(path),
        source,
        str(path.resolve()),
        hashes,
        False,
        train,
        val,
        test,
        class_names=class_names,
    )


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None, dict[str, str]]:
    try:
        arrays = read_npz(path)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"cannot read {path} as a .npz of plain arrays ({exc}); save it with "
            "numpy.savez(path, X=X, y=y)"
        ) from None
    if "X" not in arrays:
        held = ", ".join(sorted(arrays)) or "nothing"
        raise DataError(
            f"{path} has no field 'X' (it holds {held}); expected X of shape "
            "(n, h, w) or (n, h*w) and optionally y of shape (n,)"
        )
    X = _square(arrays["X"], path)
    return (
        _unit_pixels(X, f"{path}: field X"),
        arrays.get("y"),
        {path.name: sha256_file(path)},
    )


def _square(X: np.ndarray, path: Path) -> np.ndarray:
    if X.ndim == 3:
        return X
    if X.ndim == 2:
        side = math.isqrt(X.shape[1])
        if side * side != X.shape[1]:
            raise DataError(
                f"{path}: field X has shape {X.shape}: {X.shape[1]} pixels a row is "
                "not a square number of pixels; store X as (n, h, w) for images "
                "that are not square"
            )
        return X.reshape(len(X), side, side)
    raise DataError(
        f"{path}: field X has shape {X.shape} ({X.ndim} dimensions); expected "
        "(n, h, w) or (n, h*w)"
    )


def _unit_pixels(images: np.ndarray, source: str) -> np.ndarray:
    """uint8 0..255 or float [0, 1] images as float32 on [0, 1]."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(images.dtype, np.floating):
        raise DataError(
            f"{source} has dtype {images.dtype}; {_PIXELS_EXPECTED} (convert "
            "0..255 integers with .astype(numpy.uint8))"
        )
    if images.size and not np.isfinite(images).all():
        bad = int((~np.isfinite(images)).sum())
        raise DataError(
            f"{source} holds {bad} NaN or infinite values; {_PIXELS_EXPECTED}"
        )
    low, high = (float(images.min()), float(images.max())) if images.size else (0, 0)
    if low < 0.0 or high > 1.0:
        raise DataError(
            f"{source} has float pixels from {low:g} to {high:g}; {_PIXELS_EXPECTED} "
            "(divide 0..255 floats by 255)"
        )
    return images.astype(np.float32)


def _labels(y_raw, class_names, path: Path) -> tuple[np.ndarray | None, tuple | None]:
    """Labels 0..k-1 and the class names, from integers or strings; (None, None)
    without labels."""
    if class_names is not None:
        return y_raw, class_names
    if y_raw is None:
        return None, None
    if y_raw.ndim != 1:
        raise DataError(
            f"{path}: field y has shape {y_raw.shape}; expected (n,), one label an "
            "image"
        )
    if not (np.issubdtype(y_raw.dtype, np.integer) or y_raw.dtype.kind in "US"):
        raise DataError(
            f"{path}: field y has dtype {y_raw.dtype}; expected integer or string "
            "class labels"
        )
    values, y = np.unique(y_raw, return_inverse=True)
    if len(values) < 2:
        raise DataError(
            f"{path}: field y holds the single class {values[0].item()!r}; expected at "
            "least two classes, or no y at all to run without labels"
        )
    return y.astype(np.int64), tuple(str(v) for v in values)


def _read_folder(folder: Path):
    from PIL import Image, UnidentifiedImageError

    classes = sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if len(classes) < 2:
        raise DataError(
            f"{folder} holds {len(classes)} class subfolders; expected one subfolder "
            "of images per class, at least two"
        )
    images, labels, digest, size = [], [], hashlib.sha256(), None
    for label, class_dir in enumerate(classes):
        files = sorted(
            p
            for p in class_dir.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(
                f"class folder {class_dir} holds no image files (looked for "
                f"{', '.join(IMAGE_SUFFIXES)}); add images or remove the folder"
            )
        for path in files:
            try:
                with Image.open(path) as image:
                    grey = np.asarray(image.convert("L"))
            except (OSError, UnidentifiedImageError) as exc:
                raise DataError(f"cannot read image {path}: {exc}") from None
            if size is None:
                size, first = grey.shape, path
            elif grey.shape != size:
                raise DataError(
                    f"image {path} is {grey.shape[1]}x{grey.shape[0]} pixels but "
                    f"{first} is {size[1]}x{size[0]}; every image must share one "
                    "size"
                )
            images.append(grey)
            labels.append(label)
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    X = _unit_pixels(np.stack(images), f"{folder}: images")
    names = tuple(p.name for p in classes)
    # One hash over every file's relative path and bytes, in sorted order.
    return X, np.array(labels, dtype=np.int64), names, {"images": digest.hexdigest()}


def _split(X: torch.Tensor, y, seed: int, path: Path) -> tuple[Split, Split, Split]:
    n = len(X)
    n_test, n_val = round(TEST_FRACTION * n), round(VAL_FRACTION * n)
    if n_test < MIN_TEST_IMAGES or n_val < 1:
        raise DataError(
            f"{path} holds {n} images; at least "
            f"{math.ceil(MIN_TEST_IMAGES / TEST_FRACTION)} are needed, as "
            f"{TEST_FRACTION:.0%} become the test split and the metrics need "
            f"{MIN_TEST_IMAGES} test images"
        )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator).numpy()
    parts = np.split(order, [n_test, n_test + n_val])
    test_idx, val_idx, train_idx = (np.sort(p) for p in parts)

    def take(index: np.ndarray) -> Split:
        return Split(X[index].contiguous(), None if y is None else y[index])

    return take(train_idx), take(val_idx), take(test_idx)
