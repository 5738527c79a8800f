"""Training autoencoders with Lightning on data held in memory.

The whole split lives in one tensor and a batch is a slice of it, so an epoch costs
little more than the model's own arithmetic: no per-image conversion, no worker
processes, no collation.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import CSVLogger

from latentbench._io import write_text
from latentbench.config import AutoencoderOptions
from latentbench.constants import IMAGE_SHAPE
from latentbench.data import ImageData
from latentbench.errors import ConfigError, RunInterrupted, TrainingDivergedError
from latentbench.models import AUTOENCODERS, Autoencoder
from latentbench.models.autoencoders import load_checkpoint_dict

logger = logging.getLogger(__name__)

ACCELERATORS = ("auto", "cpu", "gpu")


class EpochShuffler:
    """A seeded permutation of ``range(n_samples)`` that changes with each epoch.

    Lightning calls :meth:`set_epoch` before every epoch, so the order of epoch ``e``
    depends only on ``(seed, e)``: a run resumed from a checkpoint sees the batches an
    uninterrupted run would have seen.
    """

    def __init__(self, n_samples: int, seed: int) -> None:
        self.n_samples = n_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def permutation(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n_samples, generator=generator)


class InMemoryBatches:
    """Batches of a tensor as slices: shuffled each epoch, or in order.

    Parameters
    ----------
    X : Tensor of shape (n_samples, ...)
    batch_size : int
    shuffle : bool
        Draw a fresh seeded permutation each epoch.
    seed : int
    """

    def __init__(
        self, X: torch.Tensor, batch_size: int, shuffle: bool = False, seed: int = 0
    ) -> None:
        self.X = X
        self.batch_size = batch_size
        # Named `sampler` so that Lightning finds it and calls set_epoch on it.
        self.sampler = EpochShuffler(len(X), seed) if shuffle else None
        self.batch_sampler = None

    def __len__(self) -> int:
        return math.ceil(len(self.X) / self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        X = self.X
        if self.sampler is not None:
            # One gather per epoch, then contiguous slices: cheaper than a gather per
            # batch and the same batches.
            X = X[self.sampler.permutation()]
        rank, world_size = process_rank()
        for start in range(0, len(X), self.batch_size):
            batch = X[start : start + self.batch_size]
            if world_size == 1:
                yield batch
            elif len(batch) >= world_size:
                # Under DDP each process takes every world_size-th image of the same
                # global batch; averaging their gradients equals one process's
                # gradient on the whole batch.
                yield batch[rank::world_size]


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process in a distributed run; (0, 1) otherwise."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def is_launched_worker() -> bool:
    """True in a process that a distributed launcher started for a rank other than 0.

    Lightning's DDP launcher (and torchrun, SLURM) start every rank by running the
    same command again, with the rank in the environment; only rank 0 writes results.
    """
    for variable in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        if os.environ.get(variable, "0") not in ("", "0"):
            return True
    return False


STRATEGIES = ("auto", "ddp")


@dataclasses.dataclass
class TrainSettings:
    """How to train one autoencoder.

    Attributes
    ----------
    max_epochs : int
        Cap on the number of epochs.
    patience : int
        Epochs without a lower validation loss before early stopping.
    batch_size : int
    seed : int
    accelerator : str
        ``"auto"`` (a GPU where one exists), ``"cpu"`` or ``"gpu"``.
    progress : bool
        Show a progress bar per epoch.
    devices, num_nodes, strategy
        Passed to Lightning's Trainer: ``--devices 2 --strategy ddp`` trains in two
        processes, each on its own share of every batch.
    """

    max_epochs: int = 30
    patience: int = 3
    batch_size: int = 256
    seed: int = 0
    accelerator: str = "auto"
    progress: bool = True
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"


@dataclasses.dataclass
class TrainResult:
    """What training produced.

    Attributes
    ----------
    best_checkpoint : Path
        Checkpoint with the lowest validation loss.
    last_checkpoint : Path
    epochs : int
        Epochs actually run.
    best_val_loss : float
    fit_seconds : float
    """

    best_checkpoint: Path
    last_checkpoint: Path
    epochs: int
    best_val_loss: float
    fit_seconds: float


class EpochLog(Callback):
    """One DEBUG line per epoch with its losses (``--verbose`` shows them)."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        losses = {k: float(v) for k, v in trainer.callback_metrics.items()}
        logger.debug(
            "%s epoch %d/%d: train_loss %.5f, val_loss %.5f",
            type(pl_module).__name__,
            trainer.current_epoch + 1,
            trainer.max_epochs,
            losses.get("train_loss", float("nan")),
            losses.get("val_loss", float("nan")),
        )


