"""Named starting points for ``compare``: settings chosen for a purpose, measured.

A preset is a set of :class:`~latentbench.config.CompareConfig` values. Options
given on the command line override it; the run's ``config.json`` records both the
preset's name and every resolved setting, so a run never depends on this file.
The figures each preset reached, and the command that reproduces them, are in the
README's results table.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from latentbench.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named set of compare settings.

    Attributes
    ----------
    name : str
    purpose : str
        One line: what the preset is for.
    settings : dict
        CompareConfig field -> value.
    """

    name: str
    purpose: str
    settings: dict[str, Any]


_PRESETS = (
    Preset(
        name="map2d",
        purpose=(
            "a 2-D map of the classes to look at: a wide fully connected "
            "autoencoder with batch normalisation and a one-cycle schedule, "
            "against PCA; minutes on a laptop CPU"
        ),
        settings={
            "models": ["pca", "fc"],
            "n_components": 2,
            "encoder": [784, 512, 256, 128, 2],
            "decoder": [2, 128, 256, 512, 784],
            "batch_norm": True,
            "lr_schedule": "onecycle",
            "learning_rate": 2e-3,
            "max_epochs": 20,
            "patience": 20,
        },
    ),
    Preset(
        name="compress30",
        purpose=(
            "30 numbers per image that rebuild it closely: a convolutional "
            "autoencoder (32- and 64-channel stride-2 convolutions, a 256-unit "
            "dense layer) with batch normalisation, cross-entropy loss and a "
            "one-cycle schedule, against PCA at 30 components"
        ),
        settings={
            "models": ["pca", "cnn"],
            "n_components": 30,
            "channels": [32, 64],
            "dense": 256,
            "batch_norm": True,
            "loss": "bce",
            "lr_schedule": "onecycle",
            "learning_rate": 2e-3,
            "max_epochs": 30,
            "patience": 30,
        },
    ),
    Preset(
        name="deep30",
        purpose=(
            "the 2006 deep autoencoder's widths 784-1000-500-250-30, fully "
            "connected, trained with batch normalisation, cross-entropy loss and "
            "a one-cycle schedule instead of layer-wise pretraining"
        ),
        settings={
            "models": ["pca", "fc"],
            "n_components": 30,
            "encoder": [784, 1000, 500, 250, 30],
            "decoder": [30, 250, 500, 1000, 784],
            "batch_norm": True,
            "loss": "bce",
            "lr_schedule": "onecycle",
            "learning_rate": 2e-3,
            "max_epochs": 40,
            "patience": 40,
        },
    ),
    Preset(
        name="reference",
        purpose=(
            "the study latentbench grew from: PCA, the 784-128-64-12-k and the "
            "small convolutional autoencoder, Adam at 1e-3 (the defaults)"
        ),
        settings={},
    ),
)

PRESETS = {preset.name: preset for preset in _PRESETS}


def preset_settings(name: str) -> dict[str, Any]:
    """The settings of preset ``name``; a :class:`ConfigError` for an unknown name."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"--preset {name!r} is not a preset{hint}; expected one of "
            f"{', '.join(PRESETS)}"
        )
    return {**PRESETS[name].settings, "preset": name}
