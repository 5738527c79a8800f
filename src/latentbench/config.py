"""Settings of a comparison and of a single training run, validated once, here.

One concept keeps one name from config field to command-line flag to results
column: ``n_components`` is ``--n-components`` is the ``n_components`` column.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from latentbench.constants import (
    DATASET_NAMES,
    DEFAULT_MODELS,
    MANIFOLD_FIT_SIZE,
    MIN_TEST_IMAGES,
    MODEL_NAMES,
    N_PIXELS,
    TSNE_MAX_COMPONENTS,
)
from latentbench.errors import ConfigError

DatasetName = str  # one of DATASET_NAMES, or a path: see CompareConfig._known_dataset
Accelerator = Literal["auto", "cpu", "gpu"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Activation = Literal["relu", "leaky_relu", "elu", "gelu", "silu", "tanh"]
OutputActivation = Literal["sigmoid", "identity"]
Loss = Literal["mse", "bce"]
LRSchedule = Literal["constant", "cosine", "onecycle"]
Width = Annotated[int, Field(ge=1)]


class AutoencoderOptions(_Strict):
    """How the autoencoders are built and trained, beyond their size.

    Attributes
    ----------
    encoder, decoder : list of int or None
        Layer widths of the fully connected models (``fc``, ``vae``), input to
        code and code to output, e.g. ``[784, 512, 256, 2]`` and ``[2, 64, 784]``:
        the first encoder width is the number of pixels, the last the code size.
        None for the reference 784-128-64-12-k; a missing decoder mirrors the
        encoder.
    channels : list of int or None
        Output channels of the convolutional model's stride-2 convolutions, e.g.
        ``[64, 128]``; None for the reference layout.
    dense : int or None
        A dense layer of this width between the convolutions and the code.
    activation, output_activation, batch_norm, dropout
        Hidden activation; ``sigmoid`` or ``identity`` output; batch normalisation
        after hidden layers; dropout probability.
    loss : str
        ``mse`` or ``bce`` (binary cross-entropy, needs the sigmoid output).
    weight_decay : float
        AdamW's decoupled weight decay; 0 for Adam.
    lr_schedule : str
        ``constant``, ``cosine`` or ``onecycle``, stepped every batch.
    kl_weight : float
        Weight of the variational autoencoder's KL term.
    noise : float
        Denoising: std of the Gaussian noise added to training inputs.
    """

    encoder: list[Width] | None = Field(None, min_length=2)
    decoder: list[Width] | None = Field(None, min_length=2)
    channels: list[Width] | None = Field(None, min_length=1)
    dense: Width | None = None
    activation: Activation = "relu"
    output_activation: OutputActivation = "sigmoid"
    batch_norm: bool = False
    dropout: float = Field(0.0, ge=0, lt=1)
    loss: Loss = "mse"
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)
    lr_schedule: LRSchedule = "constant"
    kl_weight: float = Field(1.0, ge=0, allow_inf_nan=False)
    noise: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _code_size_from_encoder(cls, values: Any) -> Any:
        # `--encoder 784,256,10` alone means ten components.
        if (
            isinstance(values, dict)
            and isinstance(values.get("encoder"), list)
            and len(values["encoder"]) >= 2
            and values.get("n_components") is None
            and "n_components" in cls.model_fields
        ):
            values = {**values, "n_components": values["encoder"][-1]}
        return values

    def _models_built(self) -> list[str] | None:
        """The models this config trains (``models``, or a train config's
        ``model``); None where it names none."""
        if hasattr(self, "models"):
            return list(self.models)
        if hasattr(self, "model"):
            return [self.model]
        return None

    @model_validator(mode="after")
    def _consistent_architecture(self) -> AutoencoderOptions:
        models = self._models_built()
        if models is not None:
            shown = ",".join(models)
            if (self.channels is not None or self.dense is not None) and (
                "cnn" not in models
            ):
                raise ValueError(
                    f"channels and dense shape the cnn model, which {shown} does "
                    "not include; add cnn or drop them"
                )
            if (self.encoder or self.decoder) and not {"fc", "vae"} & set(models):
                raise ValueError(
                    "encoder and decoder widths shape the fc and vae models, which "
                    f"{shown} does not include; add one or drop the widths"
                )
        k = getattr(self, "n_components", None)
        if self.encoder and k is not None and self.encoder[-1] != k:
            raise ValueError(
                f"encoder ends in {self.encoder[-1]} units but n_components is {k}; "
                "the encoder's last width is the code size"
            )
        if self.decoder:
            code = self.encoder[-1] if self.encoder else k
            if code is not None and self.decoder[0] != code:
                raise ValueError(
                    f"decoder starts at {self.decoder[0]} units but the code has "
                    f"{code}; the decoder's first width is the code size"
                )
            if self.encoder and self.decoder[-1] != self.encoder[0]:
                raise ValueError(
                    f"decoder ends in {self.decoder[-1]} units but the encoder reads "
                    f"{self.encoder[0]} pixels; both ends are the image size"
                )
        if self.dense is not None and self.channels is None:
            raise ValueError(
                "dense needs channels: the reference cnn has no dense layer"
            )
        if self.loss == "bce" and self.output_activation != "sigmoid":
            raise ValueError(
                "loss bce needs output_activation sigmoid: cross-entropy reads the "
                "output as probabilities in [0, 1]"
            )
        return self

    def with_code_size(self, n_components: int) -> dict[str, Any]:
        """The fields that set the code size to ``n_components``, for ``model_copy``.

        A sweep varies the code size; the encoder's last and the decoder's first
        width follow it.
        """
        values: dict[str, Any] = {"n_components": n_components}
        if self.encoder:
            values["encoder"] = [*self.encoder[:-1], n_components]
        if self.decoder:
            values["decoder"] = [n_components, *self.decoder[1:]]
        return values


class CompareConfig(AutoencoderOptions):
    """Every setting of ``latentbench compare``.

    Attributes
    ----------
    dataset : str
        One of ``mnist``, ``mnist-5k``, ``fashion-mnist``, ``kmnist``,
        ``emnist-letters``, or the path of a ``.npz`` file or of a folder with one
        subfolder of images per class (see :mod:`latentbench.data.user`).
    data_dir : path or None
        Folder that holds the data set; see :func:`latentbench.data.load_mnist`.
    n_components : int
        Embedding dimension, 1..783.
    models : list of str
        Any of ``pca``, ``fc``, ``cnn``, ``vae``, ``umap``, ``tsne``, in the order
        to run them. ``umap`` and ``tsne`` need the ``manifold`` extra and take at
        most 3 components for ``tsne``.
    max_epochs, patience, batch_size, learning_rate, seed, accelerator
        Training settings shared by the autoencoders.
    devices, num_nodes, strategy
        Lightning's distributed settings: ``devices=2, strategy="ddp"`` trains each
        autoencoder in two processes; only rank 0 writes the run folder.
    n_train, n_val, n_test : int or None
        Keep only the first so many images of each split (quick runs and tests).
    manifold_fit_size : int
        ``umap`` and ``tsne`` are fit on a seeded subsample of this many training
        images (all of them when there are fewer), then transform the test images.
    """

    dataset: DatasetName = "mnist"
    data_dir: Path | None = None
    n_components: int = Field(2, ge=1, le=N_PIXELS - 1)
    models: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MODELS), min_length=1
    )
    max_epochs: int = Field(40, ge=1)
    patience: int = Field(5, ge=1)
    batch_size: int = Field(256, gt=0)
    learning_rate: float = Field(1e-3, gt=0, allow_inf_nan=False)
    seed: int = 0
    accelerator: Accelerator = "auto"
    devices: int = Field(1, ge=1)
    num_nodes: int = Field(1, ge=1)
    strategy: Literal["auto", "ddp"] = "auto"
    n_train: int | None = Field(None, gt=0)
    n_val: int | None = Field(None, gt=0)
    n_test: int | None = Field(None, ge=MIN_TEST_IMAGES)
    # t-SNE's perplexity of 30 needs more than 90 points.
    manifold_fit_size: int = Field(MANIFOLD_FIT_SIZE, ge=100)
    preset: str | None = None

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, dataset: str) -> str:
        if dataset in DATASET_NAMES:
            return dataset
        expected = (
            f"expected one of {', '.join(DATASET_NAMES)}, or the path of a .npz "
            "file or of a folder with one subfolder of images per class"
        )
        if not is_dataset_path(dataset):
            raise ValueError(
                f"unknown dataset {dataset!r}{_did_you_mean(dataset, DATASET_NAMES)}; "
                f"{expected}"
            )
        path = Path(dataset)
        if path.is_dir() or (path.is_file() and path.suffix == ".npz"):
            return dataset
        found = "is not a .npz file" if path.is_file() else "does not exist"
        raise ValueError(f"dataset path {dataset!r} {found}; {expected}")

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: list[str]) -> list[str]:
        for name in models:
            if name not in MODEL_NAMES:
                raise ValueError(
                    f"unknown model {name!r}{_did_you_mean(name, MODEL_NAMES)}; "
                    f"expected any of {', '.join(MODEL_NAMES)}"
                )
        if len(set(models)) != len(models):
            raise ValueError(f"models {models} name a model twice")
        return models

    @model_validator(mode="after")
    def _tsne_components(self) -> CompareConfig:
        if "tsne" in self.models and self.n_components > TSNE_MAX_COMPONENTS:
            raise ValueError(
                f"tsne embeds into at most {TSNE_MAX_COMPONENTS} dimensions, not "
                f"n_components {self.n_components}; use fewer components or drop "
                "tsne from models"
            )
        return self


class ReferenceTrainConfig(AutoencoderOptions):
    """A training config in the reference study's format (``models/<exp>/config.json``).

    Attributes
    ----------
    model : str
        ``fc``, ``cnn``, ``vae`` or ``pca``.
    n_components : int
    learning_rate, batch_size, max_epochs : optional training settings
    use_gpu : bool
        Train on a GPU (an error where none exists).
    num_workers : int
        Accepted for compatibility; the data is in memory and needs no workers.
    data_dir : path or None
    encoder, decoder, channels, ... : see :class:`AutoencoderOptions`
    """

    # Numbers and switches are taken as JSON wrote them: "2" or true is not an int.
    model: Literal["pca", "fc", "cnn", "vae"]
    n_components: int = Field(ge=1, le=N_PIXELS - 1, strict=True)
    learning_rate: float = Field(1e-3, gt=0, allow_inf_nan=False, strict=True)
    batch_size: int = Field(256, gt=0, strict=True)
    max_epochs: int = Field(40, ge=1, strict=True)
    use_gpu: bool = Field(False, strict=True)
    num_workers: int = Field(0, ge=0, strict=True)
    data_dir: Path | None = None
    patience: int = Field(5, ge=1, strict=True)
    seed: int = Field(0, strict=True)


def is_dataset_path(name: str) -> bool:
    """Whether ``--dataset`` names a file or folder rather than a named data set."""
    return name.endswith(".npz") or os.sep in name or "/" in name or Path(name).exists()


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validation_message(
    exc: ValidationError, model: type[BaseModel], source: str
) -> str:
    """One line per problem: the field, the rule, the value received."""
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(root)"
        if error["type"] == "extra_forbidden":
            hint = _did_you_mean(field, model.model_fields)
            lines.append(f"{source}: unknown key {field!r}{hint}")
            continue
        if error["type"] == "missing":
            lines.append(f"{source}: required key {field!r} is missing")
            continue
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "too_short":
            least = error.get("ctx", {}).get("min_length", 1)
            message = (
                "must not be empty" if least == 1 else f"needs at least {least} values"
            )
        value = error.get("input")
        if not error["loc"]:
            # A rule across fields (a model validator): its message names them.
            lines.append(message if source == "option" else f"{source}: {message}")
            continue
        if source == "option":
            # Shown as typed on the command line: a comma list, not a Python list,
            # and one bad item of a list by its place in it.
            name, *place = error["loc"]
            option = f"--{str(name).replace('_', '-')}"
            if place and isinstance(place[0], int):
                option += f" item {place[0] + 1}"
            shown = (
                ",".join(map(str, value)) if isinstance(value, list) else repr(value)
            )
            lines.append(f"{option} = {shown or '(empty)'}: {message}")
        else:
            lines.append(f"{source}: {field} = {value!r}: {message}")
    return "\n".join(lines)


def build(model: type[_Strict], values: dict[str, Any], source: str) -> Any:
    """Validate ``values`` into ``model``, raising :class:`ConfigError` on bad input."""
    try:
        return model(**values)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, model, source)) from None


def read_json_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON object from ``path``; nothing in it is ever evaluated."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}"
        ) from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"{path} holds a JSON {type(values).__name__}; expected an object"
        )
    return values
