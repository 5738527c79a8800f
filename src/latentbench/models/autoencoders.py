"""The autoencoders as Lightning modules, their architecture given as data.

Every model keeps ``nn.Sequential`` ``encoder`` and ``decoder`` attributes. With
their default arguments the fully connected and the convolutional model have the
layer order of the study latentbench grew from, so its checkpoints load into them
unchanged; widths, channels, activations, normalisation, dropout, the loss, the
optimiser's weight decay and the learning-rate schedule are arguments.
"""

from __future__ import annotations

import itertools
import math
import os
import pickle
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from latentbench.constants import (
    IMAGE_HEIGHT,
    IMAGE_SHAPE,
    LOSS_NAMES,
    LR_SCHEDULE_NAMES,
    N_CHANNELS,
)
from latentbench.errors import CheckpointError

# Names the reference study used for hyper-parameters it passed by hand.
_LEGACY_HPARAMS = {"lr": "learning_rate"}
# Where a checkpoint written by latentbench records which model it holds.
KIND_KEY = "latentbench_kind"
# Share of the steps spent warming up under the one-cycle schedule.
ONECYCLE_WARMUP = 0.1
REFERENCE_FC_HIDDEN = (128, 64, 12)

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}
OUTPUT_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "identity": nn.Identity}


class Autoencoder(L.LightningModule):
    """An encoder-decoder pair trained to rebuild its input.

    Subclasses build ``self.encoder`` (images to codes) and ``self.decoder`` (codes
    to images). Inputs are float32 tensors of shape (batch, channels, height, width)
    with pixels in [0, 1]; codes have shape (batch, n_components); reconstructions
    have the input's shape, so the loss compares each image with its own
    reconstruction.

    Parameters
    ----------
    n_components : int
        Size of the bottleneck (the embedding dimension).
    learning_rate : float
        Adam's step size (the peak step size under ``lr_schedule="onecycle"``).
    loss : {"mse", "bce"}
        Mean squared error, or binary cross-entropy (pixels read as probabilities;
        needs the sigmoid output).
    weight_decay : float
        Decoupled weight decay (AdamW); 0 trains with plain Adam.
    lr_schedule : {"constant", "cosine", "onecycle"}
        How the step size changes over the ``max_epochs`` the trainer allows, per
        batch: not at all, cosine annealing to 0, or one cycle (a short warm-up to
        ``learning_rate``, then annealing).
    noise : float
        Denoising: the standard deviation of Gaussian noise added to each training
        input (then clipped to [0, 1]); the target stays the clean image. 0 trains
        a plain autoencoder. Validation always uses clean inputs.
    """

    kind = ""  # the model's name in compare, set by each subclass
    encoder: nn.Sequential
    decoder: nn.Sequential

    def __init__(
        self,
        n_components: int = 2,
        learning_rate: float = 1e-3,
        *,
        loss: str = "mse",
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        noise: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        _check_choice("loss", loss, LOSS_NAMES)
        _check_choice("lr_schedule", lr_schedule, LR_SCHEDULE_NAMES)
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.loss_name = loss
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.noise = noise
        self.input_shape: tuple[int, ...] = IMAGE_SHAPE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def reconstruction_error(
        self, x_hat: torch.Tensor, x: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        """The training loss between reconstructions and images of the same shape."""
        if x_hat.shape != x.shape:
            raise RuntimeError(
                f"reconstruction shape {tuple(x_hat.shape)} differs from input "
                f"shape {tuple(x.shape)}; the loss would broadcast across the batch"
            )
        if self.loss_name == "bce":
            return F.binary_cross_entropy(x_hat, x, reduction=reduction)
        return F.mse_loss(x_hat, x, reduction=reduction)

    def loss(self, x: torch.Tensor, x_in: torch.Tensor | None = None) -> torch.Tensor:
        """Mean loss per pixel of rebuilding ``x`` from ``x_in`` (default ``x``)."""
        return self.reconstruction_error(self(x if x_in is None else x_in), x)

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """The denoising input: ``x`` plus Gaussian noise of std ``noise``, clipped."""
        if self.noise == 0:
            return x
        return (x + self.noise * torch.randn_like(x)).clamp_(0.0, 1.0)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = _images(batch)
        loss = self.loss(x, self.corrupt(x))
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

    def configure_optimizers(self) -> Any:
        if self.weight_decay:
            optimizer = torch.optim.AdamW(
                self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
        else:
            optimizer = torch.optim.Adam(self.parameters(), lr=self.learning_rate)
        if self.lr_schedule == "constant":
            return optimizer
        # Every batch the trainer may run, early stopping aside.
        n_steps = max(1, int(self.trainer.estimated_stepping_batches))
        if self.lr_schedule == "cosine":
            scheduler: Any = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=n_steps
            )
        else:
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=self.learning_rate,
                total_steps=n_steps,
                pct_start=ONECYCLE_WARMUP,
            )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A checkpoint names its model, so that loaders need not guess from shapes.
        checkpoint[KIND_KEY] = self.kind

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


def _check_choice(field: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{field} = {value!r}; expected one of {', '.join(choices)}")


def _after_layer(
    width: int, activation: str, batch_norm: bool, dropout: float, dims: int = 1
) -> list[nn.Module]:
    """What follows a hidden layer: [batch norm], activation, [dropout]."""
    layers: list[nn.Module] = []
    if batch_norm:
        layers.append(nn.BatchNorm1d(width) if dims == 1 else nn.BatchNorm2d(width))
    layers.append(ACTIVATIONS[activation]())
    if dropout:
        layers.append(nn.Dropout(dropout))
    return layers


def _mlp(
    widths: Sequence[int], activation: str, batch_norm: bool, dropout: float
) -> list[nn.Module]:
    """Linear layers ``widths[0] -> ... -> widths[-1]``; nothing after the last."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(widths) - 2:
            layers += _after_layer(n_out, activation, batch_norm, dropout)
    return layers


class FCAutoencoder(Autoencoder):
    """Fully connected autoencoder; by default the reference 784-128-64-12-k.

    ``hidden`` gives the encoder's hidden widths, ``decoder_hidden`` the decoder's
    (default: the encoder's, mirrored); the two may differ. With the defaults the
    layers are those of the reference study (ReLU between layers, a sigmoid
    output, about 219 K parameters at k=2), so its checkpoints load unchanged.

    Parameters
    ----------
    n_components, learning_rate
        See :class:`Autoencoder`; so are ``loss``, ``weight_decay``,
        ``lr_schedule`` and ``noise``.
    hidden : sequence of int
        Widths between the input and the code, e.g. ``(512, 256, 128)``.
    decoder_hidden : sequence of int, optional
        Widths between the code and the output.
    activation : str
        One of ``relu``, ``leaky_relu``, ``elu``, ``gelu``, ``silu``, ``tanh``.
    output_activation : {"sigmoid", "identity"}
    batch_norm : bool
        Batch normalisation after every hidden linear layer.
    dropout : float
        Dropout probability after every hidden activation; 0 for none.
    input_shape : tuple of int
        (channels, height, width) of the images; any size works.
    """

    kind = "fc"

    def __init__(
        self,
        n_components: int = 2,
        learning_rate: float = 1e-3,
        hidden: Sequence[int] = REFERENCE_FC_HIDDEN,
        decoder_hidden: Sequence[int] | None = None,
        activation: str = "relu",
        output_activation: str = "sigmoid",
        batch_norm: bool = False,
        dropout: float = 0.0,
        input_shape: Sequence[int] = IMAGE_SHAPE,
        **training: Any,
    ) -> None:
        super().__init__(n_components, learning_rate, **training)
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("output_activation", output_activation, OUTPUT_ACTIVATIONS)
        self.input_shape = tuple(int(n) for n in input_shape)
        n_inputs = math.prod(self.input_shape)
        hidden = [int(n) for n in hidden]
        decoder_hidden = (
            hidden[::-1] if decoder_hidden is None else [int(n) for n in decoder_hidden]
        )
        options = (activation, batch_norm, dropout)
        self.encoder = nn.Sequential(
            nn.Flatten(),  # (B, C, H, W) -> (B, C*H*W)
            *_mlp([n_inputs, *hidden, self.code_width], *options),
        )
        self.decoder = nn.Sequential(
            *_mlp([n_components, *decoder_hidden, n_inputs], *options),
            OUTPUT_ACTIVATIONS[output_activation](),
            nn.Unflatten(1, self.input_shape),  # (B, C*H*W) -> (B, C, H, W)
        )

    @property
    def code_width(self) -> int:
        """Width of the encoder's last layer."""
        return self.n_components


class VariationalAutoencoder(FCAutoencoder):
    """A fully connected variational autoencoder with a Gaussian latent.

    The encoder's last layer gives a mean and a log-variance per code; training
    decodes a sample ``z = mean + std * eps`` and minimises, per pixel,
    ``(reconstruction error summed over pixels + kl_weight * KL(q(z|x) || N(0, I)))
    / n_pixels``, averaged over the batch. With the binary cross-entropy loss and
    ``kl_weight=1`` that is the negative evidence lower bound; 0 leaves a plain
    autoencoder with a noisy code. The embedding is the mean; validation and
    reconstructions decode the mean, so they are deterministic.

    Parameters
    ----------
    kl_weight : float
        Weight of the KL term.
    **kwargs
        As :class:`FCAutoencoder`.
    """

    kind = "vae"

    def __init__(self, *args: Any, kl_weight: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kl_weight = kl_weight

    @property
    def code_width(self) -> int:
        return 2 * self.n_components  # means, then log-variances

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x), each (batch, n_components)."""
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))

    def loss(self, x: torch.Tensor, x_in: torch.Tensor | None = None) -> torch.Tensor:
        mean, log_var = self.posterior(x if x_in is None else x_in)
        z = mean
        if self.training:
            z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        error = self.reconstruction_error(self.decoder(z), x, reduction="sum")
        kl = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
        n_pixels = x[0].numel()
        return (error + self.kl_weight * kl) / (len(x) * n_pixels)


def _conv_out_size(size: int) -> int:
    return (size + 1) // 2  # a 3x3 convolution with stride 2 and padding 1


class ConvAutoencoder(Autoencoder):
    """Convolutional autoencoder on 28x28 images; by default the reference one.

    The reference: two strided convolutions, k codes, three transposed
    convolutions back to 28x28, about 5.9 K parameters at k=2 (its checkpoints
    load unchanged). With ``channels`` given, e.g. ``(64, 128)``, each entry is a
    3x3 convolution of stride 2 (28 -> 14 -> 7 -> ...), then an optional dense
    layer of ``dense`` units, then the code; the decoder mirrors it with
    transposed convolutions.

    Parameters
    ----------
    n_components, learning_rate
        See :class:`Autoencoder`; so are ``loss``, ``weight_decay``,
        ``lr_schedule`` and ``noise``.
    channels : sequence of int, optional
        Output channels of each convolution; None for the reference layout.
    dense : int, optional
        Width of a dense layer between the convolutions and the code (only with
        ``channels``).
    activation, output_activation, batch_norm, dropout
        As in :class:`FCAutoencoder`.
    """

    kind = "cnn"

    def __init__(
        self,
        n_components: int = 2,
        learning_rate: float = 1e-3,
        channels: Sequence[int] | None = None,
        dense: int | None = None,
        activation: str = "relu",
        output_activation: str = "sigmoid",
        batch_norm: bool = False,
        dropout: float = 0.0,
        **training: Any,
    ) -> None:
        super().__init__(n_components, learning_rate, **training)
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("output_activation", output_activation, OUTPUT_ACTIVATIONS)
        if channels is None and dense is not None:
            raise ValueError("dense needs channels: the reference layout has none")
        options = (activation, batch_norm, dropout)
        output = OUTPUT_ACTIVATIONS[output_activation]()
        if channels is None:
            self._build_reference(n_components, options, output)
        else:
            self._build(
                n_components, [int(c) for c in channels], dense, options, output
            )

    def _build_reference(self, n_components, options, output) -> None:
        def after(width):
            return _after_layer(width, *options, dims=2)

        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=3, padding=1),  # -> (B, 16, 10, 10)
            *after(16),
            nn.MaxPool2d(2, stride=2),  # -> (B, 16, 5, 5)
            nn.Conv2d(16, 8, 3, stride=2, padding=1),  # -> (B, 8, 3, 3)
            *after(8),
            nn.MaxPool2d(2, stride=1),  # -> (B, 8, 2, 2)
            nn.Flatten(),  # -> (B, 32)
            nn.Linear(32, n_components),
        )
        self.decoder = nn.Sequential(
            nn.Linear(n_components, 32),
            nn.Unflatten(1, (8, 2, 2)),
            nn.ConvTranspose2d(8, 16, 3, stride=2),  # -> (B, 16, 5, 5)
            *after(16),
            nn.ConvTranspose2d(16, 8, 5, stride=3, padding=1),  # -> (B, 8, 15, 15)
            *after(8),
            nn.ConvTranspose2d(8, 1, 2, stride=2, padding=1),  # -> (B, 1, 28, 28)
            output,
        )

    def _build(self, n_components, channels, dense, options, output) -> None:
        sizes = [IMAGE_HEIGHT]  # 28, 14, 7, 4, ... after each convolution
        encoder: list[nn.Module] = []
        for n_in, n_out in zip([N_CHANNELS, *channels[:-1]], channels):
            encoder += [nn.Conv2d(n_in, n_out, 3, stride=2, padding=1)]
            encoder += _after_layer(n_out, *options, dims=2)
            sizes.append(_conv_out_size(sizes[-1]))
        flat = channels[-1] * sizes[-1] ** 2
        widths = [flat, dense, n_components] if dense else [flat, n_components]
        encoder += [nn.Flatten(), *_mlp(widths, *options)]
        self.encoder = nn.Sequential(*encoder)

        # The mirror image: dense layers back to the last feature map, then
        # transposed convolutions, each undoing one convolution's halving.
        decoder = _mlp(widths[::-1], *options) + _after_layer(flat, *options)
        decoder.append(nn.Unflatten(1, (channels[-1], sizes[-1], sizes[-1])))
        outs = [N_CHANNELS, *channels[:-1]]
        for i in range(len(channels) - 1, -1, -1):
            # (in - 1) * 2 - 2 + 3 + pad = target, so pad = target - (2 * in - 1)
            pad = sizes[i] - (2 * sizes[i + 1] - 1)
            decoder.append(
                nn.ConvTranspose2d(
                    channels[i], outs[i], 3, stride=2, padding=1, output_padding=pad
                )
            )
            if i > 0:
                decoder += _after_layer(outs[i], *options, dims=2)
        self.decoder = nn.Sequential(*decoder, output)
