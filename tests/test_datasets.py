import numpy as np
import pytest

from conftest import write_mnist_files
from latentbench.data import load_mnist
from latentbench.data.datasets import (
    MNIST_PAYLOAD_SHA256,
    load_mnist_5k,
    locate_mnist,
)
from latentbench.errors import DataError


def test_full_mnist_splits_and_scale(mnist):
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (
        55_000,
        5_000,
        10_000,
    )
    assert mnist.train.X.shape == (55_000, 1, 28, 28)
    assert mnist.verified
    assert mnist.payload_sha256 == MNIST_PAYLOAD_SHA256
    assert float(mnist.test.X.min()) == 0.0 and float(mnist.test.X.max()) == 1.0
    # Published means on 0..255: 33.318 (training) and 33.791 (test).
    train_mean = float(np.concatenate([mnist.train.X_flat, mnist.val.X_flat]).mean())
    assert train_mean * 255 == pytest.approx(33.318, abs=1e-3)
    assert float(mnist.test.X.mean()) * 255 == pytest.approx(33.791, abs=1e-3)


def test_train_and_validation_partition_the_training_labels(mnist):
    counts = np.bincount(np.concatenate([mnist.train.y, mnist.val.y]), minlength=10)
    assert counts.tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]


def test_split_depends_on_the_seed(mnist_dir, mnist):
    again = load_mnist(mnist_dir, seed=0, download=False, fallback=False)
    other = load_mnist(mnist_dir, seed=1, download=False, fallback=False)
    np.testing.assert_array_equal(again.val.y, mnist.val.y)
    assert not np.array_equal(other.val.y, mnist.val.y)


def test_pca_and_autoencoders_see_the_same_pixels(mnist_small):
    flat = mnist_small.train.X_flat
    assert flat.shape == (3000, 784)
    assert np.shares_memory(flat, mnist_small.train.X.numpy())


def test_torchvision_layout_is_found(tmp_path):
    write_mnist_files(tmp_path / "MNIST" / "raw")
    kind, files = locate_mnist(tmp_path)
    assert kind == "local"
    assert files["t10k-images-idx3-ubyte"].parent == tmp_path / "MNIST" / "raw"


def test_environment_variable_is_searched(tmp_path, monkeypatch):
    write_mnist_files(tmp_path)
    monkeypatch.setenv("LATENTBENCH_DATA", str(tmp_path))
    data = load_mnist(download=False, fallback=False)
    assert data.location == str(tmp_path)
    assert not data.verified  # random pixels are not MNIST


def test_folder_with_only_some_files_is_refused(tmp_path):
    write_mnist_files(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path, download=False, fallback=False)


def test_missing_data_dir_is_refused(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        load_mnist(tmp_path / "nowhere", download=False)


def test_mismatched_counts_are_refused(tmp_path):
    from conftest import write_idx

    write_mnist_files(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(19, np.uint8), gz=True)
    with pytest.raises(DataError, match="holds 20 images but .* holds 19 labels"):
        load_mnist(tmp_path, download=False, fallback=False)


def test_labels_outside_0_to_9_are_refused(tmp_path):
    from conftest import write_idx

    write_mnist_files(tmp_path)
    write_idx(
        tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(20, 10, np.uint8), gz=True
    )
    with pytest.raises(DataError, match="holds label 10; expected 0..9"):
        load_mnist(tmp_path, download=False, fallback=False)


def test_nothing_found_and_no_download_falls_back_loudly():
    with pytest.warns(RuntimeWarning, match="FALLING BACK .* 'mnist-5k'"):
        data = load_mnist(download=False)
    assert data.dataset == "mnist-5k"
    assert data.data_source == "embedded"


def test_data_dir_named_on_purpose_must_hold_the_data(tmp_path):
    with pytest.raises(
        DataError, match="holds no MNIST files .* point it at the folder"
    ):
        load_mnist(tmp_path)


def test_embedded_subset_has_a_fixed_stratified_split():
    data = load_mnist_5k()
    assert (len(data.train), len(data.val), len(data.test)) == (3500, 500, 1000)
    assert np.bincount(data.test.y).tolist() == [100] * 10
    assert np.bincount(data.val.y).tolist() == [50] * 10
    assert 0.0 <= float(data.train.X.min()) and float(data.train.X.max()) == 1.0
    np.testing.assert_array_equal(load_mnist_5k().test.y, data.test.y)