class DivergenceGuard(Callback):
    """Stop at the first batch whose loss is NaN or infinite.

    The checkpoint of the last finished epoch stays on disk; training is not
    continued from weights that already hold NaNs.
    """

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss).all():
            raise TrainingDivergedError(
                f"{type(pl_module).__name__} diverged: the training loss became "
                f"{float(loss)} at epoch {trainer.current_epoch + 1}, batch "
                f"{batch_idx + 1}; try a smaller --learning-rate (now "
                f"{pl_module.learning_rate:g}) or check the data for extreme values. "
                + (
                    "The checkpoint of the last finished epoch is kept."
                    if trainer.current_epoch > 0
                    else "No epoch finished, so no checkpoint was written."
                )
            )


def init_autoencoder(
    name: str,
    n_components: int,
    learning_rate: float,
    seed: int,
    options: AutoencoderOptions | None = None,
    input_shape: tuple[int, ...] = IMAGE_SHAPE,
) -> Autoencoder:
    """A new autoencoder ``name`` whose initial weights depend only on ``seed``.

    ``options`` (architecture and training choices) default to the reference
    model's; ``input_shape`` is (channels, height, width) of the images.
    """
    kwargs = autoencoder_kwargs(name, options or AutoencoderOptions(), input_shape)
    torch.manual_seed(seed)
    return AUTOENCODERS[name](n_components, learning_rate, **kwargs)


def autoencoder_kwargs(
    name: str, options: AutoencoderOptions, input_shape: tuple[int, ...]
) -> dict[str, Any]:
    """The constructor arguments of autoencoder ``name`` that ``options`` set."""
    kwargs: dict[str, Any] = {
        "loss": options.loss,
        "weight_decay": options.weight_decay,
        "lr_schedule": options.lr_schedule,
        "noise": options.noise,
        "activation": options.activation,
        "output_activation": options.output_activation,
        "batch_norm": options.batch_norm,
        "dropout": options.dropout,
    }
    if name == "cnn":
        if tuple(input_shape) != IMAGE_SHAPE:
            raise ConfigError(
                f"the cnn model reads {IMAGE_SHAPE} images, got {tuple(input_shape)}; "
                "resize the images first"
            )
        return {**kwargs, "channels": options.channels, "dense": options.dense}
    n_pixels = math.prod(input_shape)
    if options.encoder and options.encoder[0] != n_pixels:
        raise ConfigError(
            f"--encoder starts at {options.encoder[0]} units but the images have "
            f"{n_pixels} pixels ({'x'.join(map(str, input_shape))}); start it at "
            f"{n_pixels}"
        )
    if options.decoder and options.decoder[-1] != n_pixels:
        raise ConfigError(
            f"--decoder ends in {options.decoder[-1]} units but the images have "
            f"{n_pixels} pixels; end it at {n_pixels}"
        )
    if options.encoder:
        kwargs["hidden"] = options.encoder[1:-1]
    if options.decoder:
        kwargs["decoder_hidden"] = options.decoder[1:-1]
    kwargs["input_shape"] = tuple(input_shape)
    if name == "vae":
        kwargs["kl_weight"] = options.kl_weight
    return kwargs


def resolve_accelerator(accelerator: str) -> str:
    """Turn ``auto`` into ``gpu`` or ``cpu``; refuse ``gpu`` where there is none."""
    if accelerator not in ACCELERATORS:
        raise ConfigError(
            f"--accelerator {accelerator!r} is not one of {', '.join(ACCELERATORS)}"
        )
    has_gpu = torch.cuda.is_available()
    if accelerator == "gpu" and not has_gpu:
        raise ConfigError(
            "--accelerator gpu was asked for but torch sees no CUDA device; "
            "use --accelerator cpu or auto"
        )
    if accelerator == "auto":
        return "gpu" if has_gpu else "cpu"
    return accelerator


def make_trainer(settings: TrainSettings, out_dir: Path, n_batches: int) -> L.Trainer:
    """A Trainer with early stopping, best and last checkpoints and a CSV log."""
    accelerator = resolve_accelerator(settings.accelerator)
    callbacks = [
        EarlyStopping(monitor="val_loss", patience=settings.patience, mode="min"),
        ModelCheckpoint(
            dirpath=out_dir / "checkpoints",
            filename="best",
            monitor="val_loss",
            mode="min",
            save_last=True,
            enable_version_counter=False,
        ),
        EpochLog(),
        DivergenceGuard(),
    ]
    show_progress = settings.progress and sys.stderr.isatty()
    if show_progress:
        callbacks.append(TQDMProgressBar(leave=False))
    if settings.strategy not in STRATEGIES:
        raise ConfigError(
            f"--strategy {settings.strategy!r} is not supported; use auto (one "
            "process) or ddp (one process per device, launched by Lightning, torchrun "
            "or SLURM)"
        )
    return L.Trainer(
        accelerator=accelerator,
        devices=settings.devices,
        num_nodes=settings.num_nodes,
        strategy=settings.strategy,
        max_epochs=settings.max_epochs,
        callbacks=callbacks,
        logger=CSVLogger(out_dir, name="log", version=""),
        deterministic=True,
        enable_progress_bar=show_progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=max(1, min(50, n_batches)),
    )


