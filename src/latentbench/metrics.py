"""How well an embedding keeps the images and their classes apart.

Every metric is computed the same way for every model, from the embeddings of the
training and test images and, where it applies, the test reconstructions. Metrics
whose cost grows with the square of the number of points (silhouette,
trustworthiness) run on a fixed sample, whose size their name in the docs states.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from sklearn.manifold import trustworthiness
from sklearn.metrics import (
    adjusted_rand_score,
    normalized_mutual_info_score,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KNeighborsClassifier

from latentbench.constants import N_CLASSES, N_CLUSTERS_UNLABELLED

logger = logging.getLogger(__name__)

_ORDER = ("knn_accuracy", "silhouette", "trustworthiness", "gmm_ari", "gmm_nmi")

KNN_NEIGHBORS = 5
SILHOUETTE_SAMPLE = 5_000
TRUSTWORTHINESS_SAMPLE = 2_000
TRUSTWORTHINESS_NEIGHBORS = 5
METRIC_SEED = 0
# The metrics that compare the embedding with class labels: None without labels.
LABEL_METRICS = ("knn_accuracy", "silhouette", "gmm_ari", "gmm_nmi")
NO_LABELS_REASON = "the data have no labels (no y), so there are no classes to score"

# name -> (lowest, highest) valid value; used by tests and to flag bugs.
METRIC_RANGES = {
    "recon_mse": (0.0, 1.0),
    "knn_accuracy": (0.0, 1.0),
    "silhouette": (-1.0, 1.0),
    "trustworthiness": (0.0, 1.0),
    "gmm_ari": (-1.0, 1.0),
    "gmm_nmi": (0.0, 1.0),
}


def recon_mse(X: np.ndarray, X_hat: np.ndarray) -> float:
    """Mean over images and pixels of the squared error, both of shape (n, 784)."""
    X = X.reshape(len(X), -1).astype(np.float64)
    X_hat = X_hat.reshape(len(X_hat), -1).astype(np.float64)
    return float(np.mean((X - X_hat) ** 2))


def knn_accuracy(
    Z_train: np.ndarray, y_train: np.ndarray, Z_test: np.ndarray, y_test: np.ndarray
) -> float:
    """Accuracy of a 5-nearest-neighbour classifier fit on the training embedding."""
    knn = KNeighborsClassifier(n_neighbors=KNN_NEIGHBORS, n_jobs=-1)
    knn.fit(Z_train, y_train)
    return float(knn.score(Z_test, y_test))


def knn_predictions(
    Z_train: np.ndarray, y_train: np.ndarray, Z_test: np.ndarray
) -> np.ndarray:
    """The 5-nearest-neighbour predictions for ``Z_test``."""
    knn = KNeighborsClassifier(n_neighbors=KNN_NEIGHBORS, n_jobs=-1)
    return knn.fit(Z_train, y_train).predict(Z_test)


def silhouette(Z: np.ndarray, y: np.ndarray) -> float:
    """Silhouette of the classes in the embedding, on a fixed sample of 5,000 points.

    Quadratic in the sample size; the sample is drawn with seed 0, so every model is
    scored on the same points.
    """
    sample = min(SILHOUETTE_SAMPLE, len(Z))
    return float(silhouette_score(Z, y, sample_size=sample, random_state=METRIC_SEED))


def trustworthiness_first(X: np.ndarray, Z: np.ndarray) -> float:
    """scikit-learn's trustworthiness (5 neighbours) on the first 2,000 points.

    Compares neighbourhoods in pixel space ``X`` (n, 784) with those in ``Z``.
    """
    n = min(TRUSTWORTHINESS_SAMPLE, len(Z))
    X = X.reshape(len(X), -1)[:n]
    return float(trustworthiness(X, Z[:n], n_neighbors=TRUSTWORTHINESS_NEIGHBORS))


def gmm_clusters(Z: np.ndarray, n_clusters: int = N_CLUSTERS_UNLABELLED) -> np.ndarray:
    """Cluster of each row of ``Z`` (n, k) under an ``n_clusters``-component
    Gaussian mixture fit with seed 0; int64 of shape (n,)."""
    gmm = GaussianMixture(n_components=n_clusters, random_state=METRIC_SEED)
    return gmm.fit_predict(Z.astype(np.float64)).astype(np.int64)


def gmm_scores(
    Z: np.ndarray, y: np.ndarray, n_classes: int = N_CLASSES
) -> tuple[float, float]:
    """ARI and NMI against the labels of the clusters of a Gaussian mixture with one
    component per class."""
    clusters = gmm_clusters(Z, n_classes)
    return (
        float(adjusted_rand_score(y, clusters)),
        float(normalized_mutual_info_score(y, clusters)),
    )


def embedding_metrics(
    X_test: np.ndarray,
    X_hat_test: np.ndarray | None,
    Z_train: np.ndarray,
    y_train: np.ndarray | None,
    Z_test: np.ndarray,
    y_test: np.ndarray | None,
    n_classes: int | None = None,
) -> dict[str, float | None]:
    """Every metric of one model.

    Without labels (``y_test`` None) the label metrics (``LABEL_METRICS``) are None;
    the caller reports them skipped for ``NO_LABELS_REASON``.

    Parameters
    ----------
    X_test : ndarray of shape (n_test, 784), float32 in [0, 1]
    X_hat_test : ndarray of shape (n_test, 784) or None
        Reconstructions; ``recon_mse`` is None for a model without a decoder.
    Z_train : ndarray of shape (n_train, n_components)
    y_train : ndarray of shape (n_train,)
    Z_test : ndarray of shape (n_test, n_components)
    y_test : ndarray of shape (n_test,) or None
    n_classes : int, optional
        Gaussian-mixture components for ARI and NMI; the number of distinct labels
        in ``y_train`` and ``y_test`` when not given.
    """
    timings = {}
    results: dict[str, float | None] = {}

    def timed(name, fn, *args):
        start = time.perf_counter()
        value = fn(*args)
        timings[name] = time.perf_counter() - start
        return value

    results["recon_mse"] = (
        None
        if X_hat_test is None
        else timed("recon_mse", recon_mse, X_test, X_hat_test)
    )
    results["trustworthiness"] = timed(
        "trustworthiness", trustworthiness_first, X_test, Z_test
    )
    if y_test is None or y_train is None:
        results.update(dict.fromkeys(LABEL_METRICS))
    else:
        if n_classes is None:
            n_classes = len(np.union1d(np.unique(y_train), np.unique(y_test)))
        results["knn_accuracy"] = timed(
            "knn_accuracy", knn_accuracy, Z_train, y_train, Z_test, y_test
        )
        results["silhouette"] = timed("silhouette", silhouette, Z_test, y_test)
        ari, nmi = timed("gmm", gmm_scores, Z_test, y_test, n_classes)
        results["gmm_ari"], results["gmm_nmi"] = ari, nmi
    results = {key: results[key] for key in ("recon_mse", *_ORDER) if key in results}
    logger.debug("metric seconds: %s", {k: round(v, 2) for k, v in timings.items()})
    results["metric_seconds"] = round(sum(timings.values()), 3)
    results["metric_timings"] = {k: round(v, 3) for k, v in timings.items()}
    return results
