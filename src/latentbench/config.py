"""Settings of a comparison and of a single training run, validated once, here.

One concept keeps one name from config field to command-line flag to results
column: ``n_components`` is ``--n-components`` is the ``n_components`` column.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from latentbench.constants import MIN_TEST_IMAGES, MODEL_NAMES, N_PIXELS
from latentbench.errors import ConfigError

DatasetName = Literal["mnist", "mnist-5k"]
Accelerator = Literal["auto", "cpu", "gpu"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CompareConfig(_Strict):
    """Every setting of ``latentbench compare``.

    Attributes
    ----------
    dataset : str
        ``"mnist"`` or ``"mnist-5k"``.
    data_dir : path or None
        Folder that holds the data set; see :func:`latentbench.data.load_mnist`.
    n_components : int
        Embedding dimension, 1..783.
    models : list of str
        Any of ``pca``, ``fc``, ``cnn``, in the order to run them.
    max_epochs, patience, batch_size, learning_rate, seed, accelerator
        Training settings shared by the autoencoders.
    devices, num_nodes, strategy
        Lightning's distributed settings: ``devices=2, strategy="ddp"`` trains each
        autoencoder in two processes; only rank 0 writes the run folder.
    n_train, n_val, n_test : int or None
        Keep only the first so many images of each split (quick runs and tests).
    """

    dataset: DatasetName = "mnist"
    data_dir: Path | None = None
    n_components: int = Field(2, ge=1, le=N_PIXELS - 1)
    models: list[str] = Field(default_factory=lambda: list(MODEL_NAMES), min_length=1)
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


class ReferenceTrainConfig(_Strict):
    """A training config in the reference study's format (``models/<exp>/config.json``).

    Attributes
    ----------
    model : str
        ``fc``, ``cnn`` or ``pca``.
    n_components : int
    learning_rate, batch_size, max_epochs : optional training settings
    use_gpu : bool
        Train on a GPU (an error where none exists).
    num_workers : int
        Accepted for compatibility; the data is in memory and needs no workers.
    data_dir : path or None
    """

    # Numbers and switches are taken as JSON wrote them: "2" or true is not an int.
    model: Literal["pca", "fc", "cnn"]
    n_components: int = Field(ge=1, le=N_PIXELS - 1, strict=True)
    learning_rate: float = Field(1e-3, gt=0, allow_inf_nan=False, strict=True)
    batch_size: int = Field(256, gt=0, strict=True)
    max_epochs: int = Field(40, ge=1, strict=True)
    use_gpu: bool = Field(False, strict=True)
    num_workers: int = Field(0, ge=0, strict=True)
    data_dir: Path | None = None
    patience: int = Field(5, ge=1, strict=True)
    seed: int = Field(0, strict=True)


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
            message = "must not be empty"
        value = error.get("input")
        if source == "option":
            # Shown as typed on the command line: a comma list, not a Python list.
            shown = (
                ",".join(map(str, value)) if isinstance(value, list) else repr(value)
            )
            lines.append(
                f"--{field.replace('_', '-')} = {shown or '(empty)'}: {message}"
            )
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
