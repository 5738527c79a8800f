"""MNIST's look-alikes in IDX format: Fashion-MNIST, KMNIST and EMNIST letters.

Each is found in ``--data-dir`` when one is given, else in a system folder (Debian's
``dataset-fashion-mnist`` package puts Fashion-MNIST in
``/usr/share/datasets/fashion-mnist``), else in the user cache, else downloaded with
pooch and verified by SHA-256 before it reaches the cache. The split is MNIST's: a
seeded 5,000-image validation split of the training file, and the test file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import string
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from latentbench.data.datasets import (
    MNIST_FILES,
    N_VALIDATION,
    ImageData,
    Split,
    _check_arrays,
    _download_one,
    _find_files,
    _split_train,
    _to_unit_tensor,
    default_cache_dir,
    sha256_file,
    sha256_hex,
)
from latentbench.data.idx import read_images, read_labels, read_payload
from latentbench.errors import DataError

logger = logging.getLogger(__name__)

# Written beside an archive's extracted files once the archive verified, so that
# later loads from the cache can check the files against what was verified.
MANIFEST_NAME = "SHA256SUMS.json"


@dataclasses.dataclass(frozen=True)
class IDXSet:
    """Where a data set in MNIST's IDX format lives and how to verify it.

    Attributes
    ----------
    name : str
        The name ``--dataset`` takes.
    title : str
        The name messages use.
    files : dict
        Role (``train_images``, ...) to file name without ``.gz``.
    class_names : tuple of str
        The name of each class, indexed by label.
    mirrors : tuple of str
        Base URLs tried in order.
    payload_sha256 : dict or None
        Published SHA-256 of each decompressed payload; downloads and local copies
        are checked against it.
    gz_sha256 : dict or None
        Published SHA-256 of each ``.gz`` file as served (when payload hashes are
        not published).
    archive : str or None
        A zip served instead of single files; its members are ``gzip/<file>.gz``.
    archive_sha256 : str or None
        Published SHA-256 of the zip.
    system_dir : path or None
        A folder a system package installs the files into.
    first_label : int
        The label the files give the first class (1 for EMNIST letters).
    transposed : bool
        The files store each image transposed (EMNIST).
    """

    name: str
    title: str
    files: dict[str, str]
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...]
    payload_sha256: dict[str, str] | None = None
    gz_sha256: dict[str, str] | None = None
    archive: str | None = None
    archive_sha256: str | None = None
    system_dir: Path | None = None
    first_label: int = 0
    transposed: bool = False


FASHION_MNIST = IDXSet(
    name="fashion-mnist",
    title="Fashion-MNIST",
    files=MNIST_FILES,
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        (
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/"
            "data/fashion/"
        ),
    ),
    # Computed from the decompressed files of Debian's dataset-fashion-mnist
    # 0.0~git20200523.55506a9-1 (upstream commit 55506a9). Debian recompresses the
    # .gz files, so their hashes differ from upstream's while the payloads agree.
    payload_sha256={
        "train-images-idx3-ubyte": (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
        ),
        "train-labels-idx1-ubyte": (
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
        ),
        "t10k-images-idx3-ubyte": (
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
        ),
        "t10k-labels-idx1-ubyte": (
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
        ),
    },
    system_dir=Path("/usr/share/datasets/fashion-mnist"),
)

KMNIST = IDXSet(
    name="kmnist",
    title="KMNIST",
    files=MNIST_FILES,
    # The romanised hiragana of each class, as in kmnist_classmap.csv.
    class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    mirrors=(
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    ),
    # SHA-256 of the .gz files as CODH serves them, from tensorflow_datasets'
    # tensorflow_datasets/url_checksums/kmnist.txt (tensorflow/datasets, commit
    # 333639b). No payload hashes are published.
    gz_sha256={
        "train-images-idx3-ubyte": (
            "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4"
        ),
        "train-labels-idx1-ubyte": (
            "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17"
        ),
        "t10k-images-idx3-ubyte": (
            "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5"
        ),
        "t10k-labels-idx1-ubyte": (
            "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"
        ),
    },
)

EMNIST_LETTERS = IDXSet(
    name="emnist-letters",
    title="EMNIST letters",
    files={
        "train_images": "emnist-letters-train-images-idx3-ubyte",
        "train_labels": "emnist-letters-train-labels-idx1-ubyte",
        "test_images": "emnist-letters-test-images-idx3-ubyte",
        "test_labels": "emnist-letters-test-labels-idx1-ubyte",
    },
    class_names=tuple(string.ascii_lowercase),
    mirrors=(
        "https://biometrics.nist.gov/cs_links/EMNIST/",
        "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/",
    ),
    archive="gzip.zip",
    # SHA-256 of NIST's gzip.zip (561,753,746 bytes), from tensorflow_datasets'
    # tensorflow_datasets/url_checksums/emnist.txt (tensorflow/datasets, commit
    # 333639b); torchvision's EMNIST checks the same file by MD5
    # 58c8d27c78d21e728a6bc7b3cc06412e.
    archive_sha256="fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e",
    # Labels 1..26 are the letters a..z, upper and lower case merged.
    first_label=1,
    transposed=True,
)

IDX_SETS = {spec.name: spec for spec in (FASHION_MNIST, KMNIST, EMNIST_LETTERS)}


def locate_idx_set(
    spec: IDXSet, data_dir: str | os.PathLike | None = None
) -> tuple[str, dict[str, Path]] | None:
    """Find ``spec``'s four files in ``data_dir``, else its system folder, else the
    user cache.

    Returns
    -------
    (kind, files) or None
        ``kind`` is ``"local"``, ``"system"`` or ``"cache"``; ``files`` maps each
        file name to its path.
    """
    names = tuple(spec.files.values())
    if data_dir is not None:
        root = Path(data_dir)
        if not root.is_dir():
            raise DataError(f"--data-dir {data_dir} is not a folder")
        for folder in (root, root / spec.name):
            if folder.is_dir() and (found := _find_files(folder, names, spec.title)):
                return "local", found
        raise DataError(
            f"--data-dir {data_dir} holds no {spec.title} files (looked for "
            f"{', '.join(names)}, with or without .gz, there and in {spec.name}/); "
            "point it at the folder that holds them, or leave it out to download"
        )
    candidates = [("cache", default_cache_dir() / spec.name)]
    if spec.system_dir is not None:
        candidates.insert(0, ("system", spec.system_dir))
    for kind, folder in candidates:
        if folder.is_dir() and (found := _find_files(folder, names, spec.title)):
            return kind, found
    return None


def download_idx_set(
    spec: IDXSet,
    cache_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] | None = None,
    progressbar: bool = False,
) -> dict[str, Path]:
    """Download ``spec`` into ``<cache_dir>/<name>``, verifying every SHA-256.

    A file that fails verification is deleted and the next mirror tried; the files
    reach the cache only once all are verified, so a failed download leaves nothing
    behind. An archive (EMNIST's zip) is verified whole, its four members extracted
    and the zip deleted; the members' payload hashes are recorded in
    ``SHA256SUMS.json`` for later loads to check.

    Raises
    ------
    ChecksumError
        If some mirror delivered a file but none delivered a verified copy.
    DataError
        If no mirror could be reached.
    """
    import pooch

    mirrors = spec.mirrors if mirrors is None else mirrors
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / spec.name
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".download-") as stage:
        stage = Path(stage)
        if spec.archive is not None:
            staged = _download_archive(spec, stage, mirrors, progressbar, pooch)
        else:
            staged = [
                _download_file(spec, name, stage, mirrors, progressbar, pooch)
                for name in spec.files.values()
            ]
        files = {}
        for path in staged:
            os.replace(path, target / path.name)
            if path.name != MANIFEST_NAME:
                files[path.name.removesuffix(".gz")] = target / path.name
    return files


def _download_file(spec, name, stage, mirrors, progressbar, pooch) -> Path:
    if spec.payload_sha256 is not None:
        expected, kind = spec.payload_sha256[name], "payload"
    else:
        expected, kind = spec.gz_sha256[name], "file"
    return _download_one(
        name, stage, mirrors, progressbar, pooch, expected=expected, kind=kind
    )


def _download_archive(spec, stage, mirrors, progressbar, pooch) -> list[Path]:
    archive = _download_one(
        spec.archive,
        stage,
        mirrors,
        progressbar,
        pooch,
        expected=spec.archive_sha256,
        fname=spec.archive,
        kind="file",
    )
    extracted, manifest = [], {}
    with zipfile.ZipFile(archive) as zipped:
        for name in spec.files.values():
            member = f"gzip/{name}.gz"
            if member not in zipped.namelist():
                raise DataError(
                    f"{spec.archive} verified but holds no {member}; report this "
                    "to latentbench's maintainers"
                )
            path = stage / f"{name}.gz"
            with zipped.open(member) as source, open(path, "wb") as sink:
                shutil.copyfileobj(source, sink)
            manifest[name] = sha256_hex(read_payload(path))
            extracted.append(path)
    archive.unlink()
    manifest_path = stage / MANIFEST_NAME
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return [*extracted, manifest_path]


def _expected_hashes(spec: IDXSet, folder: Path) -> dict[str, str] | None:
    """Published payload hashes, else those recorded when an archive verified."""
    if spec.payload_sha256 is not None:
        return spec.payload_sha256
    manifest = folder / MANIFEST_NAME
    if manifest.is_file():
        return json.loads(manifest.read_text(encoding="utf-8"))
    return None


def _verify(spec: IDXSet, files: dict[str, Path], hashes: dict[str, str]) -> bool:
    if spec.gz_sha256 is not None:
        # Only the served .gz files have published hashes; a decompressed copy
        # cannot be checked.
        return all(
            files[name].suffix == ".gz" and sha256_file(files[name]) == expected
            for name, expected in spec.gz_sha256.items()
        )
    expected = _expected_hashes(spec, files[spec.files["train_images"]].parent)
    return expected is not None and hashes == expected


def read_idx_set(spec: IDXSet, files: dict[str, Path]) -> tuple[dict, dict, bool]:
    """Read and check the four files: arrays by role, payload hashes, verified."""
    arrays, hashes = {}, {}
    for role, name in spec.files.items():
        hashes[name] = sha256_hex(read_payload(files[name]))
        reader = read_images if role.endswith("images") else read_labels
        arrays[role] = reader(files[name])
    last_label = spec.first_label + len(spec.class_names) - 1
    _check_arrays(arrays, files, spec.files, (spec.first_label, last_label))
    for part in ("train", "test"):
        labels = arrays[f"{part}_labels"].astype(np.int64) - spec.first_label
        arrays[f"{part}_labels"] = labels
        if spec.transposed:
            # EMNIST stores each image column by column: (n, w, h) -> (n, h, w).
            images = arrays[f"{part}_images"]
            arrays[f"{part}_images"] = np.ascontiguousarray(images.transpose(0, 2, 1))
    return arrays, hashes, _verify(spec, files, hashes)


def load_idx_set(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    progressbar: bool = False,
    spec: IDXSet | None = None,
) -> ImageData:
    """Load ``fashion-mnist``, ``kmnist`` or ``emnist-letters``.

    Split like MNIST: a seeded 5,000-image validation split of the training file
    (55,000 / 5,000 / 10,000 for Fashion-MNIST and KMNIST; 119,800 / 5,000 / 20,800
    for EMNIST letters).

    Parameters
    ----------
    name : str
        A key of ``IDX_SETS``.
    data_dir : path, optional
        Folder holding the four files (gzipped or not); searched instead of the
        system folder and the cache.
    seed : int
        Seed of the train/validation split.
    download : bool
        Download into the user cache when the files are found nowhere.
    mirrors : sequence of str, optional
        Base URLs to download from instead of the published ones.
    spec : IDXSet, optional
        Replaces ``IDX_SETS[name]`` (tests serve fabricated files).

    Returns
    -------
    ImageData
        Images (n, 1, 28, 28) float32 on [0, 1]; labels 0..n_classes-1.
    """
    spec = spec or IDX_SETS[name]
    located = locate_idx_set(spec, data_dir)
    if located is None and download:
        located = "download", download_idx_set(spec, None, mirrors, progressbar)
    if located is None:
        raise DataError(
            f"{spec.title} was not found in {default_cache_dir() / spec.name}"
            + (f" or {spec.system_dir}" if spec.system_dir else "")
            + "; pass --data-dir or allow downloads"
        )
    kind, files = located
    arrays, hashes, verified = read_idx_set(spec, files)
    location = str(files[spec.files["train_images"]].parent)
    if not verified:
        warnings.warn(
            f"{spec.title} files in {location} could not be verified against "
            "published SHA-256 hashes; results may not compare with others",
            RuntimeWarning,
            stacklevel=2,
        )
    train, val = _split_train(
        arrays["train_images"], arrays["train_labels"], seed, N_VALIDATION
    )
    test = Split(_to_unit_tensor(arrays["test_images"]), arrays["test_labels"])
    logger.info(
        "loaded %s from %s (%s): %d train, %d validation, %d test images",
        spec.title,
        location,
        kind,
        len(train),
        len(val),
        len(test),
    )
    return ImageData(
        spec.name,
        kind,
        location,
        hashes,
        verified,
        train,
        val,
        test,
        class_names=spec.class_names,
    )
