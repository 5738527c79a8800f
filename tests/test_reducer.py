"""AutoencoderReducer as a scikit-learn transformer, on real MNIST digits."""

import copy
import pickle
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import latentbench
from latentbench.reducer import AutoencoderReducer, neg_reconstruction_error

# Enough steps for the codes to carry digit identity, few enough for two busy cores.
QUICK = {"max_epochs": 2, "batch_size": 32, "learning_rate": 3e-3}

# scikit-learn's checks that fit tables of 2 to 10 columns (or iris), which no model
# of 28x28 images can take, and the test here that checks the same on images. The
# README lists them.
CHECKED_HERE_ON_IMAGES = {
    "check_dict_unchanged": "test_transform_changes_no_state",
    "check_dont_overwrite_parameters": "test_fit_sets_only_trailing_underscore_attributes_and_no_globals",
    "check_dtype_object": "test_memory_layouts_and_dtypes",
    "check_estimators_dtypes": "test_memory_layouts_and_dtypes",
    "check_estimators_fit_returns_self": "test_uint8_and_float_images_fit_one_model",
    "check_estimators_overwrite_params": "test_fit_sets_only_trailing_underscore_attributes_and_no_globals",
    "check_estimators_pickle": "test_pickle_round_trip",
    "check_f_contiguous_array_estimator": "test_memory_layouts_and_dtypes",
    "check_fit2d_predict1d": "test_bad_images_are_refused",
    "check_fit_check_is_fitted": "test_not_fitted_is_refused",
    "check_fit_idempotent": "test_uint8_and_float_images_fit_one_model",
    "check_fit_score_takes_y": "test_score_is_negative_reconstruction_error",
    "check_methods_sample_order_invariance": "test_transform_is_per_image",
    "check_methods_subset_invariance": "test_transform_is_per_image",
    "check_n_features_in": "test_fitted_attributes_and_shapes",
    "check_n_features_in_after_fitting": "test_bad_images_are_refused",
    "check_pipeline_consistency": "test_pipeline_knn_beats_chance",
    "check_readonly_memmap_input": "test_memory_layouts_and_dtypes",
    "check_transformer_data_not_an_array": "test_memory_layouts_and_dtypes",
    "check_transformer_general": "test_uint8_and_float_images_fit_one_model",
    "check_transformer_preserve_dtypes": "test_memory_layouts_and_dtypes",
}
EXPECTED_FAILED_CHECKS = {
    check: f"fits a table of 2 to 10 columns, not 28x28 images; see {test}"
    for check, test in CHECKED_HERE_ON_IMAGES.items()
}
EXPECTED_FAILED_CHECKS["check_estimators_nan_inf"] = (
    "refuses NaN and inf in fit, then fits a (10, 3) table to try transform; see "
    "test_bad_images_are_refused"
)
EXPECTED_FAILED_CHECKS["check_positive_only_tag_during_fit"] = (
    "fits iris and expects 'Negative values in data'; the reducer refuses the 4 "
    "columns first; see test_bad_images_are_refused"
)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # The two cores are shared with other jobs; two torch threads per process
    # oversubscribe them and train several times slower than one.
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


@pytest.fixture(scope="module")
def digits(mnist_small):
    """1,500 training and 500 test digits, (n, 784) float32 on [0, 1], and labels."""
    train, test = mnist_small.train, mnist_small.test
    return train.X_flat[:1500], train.y[:1500], test.X_flat[:500], test.y[:500]


@pytest.fixture(scope="module")
def fitted(digits):
    X, *_ = digits
    return AutoencoderReducer(n_components=2, **QUICK).fit(X)


def to_uint8(X):
    # The test data were uint8 divided by 255, so this recovers them exactly.
    return np.rint(X * 255).astype(np.uint8)


def test_exported_lazily():
    assert latentbench.AutoencoderReducer is AutoencoderReducer
    code = "import sys, latentbench; print('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    assert done.stdout.strip() == "False"


def test_fitted_attributes_and_shapes(fitted, digits):
    X_test = digits[2]
    Z = fitted.transform(X_test)
    X_hat = fitted.inverse_transform(Z)

    assert Z.shape == (500, 2) and Z.dtype == np.float32
    assert X_hat.shape == (500, 784) and X_hat.dtype == np.float32
    assert 0 <= X_hat.min() and X_hat.max() <= 1
    assert fitted.n_features_in_ == 784 and fitted.n_components_ == 2
    assert fitted.n_epochs_ == 2 and fitted.best_val_loss_ > 0
    assert not fitted.model_.training
    assert list(fitted.get_feature_names_out()) == [
        "autoencoderreducer0",
        "autoencoderreducer1",
    ]


def test_uint8_and_float_images_fit_one_model(fitted, digits):
    X, *_ = digits
    images = to_uint8(X).reshape(-1, 28, 28)
    before = images.copy()
    twin = clone(fitted)

    Z = twin.fit_transform(images)

    # Same seed, same pixels on the one data path: the same weights, bit for bit.
    for key, value in fitted.model_.state_dict().items():
        torch.testing.assert_close(twin.model_.state_dict()[key], value, rtol=0, atol=0)
    assert_array_equal(Z, fitted.transform(X))
    assert_array_equal(images, before)
    assert twin.fit(images) is twin


