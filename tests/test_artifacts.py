"""What compare saves for the figures: the same digits, read back from saved models."""

import numpy as np
import pytest

from latentbench._io import read_npz
from latentbench.artifacts import (
    decode_grid,
    latent_grid,
    load_coders,
    sample_indices,
)
from latentbench.models import load_pca


def test_sample_indices_are_the_first_two_of_each_class():
    y = np.array([3, 0, 0, 1, 3, 0, 2, 1, 2, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9])
    index = sample_indices(y)
    np.testing.assert_array_equal(y[index], np.repeat(np.arange(10), 2))
    np.testing.assert_array_equal(index[:8], [1, 2, 3, 7, 6, 8, 0, 4])


def test_latent_grid_spans_the_central_range():
    Z = np.column_stack([np.linspace(0, 100, 1001), np.linspace(-1, 1, 1001)])
    z1, z2 = latent_grid(Z, n=5)
    np.testing.assert_allclose([z1[0], z1[-1]], [0.5, 99.5])
    np.testing.assert_allclose([z2[0], z2[-1]], [-0.99, 0.99])
    assert len(z1) == len(z2) == 5


def test_decode_grid_puts_each_code_at_its_cell():
    def decode(Z):  # each image holds its own code
        return np.repeat(Z[:, :1] * 10 + Z[:, 1:], 784, axis=1)

    images = decode_grid(decode, np.array([0.0, 1.0, 2.0]), np.array([5.0, 6.0]))
    assert images.shape == (2, 3, 28, 28)
    assert images[1, 2, 0, 0] == 2.0 * 10 + 6.0  # row i is z2[i], column j is z1[j]


def test_saved_sample_holds_the_right_originals(run_2d, mnist):
    sample = read_npz(run_2d / "reconstructions.npz")
    index = sample["index"]
    test_y = mnist.test.y[:1000]
    np.testing.assert_array_equal(index, sample_indices(test_y))
    np.testing.assert_array_equal(sample["y"], np.repeat(np.arange(10), 2))
    # Stored as images, (n, height, width).
    originals = mnist.test.X_flat[index]
    np.testing.assert_array_equal(sample["X"], originals.reshape(-1, 28, 28))

    pca = load_pca(run_2d / "models/pca.npz")
    expected = pca.inverse_transform(pca.transform(originals)).reshape(-1, 28, 28)
    np.testing.assert_allclose(sample["X_hat_pca"], expected, rtol=1e-4, atol=1e-5)
    for name in ("fc", "cnn"):
        X_hat = sample[f"X_hat_{name}"]
        assert X_hat.shape == (20, 28, 28) and 0 <= X_hat.min() and X_hat.max() <= 1


@pytest.mark.parametrize("name", ["pca", "fc", "cnn"])
def test_latent_map_decodes_the_saved_model(run_2d, name):
    grid = read_npz(run_2d / f"latent_maps/{name}.npz")
    Z = read_npz(run_2d / f"embeddings/{name}.npz")["Z"]
    assert grid["images"].shape == (15, 15, 28, 28)
    assert Z[:, 0].min() <= grid["z1"][0] < grid["z1"][-1] <= Z[:, 0].max()
    _, decode = load_coders(run_2d, name)
    corner = decode(np.array([[grid["z1"][0], grid["z2"][-1]]]))
    np.testing.assert_allclose(
        grid["images"][-1, 0].ravel(), corner[0], rtol=1e-4, atol=1e-5
    )


def test_no_latent_map_beyond_two_components(run_3d):
    assert not (run_3d / "latent_maps").exists()
    assert (run_3d / "reconstructions.npz").is_file()
