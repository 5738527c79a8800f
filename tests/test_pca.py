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
