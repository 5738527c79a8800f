"""PCA on the same [0, 1] pixels as the autoencoders, stored without pickles."""

from __future__ import annotations

import os

import numpy as np
from sklearn.decomposition import PCA

from latentbench._io import read_npz, write_npz
from latentbench.errors import CheckpointError

# The covariance-eigh solver forms the (784, 784) covariance once and diagonalises
# it: exact, and far faster than a full SVD of a tall (n_samples, 784) matrix.
PCA_SOLVER = "covariance_eigh"

_FITTED = (
    "components_",
    "explained_variance_",
    "explained_variance_ratio_",
    "singular_values_",
    "mean_",
    "noise_variance_",
)


def make_pca(n_components: int, svd_solver: str = PCA_SOLVER) -> PCA:
    """A scikit-learn PCA with latentbench's default solver."""
    return PCA(n_components=n_components, svd_solver=svd_solver)


def pca_n_params(pca: PCA) -> int:
    """Numbers PCA stores to encode and decode: the components and the mean."""
    return int(pca.components_.size + pca.mean_.size)


def save_pca(path: str | os.PathLike, pca: PCA) -> None:
    """Save a fitted PCA's arrays to an ``.npz`` (no pickle)."""
    arrays = {name: np.asarray(getattr(pca, name)) for name in _FITTED}
    arrays["n_samples_"] = np.asarray(pca.n_samples_)
    arrays["n_components"] = np.asarray(pca.n_components_)
    write_npz(path, **arrays)


def load_pca(path: str | os.PathLike) -> PCA:
    """Restore a PCA written by :func:`save_pca`."""
    try:
        arrays = read_npz(path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read PCA model {path}: {exc}") from None
    missing = [name for name in (*_FITTED, "n_samples_") if name not in arrays]
    if missing:
        raise CheckpointError(
            f"{path} is not a PCA model: missing {', '.join(missing)}"
        )
    pca = make_pca(int(arrays["n_components"]))
    for name in _FITTED:
        value = arrays[name]
        setattr(pca, name, value.item() if value.ndim == 0 else value)
    pca.n_samples_ = int(arrays["n_samples_"])
    pca.n_components_ = int(arrays["n_components"])
    pca.n_features_in_ = pca.components_.shape[1]
    return pca