def fit_autoencoder(
    model: Autoencoder,
    data: ImageData,
    settings: TrainSettings,
    out_dir: str | os.PathLike,
    resume_from: str | os.PathLike | None = None,
) -> TrainResult:
    """Train ``model`` on ``data.train``, early-stopping on ``data.val``.

    Writes ``checkpoints/best.ckpt``, ``checkpoints/last.ckpt`` and ``log/metrics.csv``
    (the losses per epoch) under ``out_dir``.

    Parameters
    ----------
    resume_from : path, optional
        A ``last.ckpt`` of an interrupted fit with the same settings. Training goes on
        from the end of its epoch with its optimiser, early-stopping and checkpoint
        state; the batches of every later epoch are those an uninterrupted fit draws,
        so on the CPU the result is the same.
    """
    out_dir = Path(out_dir)
    L.seed_everything(settings.seed, workers=False, verbose=False)
    train_batches = InMemoryBatches(
        data.train.X, settings.batch_size, shuffle=True, seed=settings.seed
    )
    earlier_log = _keep_log_before_resume(out_dir, resume_from)
    val_batches = InMemoryBatches(data.val.X, max(settings.batch_size, 1024))

    logger.info(
        "training %s: up to %d epochs of %d batches, early stopping after %d "
        "without improvement%s",
        type(model).__name__,
        settings.max_epochs,
        len(train_batches),
        settings.patience,
        f", resuming from {resume_from}" if resume_from is not None else "",
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Lightning suggests worker processes for any loader; ours needs none.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        if resume_from is not None:
            # Resuming writes into the folders of the interrupted fit on purpose.
            warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
        trainer = make_trainer(settings, out_dir, len(train_batches))
        try:
            trainer.fit(
                model,
                train_batches,
                val_batches,
                ckpt_path=resume_from,
                weights_only=True,
            )
        except SystemExit:
            # Lightning answers Ctrl-C by shutting down and calling sys.exit(1), and
            # SIGTERM with a SystemExit of its own; hand either back to the caller,
            # which owns the exit code.
            if trainer.received_sigterm:
                raise RunInterrupted(signal.SIGTERM) from None
            if trainer.interrupted:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise RunInterrupted(signal.SIGINT) from None
            raise
    fit_seconds = time.perf_counter() - start
    if earlier_log is not None:
        _merge_log(out_dir, earlier_log)

    checkpoint = trainer.checkpoint_callback
    best_val = float(checkpoint.best_model_score)
    logger.info(
        "trained %s: %d epoch(s) in %.1f s, best validation MSE %.5f",
        type(model).__name__,
        trainer.current_epoch,
        fit_seconds,
        best_val,
    )
    return TrainResult(
        best_checkpoint=Path(checkpoint.best_model_path),
        last_checkpoint=Path(checkpoint.last_model_path),
        epochs=trainer.current_epoch,
        best_val_loss=best_val,
        fit_seconds=fit_seconds,
    )


def _log_path(out_dir: Path) -> Path:
    return out_dir / "log" / "metrics.csv"


def _keep_log_before_resume(out_dir: Path, resume_from) -> list[dict] | None:
    """Rows of the interrupted fit's loss log up to the resumed epoch.

    Lightning's CSV logger starts its file anew, so the rows of the epochs before the
    checkpoint are kept here and written back after the fit.
    """
    path = _log_path(out_dir)
    if resume_from is None or not path.is_file():
        return None
    last_epoch = int(load_checkpoint_dict(resume_from)["epoch"])
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= last_epoch]
    path.unlink()
    return rows


def _merge_log(out_dir: Path, earlier: list[dict]) -> None:
    path = _log_path(out_dir)
    with path.open(newline="") as f:
        later = list(csv.DictReader(f))
    fields = sorted({key for row in earlier + later for key in row})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)  # \r\n, as Lightning writes
    writer.writeheader()
    writer.writerows(earlier + later)
    write_text(path, buffer.getvalue())


@torch.no_grad()
def encode(model: Autoencoder, X: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Codes of ``X`` (n_samples, 1, 28, 28) as a (n_samples, n_components) tensor."""
    model.eval()
    device = model.device
    return torch.cat([model.encode(b.to(device)).cpu() for b in X.split(batch_size)])


@torch.no_grad()
def reconstruct(
    model: Autoencoder, X: torch.Tensor, batch_size: int = 4096
) -> torch.Tensor:
    """Reconstructions of ``X``, same shape, pixels in [0, 1]."""
    model.eval()
    device = model.device
    return torch.cat([model(b.to(device)).cpu() for b in X.split(batch_size)])
