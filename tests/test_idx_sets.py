"""Fashion-MNIST from Debian's package; KMNIST and EMNIST letters downloaded from a
local server on 127.0.0.1 serving small fabricated files."""

import dataclasses
import functools
import gzip
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from latentbench.data import load_dataset
from latentbench.data.idx import encode_idx
from latentbench.data.idx_sets import (
    EMNIST_LETTERS,
    FASHION_MNIST,
    KMNIST,
    download_idx_set,
    load_idx_set,
)
from latentbench.errors import ChecksumError

DEBIAN = FASHION_MNIST.system_dir


@pytest.mark.skipif(
    not DEBIAN.is_dir(),
    reason="apt-get install dataset-fashion-mnist (.ci/run installs it)",
)
def test_fashion_mnist_loads_from_debian_and_verifies():
    data = load_dataset("fashion-mnist", seed=0)
    assert data.data_source == "system"
    assert data.location == str(DEBIAN)
    assert data.verified
    assert data.payload_sha256 == FASHION_MNIST.payload_sha256
    assert len(data.train) + len(data.val) == 60_000 and len(data.test) == 10_000
    assert data.class_names[0] == "T-shirt/top" and data.n_classes == 10
    assert np.bincount(data.test.y).tolist() == [1000] * 10


def _fabricate(n: int, first_label: int, n_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % n_classes + first_label).astype(np.uint8)
    return images, labels


@pytest.fixture
def serve():
    servers = []

    def start(folder):
        handler = functools.partial(
            http.server.SimpleHTTPRequestHandler, directory=str(folder)
        )
        handler.log_message = lambda *args: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _kmnist_mirror(folder: Path) -> dict[str, str]:
    """Four small KMNIST-like .gz files; returns their SHA-256 by name."""
    folder.mkdir()
    hashes = {}
    for part, n in (("train", 5_010), ("t10k", 20)):
        images, labels = _fabricate(n, 0, 10)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{part}-{kind}-ubyte"
            data = gzip.compress(encode_idx(array), mtime=0)
            (folder / f"{name}.gz").write_bytes(data)
            hashes[name] = hashlib.sha256(data).hexdigest()
    return hashes


def test_kmnist_download_is_refused_when_the_hash_differs(tmp_path, serve):
    _kmnist_mirror(tmp_path / "mirror")
    expected = KMNIST.gz_sha256["train-images-idx3-ubyte"]
    with pytest.raises(ChecksumError, match=f"expected file SHA-256 {expected}"):
        download_idx_set(KMNIST, tmp_path / "cache", [serve(tmp_path / "mirror")])
    assert list((tmp_path / "cache" / "kmnist").iterdir()) == []


def test_kmnist_download_verifies_caches_and_is_found_again(tmp_path, serve):
    hashes = _kmnist_mirror(tmp_path / "mirror")
    spec = dataclasses.replace(KMNIST, gz_sha256=hashes)
    data = load_idx_set("kmnist", mirrors=[serve(tmp_path / "mirror")], spec=spec)
    assert data.data_source == "download" and data.verified
    assert (len(data.train), len(data.val), len(data.test)) == (10, 5_000, 20)
    assert data.class_names[:2] == ("o", "ki")

    again = load_idx_set("kmnist", mirrors=[], spec=spec)
    assert again.data_source == "cache" and again.verified


def _emnist_zip(folder: Path) -> tuple[str, np.ndarray]:
    """A zip laid out like NIST's gzip.zip; returns its SHA-256 and the test images
    as stored (transposed)."""
    folder.mkdir()
    path = folder / "gzip.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        for part, n in (("train", 5_010), ("test", 26)):
            images, labels = _fabricate(n, 1, 26)
            if part == "test":
                stored = images
            for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
                member = f"gzip/emnist-letters-{part}-{kind}-ubyte.gz"
                zipped.writestr(member, gzip.compress(encode_idx(array)))
    return hashlib.sha256(path.read_bytes()).hexdigest(), stored


def test_emnist_zip_of_another_hash_is_refused(tmp_path, serve):
    _emnist_zip(tmp_path / "mirror")
    with pytest.raises(
        ChecksumError, match=f"expected file SHA-256 {EMNIST_LETTERS.archive_sha256}"
    ):
        download_idx_set(EMNIST_LETTERS, tmp_path / "c", [serve(tmp_path / "mirror")])


def test_emnist_letters_are_transposed_and_labelled_a_to_z(tmp_path, serve):
    digest, stored = _emnist_zip(tmp_path / "mirror")
    spec = dataclasses.replace(EMNIST_LETTERS, archive_sha256=digest)
    data = load_idx_set(
        "emnist-letters", mirrors=[serve(tmp_path / "mirror")], spec=spec
    )
    assert data.verified and data.n_classes == 26
    assert data.class_names[0] == "a" and data.class_names[-1] == "z"
    # Stored labels 1..26 become 0..25; images come back upright (transposed).
    assert data.test.y.tolist() == list(range(26))
    upright = stored.transpose(0, 2, 1).astype(np.float32) / 255
    np.testing.assert_allclose(data.test.X[:, 0].numpy(), upright)
    cache = tmp_path / "cache" / "emnist-letters"
    assert not (cache / "gzip.zip").exists()

    # The cache keeps the four members and the hashes they verified with.
    again = load_idx_set("emnist-letters", mirrors=[], spec=spec)
    assert again.data_source == "cache" and again.verified
