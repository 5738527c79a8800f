import numpy as np
import pytest

from latentbench.metrics import (
    METRIC_RANGES,
    embedding_metrics,
    gmm_scores,
    knn_accuracy,
    recon_mse,
    silhouette,
    trustworthiness_first,
)


def test_recon_mse_by_hand():
    X = np.array([[0.0, 1.0], [0.5, 0.5]])
    X_hat = np.array([[0.0, 0.0], [1.0, 0.5]])
    # squared errors 0, 1, 0.25, 0 -> mean 0.3125
    assert recon_mse(X, X_hat) == pytest.approx(0.3125)


def test_knn_accuracy_by_hand():
    Z_train = np.array(
        [[0.0], [0.1], [0.2], [0.3], [0.4], [10.0], [10.1], [10.2], [10.3]]
    )
    y_train = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    Z_test = np.array([[0.05], [10.05], [9.0]])
    # The third point's five neighbours are four 1s and one 0: predicted 1, labelled 0.
    assert knn_accuracy(Z_train, y_train, Z_test, np.array([0, 1, 0])) == pytest.approx(
        2 / 3
    )


def test_silhouette_of_two_tight_far_clusters_is_near_one():
    rng = np.random.default_rng(0)
    Z = np.concatenate([rng.normal(0, 0.01, (50, 2)), rng.normal(100, 0.01, (50, 2))])
    y = np.repeat([0, 1], 50)
    assert silhouette(Z, y) > 0.99
    assert silhouette(Z, y[::-1].copy()) > 0.99
    assert silhouette(Z, np.tile([0, 1], 50)) < 0.01


def test_trustworthiness_of_the_identity_is_one_and_of_noise_is_low():
    rng = np.random.default_rng(0)
    X = rng.random((300, 10))
    assert trustworthiness_first(X, X) == pytest.approx(1.0)
    assert trustworthiness_first(X, rng.random((300, 2))) < 0.7


def test_gmm_recovers_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.arange(10)[:, None] * np.array([[50.0, 0.0]])
    y = np.repeat(np.arange(10), 30)
    Z = centres[y] + rng.normal(0, 0.5, (300, 2))
    ari, nmi = gmm_scores(Z, y)
    assert ari == pytest.approx(1.0)
    assert nmi == pytest.approx(1.0)


def test_every_metric_lies_in_its_range_on_real_digits(mnist_small):
    from latentbench.models import make_pca

    pca = make_pca(2).fit(mnist_small.train.X_flat)
    X = mnist_small.test.X_flat
    Z = pca.transform(X)
    scores = embedding_metrics(
        X,
        pca.inverse_transform(Z),
        pca.transform(mnist_small.train.X_flat),
        mnist_small.train.y,
        Z,
        mnist_small.test.y,
    )
    for name, (low, high) in METRIC_RANGES.items():
        assert low <= scores[name] <= high, name
    # 2-D PCA separates digits far better than chance but far from perfectly.
    assert 0.3 < scores["knn_accuracy"] < 0.55
