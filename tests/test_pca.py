import zipfile

import numpy as np
import pytest
from sklearn.decomposition import PCA

from latentbench.models import load_pca, make_pca, save_pca
from latentbench.models.pca import pca_n_params


def test_full_rank_pca_rebuilds_its_input_exactly():
    rng = np.random.default_rng(0)
    X = rng.random((200, 30))
    pca = make_pca(30).fit(X)
    np.testing.assert_allclose(pca.inverse_transform(pca.transform(X)), X, atol=1e-10)


def test_solver_agrees_with_full_svd_on_real_digits(mnist_small):
    X = mnist_small.train.X_flat.astype(np.float64)
    ours = make_pca(5).fit(X)
    full = PCA(5, svd_solver="full").fit(X)
    np.testing.assert_allclose(
        ours.explained_variance_, full.explained_variance_, rtol=1e-8
    )
    # Components agree up to sign.
    np.testing.assert_allclose(
        np.abs(ours.components_ @ full.components_.T), np.eye(5), atol=1e-6
    )


def test_save_and_load_round_trip_without_pickle(tmp_path, mnist_small):
    X = mnist_small.train.X_flat
    pca = make_pca(3).fit(X)
    path = tmp_path / "pca.npz"
    save_pca(path, pca)

    with zipfile.ZipFile(path) as zf, np.load(path, allow_pickle=False) as npz:
        assert all(name.endswith(".npy") for name in zf.namelist())
        assert all(npz[name].dtype != object for name in npz.files)
    loaded = load_pca(path)
    np.testing.assert_allclose(
        loaded.transform(X[:50]), pca.transform(X[:50]), rtol=1e-6
    )
    np.testing.assert_allclose(
        loaded.inverse_transform(pca.transform(X[:50])),
        pca.inverse_transform(pca.transform(X[:50])),
        rtol=1e-6,
    )
    assert pca_n_params(loaded) == 3 * 784 + 784


def test_pca_two_components_matches_the_published_error(mnist):
    """2-D PCA on the [0, 1] MNIST rebuilds the test set with MSE 0.0557 per pixel."""
    pca = make_pca(2).fit(mnist.train.X_flat)
    X = mnist.test.X_flat
    mse = float(np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2))
    assert mse == pytest.approx(0.0557, abs=5e-4)


def test_streaming_fit_over_a_memmap_matches_the_in_memory_fit(tmp_path, mnist):
    from latentbench.models.pca import fit_pca_streaming

    X = mnist.train.X_flat
    np.save(tmp_path / "X.npy", X)
    X_disk = np.load(tmp_path / "X.npy", mmap_mode="r")

    streamed = fit_pca_streaming(X_disk, 10, chunk_size=5_000)
    # The reference is the exact (float64) in-memory fit. scikit-learn's fit of the
    # float32 array itself differs from it by up to 2e-4, from float32 rounding.
    in_memory = make_pca(10).fit(X.astype(np.float64))

    np.testing.assert_allclose(streamed.components_, in_memory.components_, atol=1e-6)
    np.testing.assert_allclose(
        streamed.explained_variance_, in_memory.explained_variance_, rtol=1e-6
    )
    np.testing.assert_allclose(streamed.mean_, in_memory.mean_, atol=1e-7)
    Z = streamed.transform(X[:500])
    np.testing.assert_allclose(Z, in_memory.transform(X[:500]), atol=1e-4)
    assert isinstance(X_disk, np.memmap)


def test_streaming_fit_refuses_too_many_components():
    from latentbench.models.pca import fit_pca_streaming

    with pytest.raises(ValueError, match=r"n_components=6 must be between 1 and .*=5"):
        fit_pca_streaming(np.zeros((5, 8)), 6)