def test_fit_sets_only_trailing_underscore_attributes_and_no_globals(digits):
    X, *_ = digits
    reducer = AutoencoderReducer(n_components=3, max_epochs=1, batch_size=128)
    params = copy.deepcopy(reducer.get_params())
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    deterministic = torch.are_deterministic_algorithms_enabled()

    reducer.fit(X[:300])

    assert reducer.get_params() == params
    added = set(vars(reducer)) - set(params)
    assert added and all(name.endswith("_") or name.startswith("_") for name in added)
    # Training seeds the global generators; the caller's streams are left alone.
    assert random.getstate() == states[0]
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), states[1]))
    assert torch.equal(torch.get_rng_state(), states[2])
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_transform_changes_no_state(fitted, digits):
    _, _, X_test, _ = digits
    weights = copy.deepcopy(fitted.model_.state_dict())
    attributes = {k: v for k, v in vars(fitted).items() if k != "model_"}
    pixels = X_test.copy()

    fitted.inverse_transform(fitted.transform(X_test))
    fitted.score(X_test)

    for key, value in fitted.model_.state_dict().items():
        torch.testing.assert_close(value, weights[key], rtol=0, atol=0)
    assert {k: v for k, v in vars(fitted).items() if k != "model_"} == attributes
    assert not fitted.model_.training
    assert_array_equal(X_test, pixels)


def test_transform_is_per_image(fitted, digits):
    _, _, X_test, _ = digits
    order = np.random.default_rng(0).permutation(len(X_test))
    Z = fitted.transform(X_test)

    # Batches of another size may sum in another order: float32 rounding only.
    assert_allclose(fitted.transform(X_test[order]), Z[order], rtol=1e-5, atol=1e-6)
    assert_allclose(fitted.transform(X_test[:7]), Z[:7], rtol=1e-5, atol=1e-6)


def test_memory_layouts_and_dtypes(fitted, digits, tmp_path):
    _, _, X_test, _ = digits
    X = X_test[:20]
    expected = fitted.transform(X)
    memmap = np.lib.format.open_memmap(
        tmp_path / "X.npy", mode="w+", dtype=X.dtype, shape=X.shape
    )
    memmap[:] = X
    memmap.flush()
    inputs = {
        "read-only memmap": np.load(tmp_path / "X.npy", mmap_mode="r"),
        "Fortran order": np.asfortranarray(X),
        "nested list": X.tolist(),
        "float64": X.astype(np.float64),
        "object": X.astype(object),
        "torch tensor (n, 1, 28, 28)": torch.from_numpy(X).reshape(-1, 1, 28, 28),
        "uint8 (n, 28, 28)": to_uint8(X).reshape(-1, 28, 28),
    }
    for name, images in inputs.items():
        Z = fitted.transform(images)
        assert Z.dtype == np.float32, name
        assert_allclose(Z, expected, rtol=1e-6, atol=1e-6, err_msg=name)


def test_pickle_round_trip(fitted, digits):
    _, _, X_test, _ = digits
    restored = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(restored.transform(X_test), fitted.transform(X_test))


def test_score_is_negative_reconstruction_error(fitted, digits):
    X, _, X_test, y_test = digits
    X_hat = fitted.inverse_transform(fitted.transform(X_test))
    mse = float(np.mean((X_hat - X_test) ** 2))

    assert_allclose(fitted.score(X_test, y_test), -mse, rtol=1e-5)
    assert_allclose(neg_reconstruction_error(fitted, X_test), -mse, rtol=1e-5)
    # The scorer is generic: PCA on the same [0, 1] pixels, computed by hand.
    pca = PCA(n_components=2).fit(X)
    pca_mse = np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
    assert_allclose(neg_reconstruction_error(pca, X_test), -pca_mse, rtol=1e-5)


# fmt: off
BAD_IMAGES = [
    ("100 columns", lambda X: X[:, :100],
     (r"X has 100 feature\(s\) \(shape \(5, 100\)\); expected 28x28 images as "
      r"\(n_samples, 784\), \(n_samples, 28, 28\)")),
    ("27x27", lambda X: X.reshape(-1, 28, 28)[:, :27, :27],
     r"X has shape \(5, 27, 27\); expected 28x28 images"),
    ("one flat image", lambda X: X[0], r"Expected 2D array, got 1D array"),
    ("0..255 floats", lambda X: X * 255,
     (r"X has float32 pixels from 0 to 255; floats must lie on \[0, 1\] \(divide "
      r"0\.\.255 images by 255, or pass them as uint8\)")),
    ("negative", lambda X: X - 0.5, r"pixels from -0\.5 to 0\.5; floats must lie"),
    ("NaN", lambda X: np.where(X == X.max(), np.nan, X),
     r"X holds \d+ NaN or infinite values; every pixel must be a finite number"),
    ("inf", lambda X: np.where(X == X.max(), np.inf, X), r"NaN or infinite values"),
    ("int64", lambda X: to_uint8(X).astype(np.int64),
     (r"X has dtype int64; expected 28x28 images .* of uint8 0\.\.255 or floats "
      r"on \[0, 1\] \(cast 0\.\.255 integers with X\.astype\(np\.uint8\)\)")),
    ("bool", lambda X: X > 0.5, r"X has dtype bool; expected 28x28 images"),
]
# fmt: on


