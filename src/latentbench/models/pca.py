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


def fit_pca_streaming(
    X, n_components: int, chunk_size: int = 16_384, dtype=np.float32
) -> PCA:
    """Exact PCA of data read a chunk of rows at a time, as a fitted scikit-learn PCA.

    The sum of the rows and the (n_features, n_features) matrix of their inner
    products are accumulated in float64, so memory stays at one chunk plus that
    matrix whatever the number of rows: ``X`` may be a ``numpy.memmap`` of data that
    does not fit in memory. The covariance ``(X^T X - n mean mean^T) / (n - 1)`` is
    then diagonalised, as scikit-learn's ``covariance_eigh`` solver does, with the
    same sign convention, so the result matches an in-memory fit.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Anything that supports row slices ``X[a:b]``, on the [0, 1] scale.
    n_components : int
    chunk_size : int
        Rows read at once.
    dtype : numpy dtype
        Dtype of the fitted arrays (scikit-learn keeps the input's).

    Returns
    -------
    sklearn.decomposition.PCA, fitted
    """
    from sklearn.utils.extmath import svd_flip

    n_samples, n_features = X.shape
    if not 1 <= n_components <= min(n_samples, n_features):
        raise ValueError(
            f"n_components={n_components} must be between 1 and "
            f"min(n_samples, n_features)={min(n_samples, n_features)}"
        )
    total = np.zeros(n_features)
    gram = np.zeros((n_features, n_features))
    for start in range(0, n_samples, chunk_size):
        chunk = np.asarray(X[start : start + chunk_size], dtype=np.float64)
        total += chunk.sum(axis=0)
        gram += chunk.T @ chunk

    mean = total / n_samples
    covariance = (gram - n_samples * np.outer(mean, mean)) / (n_samples - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    # eigh sorts ascending; rounding can leave tiny negative variances.
    eigenvalues = np.clip(eigenvalues[::-1], 0.0, None)
    components = eigenvectors[:, ::-1].T
    _, components = svd_flip(None, components, u_based_decision=False)

    pca = make_pca(n_components)
    pca.n_samples_, pca.n_features_in_ = n_samples, n_features
    pca.n_components_ = n_components
    pca.mean_ = mean.astype(dtype)
    pca.components_ = components[:n_components].astype(dtype)
    pca.explained_variance_ = eigenvalues[:n_components].astype(dtype)
    pca.explained_variance_ratio_ = (
        eigenvalues[:n_components] / eigenvalues.sum()
    ).astype(dtype)
    pca.singular_values_ = np.sqrt(eigenvalues[:n_components] * (n_samples - 1)).astype(
        dtype
    )
    rest = eigenvalues[n_components:]
    pca.noise_variance_ = float(rest.mean()) if rest.size else 0.0
    return pca
