"""UMAP and t-SNE as baselines: non-linear embeddings with no decoder.

Both come from the optional ``manifold`` extra (``pip install
'latentbench[manifold]'``, which installs umap-learn and openTSNE). Their cost grows
faster than linearly with the number of points, so each is fit on a fixed, seeded
subsample of the training images; the test images are then placed into that
embedding the way every other model embeds them, by a transform fitted on training
data alone: UMAP's ``UMAP.transform`` and openTSNE's ``TSNEEmbedding.transform``
optimise each new point against the fixed training embedding.

The training codes a 5-NN classifier is fit on are those of the fit subsample (the
fitted embedding itself), with that subsample's labels. Neither method can map a
code back to an image, so no reconstruction error is reported for them.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from collections.abc import Callable, Sequence
from types import ModuleType

import numpy as np

from latentbench.constants import MANIFOLD_MODEL_NAMES, TSNE_MAX_COMPONENTS
from latentbench.errors import ConfigError, MissingDependencyError

logger = logging.getLogger(__name__)

MANIFOLD_EXTRA = "pip install 'latentbench[manifold]'"
# model name -> (module to import, distribution that provides it)
_PACKAGES = {"umap": ("umap", "umap-learn"), "tsne": ("openTSNE", "openTSNE")}

Transform = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass
class ManifoldEmbedding:
    """A UMAP or t-SNE embedding of a training subsample and of the test images.

    Attributes
    ----------
    fit_index : ndarray of shape (n_fit,), int64
        Increasing indices of the training images the method was fit on.
    Z_fit : ndarray of shape (n_fit, n_components), float32
        The fitted embedding of those images.
    Z_test : ndarray of shape (n_test, n_components), float32
        The test images transformed into that embedding.
    fit_seconds : float
        Seconds to fit on the subsample (the transform is not included).
    """

    fit_index: np.ndarray
    Z_fit: np.ndarray
    Z_test: np.ndarray
    fit_seconds: float


def import_manifold(name: str) -> ModuleType:
    """The package behind model ``name`` (``umap`` or ``tsne``).

    Raises
    ------
    MissingDependencyError
        When the package is not installed; the message names the extra to install.
    """
    module, package = _PACKAGES[name]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"model {name!r} needs the {package} package, which cannot be imported "
            f"here ({exc}); install the manifold extra: {MANIFOLD_EXTRA}"
        ) from None


def manifold_versions(models: Sequence[str]) -> dict[str, str]:
    """Package name to version, for the manifold models among ``models``."""
    versions = {}
    for name in models:
        if name in _PACKAGES:
            versions[_PACKAGES[name][1]] = import_manifold(name).__version__
    return versions


def fit_subsample(n_train: int, fit_size: int, seed: int) -> np.ndarray:
    """Increasing indices of ``min(fit_size, n_train)`` training images.

    Drawn without replacement by a generator seeded with ``seed``, so a rerun with
    the same seed fits on the same images; all of them when ``fit_size >= n_train``.
    """
    if fit_size >= n_train:
        return np.arange(n_train, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_train, size=fit_size, replace=False)).astype(np.int64)


def _fit_umap(X: np.ndarray, n_components: int, seed: int):
    umap = import_manifold("umap")
    # A random_state makes UMAP run on one thread; it is what makes reruns agree.
    reducer = umap.UMAP(n_components=n_components, random_state=seed, n_jobs=1)
    Z_fit = reducer.fit_transform(X)
    return Z_fit, reducer.transform


def _fit_tsne(X: np.ndarray, n_components: int, seed: int):
    openTSNE = import_manifold("tsne")
    # openTSNE takes Barnes-Hut below 10,000 points and its FFT scheme from there;
    # FFT handles at most 2 dimensions, so 3 take Barnes-Hut at any size.
    method = "auto" if n_components <= 2 else "bh"
    # One thread: the result depends on the thread count, and a fixed count makes
    # reruns agree on any machine.
    embedding = openTSNE.TSNE(
        n_components=n_components,
        negative_gradient_method=method,
        random_state=seed,
        n_jobs=1,
    ).fit(X)
    return np.asarray(embedding), lambda X_new: np.asarray(embedding.transform(X_new))


_FITTERS = {"umap": _fit_umap, "tsne": _fit_tsne}


def embed_manifold(
    name: str,
    X_train: np.ndarray,
    X_test: np.ndarray,
    n_components: int,
    fit_size: int,
    seed: int = 0,
) -> ManifoldEmbedding:
    """Fit UMAP or t-SNE on a seeded subsample of ``X_train``, transform ``X_test``.

    Parameters
    ----------
    name : {"umap", "tsne"}
    X_train : ndarray of shape (n_train, n_pixels), float32 in [0, 1]
    X_test : ndarray of shape (n_test, n_pixels), float32 in [0, 1]
    n_components : int
        Embedding dimension; t-SNE takes at most 3.
    fit_size : int
        Training images to fit on (all of them if there are no more than this).
    seed : int
        Seeds the subsample and the method, so that reruns agree.

    Returns
    -------
    ManifoldEmbedding
    """
    if name not in MANIFOLD_MODEL_NAMES:
        raise ConfigError(
            f"unknown manifold model {name!r}; expected one of "
            f"{', '.join(MANIFOLD_MODEL_NAMES)}"
        )
    if name == "tsne" and n_components > TSNE_MAX_COMPONENTS:
        raise ConfigError(
            f"tsne embeds into at most {TSNE_MAX_COMPONENTS} dimensions, not "
            f"n_components {n_components}; use fewer components or drop tsne"
        )
    import_manifold(name)  # refuse before any work when the extra is missing

    index = fit_subsample(len(X_train), fit_size, seed)
    start = time.perf_counter()
    Z_fit, transform = _FITTERS[name](X_train[index], n_components, seed)
    fit_seconds = time.perf_counter() - start
    Z_test = transform(X_test)

    logger.info(
        "fit %s: %d of %d training images in %.1f s, %d test images placed in %.1f s",
        name,
        len(index),
        len(X_train),
        fit_seconds,
        len(X_test),
        time.perf_counter() - start - fit_seconds,
    )
    return ManifoldEmbedding(
        fit_index=index,
        Z_fit=np.asarray(Z_fit, dtype=np.float32),
        Z_test=np.asarray(Z_test, dtype=np.float32),
        fit_seconds=fit_seconds,
    )