@pytest.mark.parametrize("method", ["fit", "transform", "score"])
@pytest.mark.parametrize(
    "make_bad, match", [c[1:] for c in BAD_IMAGES], ids=[c[0] for c in BAD_IMAGES]
)
def test_bad_images_are_refused(fitted, digits, method, make_bad, match):
    _, _, X_test, _ = digits
    reducer = clone(fitted) if method == "fit" else fitted
    with pytest.raises(ValueError, match=match):
        getattr(reducer, method)(make_bad(X_test[:5].copy()))


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((10, 784), np.float32), r"all the same constant value 0; there is"),
        (np.full((1, 28, 28), 9, np.uint8), r"1 sample\(s\) .* minimum of 2"),
    ],
    ids=["constant", "one image"],
)
def test_images_nothing_can_be_learnt_from_are_refused(X, match):
    with pytest.raises(ValueError, match=match):
        AutoencoderReducer().fit(X)


def test_codes_of_the_wrong_width_are_refused(fitted):
    with pytest.raises(ValueError, match=r"X has 3 columns; expected codes of width"):
        fitted.inverse_transform(np.zeros((4, 3)))


@pytest.mark.parametrize(
    "param, value, match",
    [
        ("kind", "mlp", r"kind must be one of 'fc', 'cnn', 'vae'; got 'mlp'"),
        ("n_components", 0, r"n_components must be an integer from 1 to 783; got 0"),
        ("n_components", 2.0, r"n_components must be an integer .*; got 2\.0"),
        ("max_epochs", 0, r"max_epochs must be an integer >= 1; got 0"),
        ("patience", True, r"patience must be an integer >= 1; got True"),
        ("batch_size", -1, r"batch_size must be an integer >= 1; got -1"),
        ("learning_rate", 0, r"learning_rate must be a positive finite number"),
        ("validation_fraction", 1.0, r"strictly between 0 and 1; got 1\.0"),
        ("random_state", -3, r"random_state must be an integer from 0 to 4294967295"),
        ("accelerator", "tpu", r"accelerator must be one of 'auto', 'cpu', 'gpu'"),
    ],
)
def test_bad_parameters_are_refused_at_fit(digits, param, value, match):
    X, *_ = digits
    reducer = AutoencoderReducer(**{param: value})  # only stored, as in scikit-learn
    with pytest.raises(ValueError, match=match):
        reducer.fit(X[:50])


def test_gpu_where_there_is_none_is_refused(digits):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match=r"sees no CUDA device; use accelerator='cpu"):
        AutoencoderReducer(accelerator="gpu").fit(digits[0][:50])


@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score"])
def test_not_fitted_is_refused(method):
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        getattr(AutoencoderReducer(), method)(np.zeros((2, 784), np.float32))


def test_params_clone_and_set():
    reducer = AutoencoderReducer(kind="cnn", n_components=5, random_state=3)
    params = reducer.get_params()
    assert params["kind"] == "cnn" and params["n_components"] == 5

    assert reducer.set_params(n_components=7, max_epochs=2) is reducer
    twin = clone(reducer)

    assert twin is not reducer
    assert twin.get_params() == {**params, "n_components": 7, "max_epochs": 2}
    assert not hasattr(twin, "model_")


def test_pipeline_knn_beats_chance(digits):
    X, y, X_test, y_test = digits
    pipeline = make_pipeline(
        AutoencoderReducer(n_components=2, **QUICK), KNeighborsClassifier()
    )
    accuracy = pipeline.fit(X, y).score(X_test, y_test)
    # Chance is 0.1; PCA with 2 components reaches about 0.4 on the full data.
    assert accuracy > 0.25
    assert_array_equal(
        pipeline[0].transform(X_test[:9]), pipeline[:-1].transform(X_test[:9])
    )


def test_grid_search_prefers_more_components(mnist_small):
    X = mnist_small.train.X_flat[:2500]
    # One split, no refit: two fits in all.
    split = [(np.arange(2000), np.arange(2000, 2500))]
    search = GridSearchCV(
        AutoencoderReducer(max_epochs=3, batch_size=16, learning_rate=3e-3),
        {"n_components": [1, 16]},
        scoring=neg_reconstruction_error,
        cv=split,
        refit=False,
    )
    search.fit(X)
    assert search.best_params_ == {"n_components": 16}
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] > scores[0] and scores.max() < 0


@parametrize_with_checks(
    [AutoencoderReducer(max_epochs=1)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
    xfail_strict=True,
)
def test_sklearn_checks(estimator, check):
    check(estimator)
