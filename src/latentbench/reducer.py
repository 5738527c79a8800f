"""The autoencoders as scikit-learn transformers of images.

:class:`AutoencoderReducer` wraps latentbench's training behind ``fit``,
``transform`` and ``inverse_transform``, so that an autoencoder drops into a
``Pipeline`` or a ``GridSearchCV`` where a ``PCA`` would. It takes the pixels the
rest of latentbench takes, turned into the one data path every model consumes:
float32 tensors of shape (n_samples, 1, 28, 28) on the [0, 1] scale.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
import os
import random
import tempfile
import time
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from latentbench.constants import IMAGE_HEIGHT, IMAGE_SHAPE, IMAGE_WIDTH, N_PIXELS
from latentbench.errors import DataError

logger = logging.getLogger(__name__)

KINDS = ("fc", "cnn", "vae")
# training.ACCELERATORS, named here so that importing this module skips Lightning.
ACCELERATORS = ("auto", "cpu", "gpu")

# Shapes an image set may arrive in, after the sample axis.
_IMAGE_LAYOUTS = ((N_PIXELS,), IMAGE_SHAPE[1:], IMAGE_SHAPE)
_EXPECTED_INPUT = (
    f"expected {IMAGE_HEIGHT}x{IMAGE_WIDTH} images as (n_samples, {N_PIXELS}), "
    f"(n_samples, {IMAGE_HEIGHT}, {IMAGE_WIDTH}) or "
    f"(n_samples, 1, {IMAGE_HEIGHT}, {IMAGE_WIDTH}), of uint8 0..255 or floats on "
    "[0, 1]"
)
_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
_ENV_SET_BY_TRAINING = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS", "CUBLAS_WORKSPACE_CONFIG")


class AutoencoderReducer(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Reduce 28x28 images to ``n_components`` numbers with a trained autoencoder.

    A scikit-learn transformer: ``fit`` trains latentbench's fully connected
    (``kind="fc"``), convolutional (``kind="cnn"``) or variational (``kind="vae"``,
    its codes the posterior means) autoencoder with Adam on the mean squared
    reconstruction error, early-stopping on a seeded validation split
    held out of ``X``, and keeps the weights of the epoch with the lowest validation
    loss. ``transform`` encodes, ``inverse_transform`` decodes, and ``score`` is the
    negative reconstruction error, so ``GridSearchCV`` can tune it unsupervised.

    Parameters
    ----------
    kind : {"fc", "cnn", "vae"}, default="fc"
        The architecture (see the README's "The models").
    n_components : int, default=2
        Size of the bottleneck, 1..783.
    max_epochs : int, default=40
        Cap on the number of training epochs.
    patience : int, default=5
        Epochs without a lower validation loss before training stops.
    batch_size : int, default=256
    learning_rate : float, default=1e-3
        Adam's step size.
    validation_fraction : float, default=0.1
        Share of the images held out of training to decide when to stop, in (0, 1).
    random_state : int, RandomState instance or None, default=0
        Seeds the validation split, the initial weights and the batch order. On the
        CPU an int gives the same model on every call.
    accelerator : {"cpu", "gpu", "auto"}, default="cpu"
        Where to train. The fitted model is kept, and applied, on the CPU.
    verbose : bool, default=False
        Let Lightning report its hardware and show a progress bar (on a terminal).

    Attributes
    ----------
    model_ : Autoencoder
        The trained Lightning module, in evaluation mode on the CPU.
    n_features_in_ : int
        Pixels per image, 784, whichever input layout ``fit`` received.
    n_components_ : int
        Width of the codes ``transform`` returns.
    n_epochs_ : int
        Epochs actually trained.
    best_val_loss_ : float
        Validation MSE per pixel of the kept weights.
    fit_seconds_ : float

    Notes
    -----
    Input is checked, not guessed: uint8 is read as 0..255 and divided by 255,
    floats must already lie on [0, 1], and any other dtype or shape is refused with
    a message naming what was received. The global random generators of Python,
    NumPy and torch, and torch's determinism settings, are the same after ``fit`` as
    before.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> clf = make_pipeline(AutoencoderReducer(n_components=8), KNeighborsClassifier())
    >>> clf.fit(images, labels).score(test_images, test_labels)  # doctest: +SKIP
    """

    def __init__(
        self,
        kind: str = "fc",
        n_components: int = 2,
        max_epochs: int = 40,
        patience: int = 5,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.1,
        random_state=0,
        accelerator: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.kind = kind
        self.n_components = n_components
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.accelerator = accelerator
        self.verbose = verbose

    def fit(self, X, y=None) -> AutoencoderReducer:
        """Train the autoencoder on images ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, 784), (n_samples, 28, 28) or
            (n_samples, 1, 28, 28)
            uint8 pixels 0..255 or floats on [0, 1]; at least two images, not all
            one constant value.
        y : ignored
            Accepted for ``Pipeline`` compatibility.

        Returns
        -------
        self
        """
        self._check_params()
        images = _to_unit_tensor(X, min_samples=2)
        if float(images.min()) == float(images.max()):
            raise DataError(
                f"X holds {len(images)} images that are all the same constant value "
                f"{float(images.min()):g}; there is nothing to learn"
            )
        seed = _seed_from(self.random_state)

        with _preserved_global_state(), _lightning_quiet(not self.verbose):
            model, result = self._train(images, seed)
        self.model_ = model.cpu().eval()
        self.n_features_in_ = N_PIXELS
        self.n_components_ = self.n_components
        self._n_features_out = self.n_components
        self.n_epochs_ = result.epochs
        self.best_val_loss_ = result.best_val_loss
        self.fit_seconds_ = result.fit_seconds
        return self

    def transform(self, X) -> np.ndarray:
        """Encode images.

        Parameters
        ----------
        X : array-like of images, as for :meth:`fit`

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components), float32
        """
        check_is_fitted(self)
        images = _to_unit_tensor(X)
        with torch.no_grad():
            Z = torch.cat([self.model_.encode(b) for b in images.split(_BATCH)])
        return Z.numpy()

    def inverse_transform(self, X) -> np.ndarray:
        """Decode codes back to images.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as :meth:`transform` returns.

        Returns
        -------
        X_hat : ndarray of shape (n_samples, 784), float32, values in [0, 1]
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=np.float32, input_name="X")
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {Z.shape[1]} columns; expected codes of width "
                f"n_components_={self.n_components_}, as transform returns"
            )
        with torch.no_grad():
            X_hat = torch.cat(
                [self.model_.decode(z) for z in torch.from_numpy(Z).split(_BATCH)]
            )
        return X_hat.reshape(len(Z), N_PIXELS).numpy()

    def score(self, X, y=None) -> float:
        """Negative mean squared reconstruction error per pixel on the [0, 1] scale.

        Higher is better, as ``GridSearchCV`` expects; ``y`` is ignored.
        """
        check_is_fitted(self)
        images = _to_unit_tensor(X)
        with torch.no_grad():
            total = sum(
                float(torch.sum((self.model_(b) - b) ** 2))
                for b in images.split(_BATCH)
            )
        return -total / images.numel()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Codes are float32 whatever the input's dtype.
        tags.transformer_tags.preserves_dtype = ["float32"]
        # Pixels are never negative; scikit-learn's checks read this tag.
        tags.input_tags.positive_only = True
        return tags

    def _train(self, images: torch.Tensor, seed: int):
        # Lightning comes in here, so that importing latentbench stays light.
        from latentbench.models import AUTOENCODERS
        from latentbench.training import (
            TrainSettings,
            fit_autoencoder,
            init_autoencoder,
        )

        data = _hold_out(images, self.validation_fraction, seed)
        settings = TrainSettings(
            max_epochs=self.max_epochs,
            patience=self.patience,
            batch_size=self.batch_size,
            seed=seed,
            accelerator=self.accelerator,
            progress=self.verbose,
        )
        start = time.perf_counter()
        model = init_autoencoder(self.kind, self.n_components, self.learning_rate, seed)
        with tempfile.TemporaryDirectory(prefix="latentbench-reducer-") as out_dir:
            result = fit_autoencoder(model, data, settings, out_dir)
            best = AUTOENCODERS[self.kind].load_from_checkpoint(result.best_checkpoint)
        logger.info(
            "fit AutoencoderReducer(kind=%r, n_components=%d) on %d images: "
            "%d epochs, validation MSE %.5f, %.1f s",
            self.kind,
            self.n_components,
            len(images),
            result.epochs,
            result.best_val_loss,
            time.perf_counter() - start,
        )
        return best, result

    def _check_params(self) -> None:
        """Refuse settings training cannot use, naming the parameter and the value."""
        _check_choice("kind", self.kind, KINDS)
        _check_choice("accelerator", self.accelerator, ACCELERATORS)
        if self.accelerator == "gpu" and not torch.cuda.is_available():
            raise ValueError(
                "accelerator='gpu' was asked for but torch sees no CUDA device; use "
                "accelerator='cpu' or 'auto'"
            )
        _check_int("n_components", self.n_components, 1, N_PIXELS - 1)
        _check_int("max_epochs", self.max_epochs, 1)
        _check_int("patience", self.patience, 1)
        _check_int("batch_size", self.batch_size, 1)
        rate = self.learning_rate
        if not _is_real(rate) or not 0 < rate < float("inf"):
            raise ValueError(
                f"learning_rate must be a positive finite number; got {rate!r}"
            )
        fraction = self.validation_fraction
        if not _is_real(fraction) or not 0 < fraction < 1:
            raise ValueError(
                f"validation_fraction must be a number strictly between 0 and 1; "
                f"got {fraction!r}"
            )


def neg_reconstruction_error(estimator, X, y=None) -> float:
    """Scorer: minus the mean squared error per pixel of ``estimator``'s round trip.

    Works for any fitted transformer with ``inverse_transform`` that takes ``X``
    as it is (an :class:`AutoencoderReducer`, a ``PCA`` fit on [0, 1] pixels, a
    ``Pipeline`` of them), comparing on the [0, 1] scale. Pass it as
    ``GridSearchCV(..., scoring=neg_reconstruction_error)``; higher is better.

    Parameters
    ----------
    estimator : fitted transformer
    X : array-like of images, as :meth:`AutoencoderReducer.fit` takes them
    y : ignored
    """
    pixels = _to_unit_tensor(X).reshape(-1, N_PIXELS).numpy()
    X_hat = np.asarray(estimator.inverse_transform(estimator.transform(X)))
    return -float(np.mean((X_hat.reshape(len(pixels), -1) - pixels) ** 2))


# Images encoded or decoded at a time: bounds the memory of one forward pass.
_BATCH = 4096
# Lightning's seed_everything takes seeds up to 2**32 - 1.
_MAX_SEED = 2**32 - 1


def _to_unit_tensor(X, min_samples: int = 1) -> torch.Tensor:
    """Images in any accepted layout as float32 (n_samples, 1, 28, 28) on [0, 1]."""
    X = check_array(
        X,
        dtype="numeric",
        allow_nd=True,
        ensure_all_finite=False,
        ensure_min_samples=min_samples,
        input_name="X",
    )
    if X.dtype != np.uint8 and X.dtype.kind != "f":
        hint = " (cast 0..255 integers with X.astype(np.uint8))"
        raise DataError(
            f"X has dtype {X.dtype}; {_EXPECTED_INPUT}"
            + (hint if X.dtype.kind in "iu" else "")
        )
    if X.dtype.kind == "f":
        finite = np.isfinite(X)
        if not finite.all():
            raise DataError(
                f"X holds {int(X.size - finite.sum())} NaN or infinite values; every "
                "pixel must be a finite number on [0, 1]"
            )
    if X.shape[1:] not in _IMAGE_LAYOUTS:
        got = f"shape {X.shape}"
        if X.ndim == 2:
            got = f"{X.shape[1]} feature(s) (shape {X.shape})"
        raise DataError(f"X has {got}; {_EXPECTED_INPUT}")

    if X.dtype == np.uint8:
        pixels = X.astype(np.float32)
        pixels /= 255.0
    else:
        low, high = float(X.min()), float(X.max())
        if low < 0.0 or high > 1.0:
            raise DataError(
                f"X has {X.dtype} pixels from {low:g} to {high:g}; floats must lie on "
                "[0, 1] (divide 0..255 images by 255, or pass them as uint8)"
            )
        pixels = X.astype(np.float32)
    return torch.from_numpy(pixels).reshape(len(pixels), *IMAGE_SHAPE)


def _hold_out(images: torch.Tensor, fraction: float, seed: int):
    """A seeded split of ``images`` into training and validation ``ImageData``."""
    from latentbench.data import ImageData, Split

    n = len(images)
    n_val = min(max(1, round(fraction * n)), n - 1)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values
    # The reducer is unsupervised: -1 marks labels it was never given.
    train = Split(images[train_idx], np.full(n - n_val, -1))
    val = Split(images[val_idx], np.full(n_val, -1))
    empty = Split(images[:0], np.full(0, -1))
    return ImageData("array", "array", "in memory", {}, False, train, val, empty)


def _seed_from(random_state) -> int:
    """An int seed for torch: ``random_state`` itself, or a draw from it."""
    if isinstance(random_state, numbers.Integral) and not isinstance(
        random_state, bool
    ):
        _check_int("random_state", random_state, 0, _MAX_SEED)
        return int(random_state)
    return int(check_random_state(random_state).randint(_MAX_SEED))


@contextlib.contextmanager
def _preserved_global_state() -> Iterator[None]:
    # Training seeds Python's, NumPy's and torch's global generators, and Lightning
    # switches torch to deterministic algorithms and sets environment variables; a
    # transformer should leave the caller's process as it found it.
    python_state, numpy_state = random.getstate(), np.random.get_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn_benchmark = torch.backends.cudnn.benchmark
    environ = {name: os.environ.get(name) for name in _ENV_SET_BY_TRAINING}
    try:
        with torch.random.fork_rng():
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.benchmark = cudnn_benchmark
        for name, value in environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _lightning_quiet(quiet: bool) -> Iterator[None]:
    # Lightning reports its hardware at INFO on every fit, and warns about its own
    # use of a deprecated torch API; a grid search fits dozens of times.
    import lightning  # noqa: F401 - sets up the loggers whose level is lowered here

    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [log.level for log in loggers]
    with warnings.catch_warnings():
        if quiet:
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            for log in loggers:
                log.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for log, level in zip(loggers, levels):
                log.setLevel(level)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_int(name: str, value, low: int, high: int | None = None) -> None:
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if is_int and value >= low and (high is None or value <= high):
        return
    rule = f"an integer from {low} to {high}" if high else f"an integer >= {low}"
    raise ValueError(f"{name} must be {rule}; got {value!r}")


def _check_choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}"
        )
