"""The reference autoencoders as Lightning modules.

Both models keep the layer order of the study latentbench grew from, as
``nn.Sequential`` ``encoder`` and ``decoder`` attributes, so that the study's
checkpoints load into them unchanged.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from latentbench.constants import IMAGE_SHAPE, N_PIXELS
from latentbench.errors import CheckpointError

# Names the reference study used for hyper-parameters it passed by hand.
_LEGACY_HPARAMS = {"lr": "learning_rate"}


class Autoencoder(L.LightningModule):
    """An encoder-decoder pair trained to rebuild its input under mean squared error.

    Subclasses build ``self.encoder`` (images to codes) and ``self.decoder`` (codes
    to images). Inputs are float32 tensors of shape (batch, 1, 28, 28) with pixels in
    [0, 1]; codes have shape (batch, n_components); reconstructions have the input's
    shape, so the loss compares each image with its own reconstruction.

    Parameters
    ----------
    n_components : int
        Size of the bottleneck (the embedding dimension).
    learning_rate : float
        Adam's step size.
    """

    encoder: nn.Sequential
    decoder: nn.Sequential

    def __init__(self, n_components: int = 2, learning_rate: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.n_components = n_components
        self.learning_rate = learning_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared error between ``x`` and its reconstruction, same shapes."""
        x_hat = self(x)
        if x_hat.shape != x.shape:
            raise RuntimeError(
                f"reconstruction shape {tuple(x_hat.shape)} differs from input "
                f"shape {tuple(x.shape)}; the loss would broadcast across the batch"
            )
        return F.mse_loss(x_hat, x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self.loss(_images(batch))
        # sync_dist averages over processes under DDP (a no-op in one process), so
        # every process logs, monitors and early-stops on the same number.
        self.log(
            "train_loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            sync_dist=True,
        )
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self.loss(_images(batch))
        self.log(
            "val_loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            sync_dist=True,
        )
        return loss

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.encode(_images(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)

    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | os.PathLike,
        map_location: Any = "cpu",
        strict: bool = True,
        **hparams: Any,
    ) -> Autoencoder:
        """Restore a model from a Lightning checkpoint without running any pickle code.

        The file is read with ``torch.load(weights_only=True)``, which refuses any
        object but tensors and plain containers. Hyper-parameters come from the
        checkpoint, overridden by ``hparams``; a checkpoint that stored none (as the
        reference study's did) needs none passed, since ``n_components`` is read off
        the weights. The reference's name ``lr`` is accepted for ``learning_rate``.
        """
        checkpoint = load_checkpoint_dict(checkpoint_path, map_location)
        state_dict = checkpoint.get("state_dict")
        if not isinstance(state_dict, dict):
            raise CheckpointError(
                f"{checkpoint_path} holds no 'state_dict'; it is not a Lightning "
                "checkpoint"
            )
        merged = dict(checkpoint.get("hyper_parameters") or {})
        merged.update(hparams)
        merged = {_LEGACY_HPARAMS.get(k, k): v for k, v in merged.items()}
        merged.setdefault("n_components", cls.n_components_in(state_dict))
        model = cls(**merged)
        try:
            model.load_state_dict(state_dict, strict=strict)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{checkpoint_path} does not fit {cls.__name__}"
                f"(n_components={merged['n_components']}): {exc}"
            ) from None
        return model

    @classmethod
    def n_components_in(cls, state_dict: dict[str, torch.Tensor]) -> int:
        """The bottleneck size stored in a state dict (the decoder's input width)."""
        return int(state_dict["decoder.0.weight"].shape[1])


def load_checkpoint_dict(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read a checkpoint with ``weights_only=True``; refuse anything that is not data."""
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(
            f"refused to load {path}: it is not a plain-data checkpoint "
            f"(torch.load with weights_only=True said: {first_line})"
        ) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a dict")
    return checkpoint


def _images(batch: Any) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


class FCAutoencoder(Autoencoder):
    """Fully connected autoencoder 784-128-64-12-k with a mirrored decoder.

    ReLU between layers, a sigmoid output in [0, 1]. About 219 K parameters at k=2.
    """

    def __init__(self, n_components: int = 2, learning_rate: float = 1e-3) -> None:
        super().__init__(n_components, learning_rate)
        self.encoder = nn.Sequential(
            nn.Flatten(),  # (B, 1, 28, 28) -> (B, 784)
            nn.Linear(N_PIXELS, 128),
            nn.ReLU(),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Linear(64, 12),
            nn.ReLU(),
            nn.Linear(12, n_components),
        )
        self.decoder = nn.Sequential(
            nn.Linear(n_components, 12),
            nn.ReLU(),
            nn.Linear(12, 64),
            nn.ReLU(),
            nn.Linear(64, 128),
            nn.ReLU(),
            nn.Linear(128, N_PIXELS),
            nn.Sigmoid(),
            nn.Unflatten(1, IMAGE_SHAPE),  # (B, 784) -> (B, 1, 28, 28)
        )


class ConvAutoencoder(Autoencoder):
    """Small convolutional autoencoder: two strided convolutions, k codes, three
    transposed convolutions back to 28x28. About 5.9 K parameters at k=2.
    """

    def __init__(self, n_components: int = 2, learning_rate: float = 1e-3) -> None:
        super().__init__(n_components, learning_rate)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=3, padding=1),  # -> (B, 16, 10, 10)
            nn.ReLU(),
            nn.MaxPool2d(2, stride=2),  # -> (B, 16, 5, 5)
            nn.Conv2d(16, 8, 3, stride=2, padding=1),  # -> (B, 8, 3, 3)
            nn.ReLU(),
            nn.MaxPool2d(2, stride=1),  # -> (B, 8, 2, 2)
            nn.Flatten(),  # -> (B, 32)
            nn.Linear(32, n_components),
        )
        self.decoder = nn.Sequential(
            nn.Linear(n_components, 32),
            nn.Unflatten(1, (8, 2, 2)),
            nn.ConvTranspose2d(8, 16, 3, stride=2),  # -> (B, 16, 5, 5)
            nn.ReLU(),
            nn.ConvTranspose2d(16, 8, 5, stride=3, padding=1),  # -> (B, 8, 15, 15)
            nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 2, stride=2, padding=1),  # -> (B, 1, 28, 28)
            nn.Sigmoid(),
        )
