"""Shared fixtures: the real MNIST in ../shared/data/mnist and small subsets of it."""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from latentbench.data import load_mnist, subsample
from latentbench.data.idx import encode_idx

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(
    os.environ.get("LATENTBENCH_TEST_MNIST", REPO.parent / "shared/data/mnist")
)


def pytest_configure(config):
    if not (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file():
        raise pytest.UsageError(
            f"the real MNIST is expected in {MNIST_DIR}; set LATENTBENCH_TEST_MNIST"
        )


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # No test may read or fill the user's cache, or find data through the environment.
    monkeypatch.setenv("LATENTBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("LATENTBENCH_DATA", raising=False)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist():
    """The full real MNIST, split with seed 0."""
    return load_mnist(MNIST_DIR, download=False, fallback=False)


@pytest.fixture(scope="session")
def mnist_small(mnist):
    """3,000 train, 500 validation, 1,000 test images of the real MNIST."""
    return subsample(mnist, 3000, 500, 1000)


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    payload = encode_idx(array)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_mnist_files(
    folder: Path, n_train: int = 5010, n_test: int = 20, seed: int = 0
):
    """Four tiny, valid MNIST-format files with random pixels."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", images, gz=True)
        write_idx(folder / f"{part}-labels-idx1-ubyte.gz", labels, gz=True)
    return folder


@pytest.fixture
def replace():
    return dataclasses.replace


def _short_run(tmp_path_factory, name: str, n_components: int):
    from latentbench.compare import run_compare
    from latentbench.config import CompareConfig

    config = CompareConfig(
        data_dir=MNIST_DIR,
        n_components=n_components,
        n_train=2000,
        n_val=500,
        n_test=1000,
        max_epochs=2,
        batch_size=128,
    )
    out = tmp_path_factory.mktemp("report-runs") / name
    run_compare(config, out, progress=False)
    return out


@pytest.fixture(scope="session")
def run_2d(tmp_path_factory):
    """A finished compare run folder: every model, 2 components, a real subset."""
    return _short_run(tmp_path_factory, "d2", 2)


@pytest.fixture(scope="session")
def run_3d(tmp_path_factory):
    """The same with 3 components."""
    return _short_run(tmp_path_factory, "d3", 3)
