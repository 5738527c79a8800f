"""Training one model from a config file kept in ``models/<experiment>/config.json``.

The model is written beside its config, as the reference study did: ``model.ckpt``
for an autoencoder (with ``checkpoints/`` and ``log/``), ``model.npz`` for PCA.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from latentbench.config import ReferenceTrainConfig
from latentbench.data import load_dataset
from latentbench.metrics import recon_mse
from latentbench.models import make_pca, save_pca
from latentbench.training import (
    TrainSettings,
    fit_autoencoder,
    init_autoencoder,
    reconstruct,
)

logger = logging.getLogger(__name__)


def train_from_config(
    config: ReferenceTrainConfig,
    experiment_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> str:
    """Train the model ``config`` names on MNIST and save it in ``experiment_dir``.

    Returns
    -------
    str
        One line that says what was written and the validation MSE.
    """
    experiment_dir = Path(experiment_dir)
    if config.num_workers:
        logger.info(
            "num_workers=%d ignored: the data is held in memory", config.num_workers
        )
    data = load_dataset(
        "mnist", data_dir or config.data_dir, seed=config.seed, progressbar=progress
    )

    if config.model == "pca":
        pca = make_pca(config.n_components).fit(data.train.X_flat)
        X_hat = pca.inverse_transform(pca.transform(data.val.X_flat))
        target = experiment_dir / "model.npz"
        save_pca(target, pca)
        return f"wrote {target}; validation MSE {recon_mse(data.val.X_flat, X_hat):.5f}"

    model = init_autoencoder(
        config.model,
        config.n_components,
        config.learning_rate,
        config.seed,
        options=config,
        input_shape=tuple(data.train.X.shape[1:]),
    )
    settings = TrainSettings(
        max_epochs=config.max_epochs,
        patience=config.patience,
        batch_size=config.batch_size,
        seed=config.seed,
        accelerator="gpu" if config.use_gpu else "cpu",
        progress=progress,
    )
    result = fit_autoencoder(model, data, settings, experiment_dir)
    target = experiment_dir / "model.ckpt"
    tmp = experiment_dir / ".model.ckpt.tmp"
    shutil.copyfile(result.best_checkpoint, tmp)
    os.replace(tmp, target)
    best = type(model).load_from_checkpoint(target)
    X_hat = reconstruct(best, data.val.X).reshape(len(data.val), -1).numpy()
    return (
        f"wrote {target} after {result.epochs} epoch(s); "
        f"validation MSE {recon_mse(data.val.X_flat, X_hat):.5f}"
    )
