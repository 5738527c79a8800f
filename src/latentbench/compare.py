"""One comparison: fit every reducer on the same data, embed the test set, measure.

A run folder holds::

    config.json        every resolved setting
    environment.json   versions, machine, data source and payload hashes
    status.json        "running" until every result is written, then "complete"
    .lock              the id of the process writing the folder, while it runs
    results/<model>.json     one model's metrics, written as soon as it is done
    timings.json       seconds per stage: loading, each fit, embedding, each metric
    metrics.json       the comparison, one entry a model
    metrics.csv        the same, one row a model
    embeddings/<model>.npz   test embedding ``Z``, labels ``y``, 5-NN predictions
                             ``y_pred``
    reconstructions.npz, latent_maps/<model>.npz   what the figures show
                             (see :mod:`latentbench.artifacts`)
    models/pca.npz           PCA's arrays (no pickle)
    models/{umap,tsne}.npz   the training images a manifold baseline was fit on,
                             ``fit_index``, and their embedding ``Z_fit``
    models/<ae>/checkpoints/{best,last}.ckpt, models/<ae>/log/metrics.csv
    figures/*.png, report.html   drawn from the files above (``latentbench report``)
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentbench import __version__
from latentbench._io import read_npz, write_json, write_npz, write_text
from latentbench.artifacts import save_figure_data
from latentbench.config import CompareConfig, build, read_json_config
from latentbench.constants import (
    AUTOENCODER_NAMES,
    CONV_MODEL_NAMES,
    IMAGE_SHAPE,
    MANIFOLD_MODEL_NAMES,
    QUALITY_COLUMNS,
)
from latentbench.data import ImageData, load_dataset, resized_for_conv, subsample
from latentbench.data.user import dataset_label
from latentbench.errors import ConfigError, LatentbenchError, RunFolderError
from latentbench.metrics import (
    LABEL_METRICS,
    NO_LABELS_REASON,
    embedding_metrics,
    gmm_clusters,
    knn_predictions,
)
from latentbench.models import make_pca, save_pca
from latentbench.models.autoencoders import load_checkpoint_dict
from latentbench.models.manifold import (
    embed_manifold,
    import_manifold,
    manifold_versions,
)
from latentbench.models.pca import pca_n_params
from latentbench.report import build_report
from latentbench.training import (
    TrainSettings,
    autoencoder_kwargs,
    encode,
    fit_autoencoder,
    init_autoencoder,
    is_launched_worker,
    reconstruct,
    resolve_accelerator,
)

logger = logging.getLogger(__name__)

METRIC_COLUMNS = (*QUALITY_COLUMNS, "params", "fit_seconds", "epochs")


@dataclasses.dataclass
class Embedding:
    """What a fitted reducer produced on the data.

    Attributes
    ----------
    Z_train : ndarray of shape (n_train, n_components)
        The training codes the 5-NN classifier is fit on.
    Z_test : ndarray of shape (n_test, n_components)
    X_hat_test : ndarray of shape (n_test, 784) or None
        Reconstructions in [0, 1]; None for a model without a decoder.
    params : int or None
        Learned numbers; None for UMAP and t-SNE, which learn no map of their own
        (their transform reads the whole fit subsample and its embedding).
    fit_seconds : float
    epochs : int or None
    train_index : ndarray of shape (n_train,) or None
        The training images ``Z_train`` holds, as indices into the training split;
        None when it holds all of them in order.
    """

    Z_train: np.ndarray
    Z_test: np.ndarray
    X_hat_test: np.ndarray | None
    params: int | None
    fit_seconds: float
    epochs: int | None
    train_index: np.ndarray | None = None


def default_run_dir(config: CompareConfig, root: str | os.PathLike = "runs") -> Path:
    """``runs/<date>-<time>-<dataset>-d<n_components>``."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return (
        Path(root) / f"{stamp}-{dataset_label(config.dataset)}-d{config.n_components}"
    )


class RunLock:
    """Holds ``<run>/.lock`` (with this process's id) while a run writes its folder.

    A second process told to write the same folder is refused. A lock left by a
    process that no longer exists (a killed run) is taken over.

    Parameters
    ----------
    new : bool
        The folder must be new or empty (a fresh run), rather than hold a run
        (resume).
    """

    def __init__(self, out_dir: Path, new: bool) -> None:
        self.path = out_dir / ".lock"
        self.out_dir = out_dir
        self.new = new

    def __enter__(self) -> RunLock:  # noqa: PYI034
        if self.new:
            prepare_run_dir(self.out_dir)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self
        raise RunFolderError(f"could not lock {self.out_dir}")

    def _take_over_if_stale(self) -> None:
        try:
            pid = int(self.path.read_text() or "0")
        except (OSError, ValueError):
            pid = 0
        if pid > 0 and pid != os.getpid() and _process_exists(pid):
            raise RunFolderError(
                f"another latentbench process (pid {pid}) is writing {self.out_dir}; "
                "wait for it or choose another --out"
            )
        self.path.unlink(missing_ok=True)

    def __exit__(self, *exc_info) -> None:
        self.path.unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _refuse_used_folder(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise RunFolderError(
            f"--out {out_dir} is a file; expected a new or empty folder"
        )
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise RunFolderError(
            f"{out_dir} already exists and is not empty; choose another --out or "
            "remove it"
        )


def prepare_run_dir(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir``; refuse a file or a folder that already holds anything."""
    out_dir = Path(out_dir)
    _refuse_used_folder(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create run folder {out_dir}: {exc}") from None
    return out_dir


def fit_pca(data: ImageData, n_components: int, out_dir: Path) -> Embedding:
    """Fit PCA on the training pixels, save it, embed train and test."""
    pca = make_pca(n_components)
    start = time.perf_counter()
    pca.fit(data.train.X_flat)
    fit_seconds = time.perf_counter() - start
    save_pca(out_dir / "models" / "pca.npz", pca)

    Z_test = pca.transform(data.test.X_flat)
    X_hat = pca.inverse_transform(Z_test)
    logger.info(
        "fit PCA: %d components in %.2f s, explained variance %.3f",
        n_components,
        fit_seconds,
        pca.explained_variance_ratio_.sum(),
    )
    return Embedding(
        Z_train=pca.transform(data.train.X_flat),
        Z_test=Z_test,
        X_hat_test=X_hat,
        params=pca_n_params(pca),
        fit_seconds=fit_seconds,
        epochs=None,
    )


def fit_manifold(
    name: str, data: ImageData, config: CompareConfig, out_dir: Path
) -> Embedding:
    """Fit UMAP or t-SNE on a seeded training subsample, transform the test images.

    The subsample holds ``config.manifold_fit_size`` training images drawn with
    ``config.seed``; its fitted embedding is ``Z_train`` (the 5-NN classifier is fit
    on it, with its labels) and is saved, with the indices, in
    ``models/<name>.npz``. There is no decoder: ``X_hat_test`` and ``params`` are
    None.
    """
    fitted = embed_manifold(
        name,
        data.train.X_flat,
        data.test.X_flat,
        config.n_components,
        config.manifold_fit_size,
        config.seed,
    )
    write_npz(
        out_dir / "models" / f"{name}.npz",
        fit_index=fitted.fit_index,
        Z_fit=fitted.Z_fit,
    )
    return Embedding(
        Z_train=fitted.Z_fit,
        Z_test=fitted.Z_test,
        X_hat_test=None,
        params=None,
        fit_seconds=fitted.fit_seconds,
        epochs=None,
        train_index=fitted.fit_index,
    )


def _train_labels(data: ImageData, fitted: Embedding) -> np.ndarray | None:
    """The labels of ``fitted.Z_train``: of the fit subsample where there is one."""
    if data.train.y is None or fitted.train_index is None:
        return data.train.y
    return data.train.y[fitted.train_index]


def _require_extras(models: list[str]) -> None:
    """Refuse, naming the extra to install, a manifold model whose package is absent."""
    for name in models:
        if name in MANIFOLD_MODEL_NAMES:
            import_manifold(name)


def fit_neural(
    name: str,
    data: ImageData,
    config: CompareConfig,
    out_dir: Path,
    progress: bool,
    resume: bool = False,
) -> Embedding:
    """Train autoencoder ``name``, reload its best checkpoint, embed train and test.

    With ``resume``, training continues from ``models/<name>/checkpoints/last.ckpt``
    when an interrupted fit left one.
    """
    model = init_autoencoder(
        name,
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
        accelerator=config.accelerator,
        progress=progress,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
    )
    model_dir = out_dir / "models" / name
    last = model_dir / "checkpoints" / "last.ckpt"
    resume_from = last if resume and last.is_file() else None
    if resume_from is not None:
        load_checkpoint_dict(resume_from)  # refuses a file that is not plain data
    if resume_from is not None:
        logger.info("%s: resuming from %s", name, resume_from)
    elif resume and model_dir.exists():
        shutil.rmtree(model_dir)  # began but never finished an epoch: start afresh
    result = fit_autoencoder(model, data, settings, model_dir, resume_from)

    best = type(model).load_from_checkpoint(result.best_checkpoint)
    best.to("cuda" if resolve_accelerator(config.accelerator) == "gpu" else "cpu")
    X_hat = reconstruct(best, data.test.X).reshape(len(data.test), -1)
    return Embedding(
        Z_train=encode(best, data.train.X).numpy(),
        Z_test=encode(best, data.test.X).numpy(),
        X_hat_test=X_hat.numpy(),
        params=best.n_params,
        fit_seconds=result.fit_seconds,
        epochs=result.epochs,
    )


def environment(data: ImageData, config: CompareConfig) -> dict[str, Any]:
    """Versions, machine and data provenance, for ``environment.json``."""
    import lightning
    import sklearn

    accelerator = resolve_accelerator(config.accelerator)
    return {
        "latentbench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        **manifold_versions(config.models),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "accelerator": accelerator,
        "device": torch.cuda.get_device_name(0) if accelerator == "gpu" else "cpu",
        "dataset": data.dataset,
        "data_source": data.data_source,
        "data_location": data.location,
        "data_verified": data.verified,
        "payload_sha256": data.payload_sha256,
        "image_size": list(data.image_size),
        "class_names": None if data.class_names is None else list(data.class_names),
        "n_train": len(data.train),
        "n_val": len(data.val),
        "n_test": len(data.test),
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def metrics_csv(results: dict[str, dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("model", *METRIC_COLUMNS))
    for name, row in results.items():
        writer.writerow(
            (name, *("" if row[c] is None else row[c] for c in METRIC_COLUMNS))
        )
    return buffer.getvalue()


def _set_status(out_dir: Path, state: str, **extra: Any) -> None:
    write_json(out_dir / "status.json", {"state": state, **extra})


def run_compare(
    config: CompareConfig, out_dir: str | os.PathLike, progress: bool = True
) -> dict[str, Any]:
    """Run the comparison ``config`` describes and write its run folder.

    Returns
    -------
    dict
        The content of ``metrics.json``.
    """
    out_dir = Path(out_dir)
    if is_launched_worker():
        return _run_as_worker(config, progress)
    # Everything that can be refused is refused before the folder is made.
    _refuse_used_folder(out_dir)
    resolve_accelerator(config.accelerator)
    _require_extras(config.models)
    data = _load_data(config, progress)
    _check_architectures(config, data)
    with RunLock(out_dir, new=True):
        write_json(out_dir / "config.json", config.model_dump(mode="json"))
        return _run(config, data, out_dir, progress, resume=False)


def _check_architectures(config: CompareConfig, data: ImageData) -> None:
    """Refuse widths that do not fit the images before any folder or fit exists."""
    for name in config.models:
        if name in AUTOENCODER_NAMES:
            shape = IMAGE_SHAPE if name in CONV_MODEL_NAMES else data.train.X.shape[1:]
            autoencoder_kwargs(name, config, tuple(shape))


def _run_as_worker(config: CompareConfig, progress: bool) -> dict[str, Any]:
    """A distributed rank other than 0: train alongside rank 0, write nothing of note.

    The worker runs every fit rank 0 runs, in the same order, so that each meets its
    partners; its own files go to a scratch folder deleted afterwards. Lightning has
    rank 0 alone write checkpoints and logs, and points every rank at rank 0's
    checkpoint paths. Metrics, figures and the report are rank 0's alone.
    """
    data = _load_data(config, progress)
    with tempfile.TemporaryDirectory(prefix="latentbench-rank-") as scratch:
        for name in config.models:
            if name in AUTOENCODER_NAMES:
                fit_neural(name, data, config, Path(scratch), progress)
    return {}


def resume_compare(out_dir: str | os.PathLike, progress: bool = True) -> dict[str, Any]:
    """Finish an interrupted run with the settings stored in its ``config.json``.

    Models whose results were written are not fitted again; an autoencoder that was
    in training continues from its last checkpoint. On the CPU the final metrics
    equal those of an uninterrupted run with the same seed.
    """
    out_dir = Path(out_dir)
    config_path = out_dir / "config.json"
    if not out_dir.exists():
        raise RunFolderError(f"--resume {out_dir} does not exist")
    if not config_path.is_file():
        raise RunFolderError(
            f"{out_dir} is not a latentbench run folder: it has no config.json"
        )
    if read_status(out_dir) == "complete":
        raise RunFolderError(f"{out_dir} is already complete; nothing to resume")
    config = build(CompareConfig, read_json_config(config_path), str(config_path))
    resolve_accelerator(config.accelerator)
    _require_extras(config.models)
    data = _load_data(config, progress)
    with RunLock(out_dir, new=False):
        return _run(config, data, out_dir, progress, resume=True)


def read_status(out_dir: str | os.PathLike) -> str | None:
    """``"running"`` or ``"complete"`` from a run folder's status.json; None if absent."""
    path = Path(out_dir) / "status.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("state")
    except (json.JSONDecodeError, AttributeError):
        return None


def _run(
    config: CompareConfig, data: ImageData, out_dir: Path, progress: bool, resume: bool
) -> dict[str, Any]:
    _set_status(out_dir, "running")
    try:
        return _run_steps(config, data, out_dir, progress, resume)
    except LatentbenchError as exc:
        # Bad input found mid-run (a diverging model, say): the folder says so.
        _set_status(out_dir, "failed", error=str(exc))
        raise


def _run_steps(config, data, out_dir, progress, resume) -> dict[str, Any]:
    env = environment(data, config)
    if resume:
        _check_same_data(out_dir, env)
    write_json(out_dir / "environment.json", env)

    results: dict[str, dict[str, Any]] = {}
    embeddings: dict[str, np.ndarray] = {}
    for name in config.models:
        stored = _stored_result(out_dir, name) if resume else None
        if stored is not None:
            logger.info("%s: finished earlier, not refitted", name)
            results[name], embeddings[name] = stored
            continue
        results[name], embeddings[name] = _run_model(
            name, data, config, out_dir, progress, resume
        )
        write_json(out_dir / "results" / f"{name}.json", results[name])
        logger.info("%s: %s", name, _summary_line(results[name]))

    metrics = {
        "dataset": data.dataset,
        "data_source": data.data_source,
        "n_components": config.n_components,
        "n_train": len(data.train),
        "n_test": len(data.test),
        "class_names": None if data.class_names is None else list(data.class_names),
        "skipped_metrics": _skipped_metrics(data),
        "models": results,
    }
    write_json(out_dir / "metrics.json", metrics)
    write_text(out_dir / "metrics.csv", metrics_csv(results))
    # Figures and report are drawn from the folder, as `latentbench report` would.
    start = time.perf_counter()
    save_figure_data(out_dir, data.test, config.models)
    build_report(out_dir)
    report_seconds = time.perf_counter() - start
    write_json(out_dir / "timings.json", _timings(data, results, report_seconds))
    _set_status(out_dir, "complete")
    return metrics


def _timings(data: ImageData, results, report_seconds: float) -> dict[str, Any]:
    """Seconds spent in each stage of the run, for profiling."""
    return {
        "load_seconds": round(data.load_seconds, 3),
        "models": {
            name: {
                "fit_seconds": row["fit_seconds"],
                "embed_seconds": round(
                    row["total_seconds"] - row["fit_seconds"] - row["metric_seconds"], 3
                ),
                **row["metric_timings"],
            }
            for name, row in results.items()
        },
        "figures_and_report_seconds": round(report_seconds, 3),
    }


def _load_data(config: CompareConfig, progress: bool) -> ImageData:
    start = time.perf_counter()
    data = load_dataset(
        config.dataset, config.data_dir, seed=config.seed, progressbar=progress
    )
    if config.n_train or config.n_val or config.n_test:
        data = subsample(
            data,
            config.n_train or len(data.train),
            config.n_val or len(data.val),
            config.n_test or len(data.test),
        )
        logger.info(
            "using the first %d train, %d validation, %d test images",
            len(data.train),
            len(data.val),
            len(data.test),
        )
    if config.n_components > len(data.train):
        raise ConfigError(
            f"--n-components {config.n_components} is more than the {len(data.train)} "
            "training images; use at most that many components or more images"
        )
    return dataclasses.replace(data, load_seconds=time.perf_counter() - start)


def _check_same_data(out_dir: Path, env: dict[str, Any]) -> None:
    path = out_dir / "environment.json"
    if not path.is_file():
        return
    before = json.loads(path.read_text(encoding="utf-8")).get("payload_sha256")
    if before != env["payload_sha256"]:
        raise RunFolderError(
            f"cannot resume {out_dir}: the data differ from those it started with "
            f"(payload SHA-256 {before} then, {env['payload_sha256']} now)"
        )


def _skipped_metrics(data: ImageData) -> dict[str, str]:
    """Metric name to the reason it was not computed (empty with labels)."""
    if data.labelled:
        return {}
    logger.info("skipping %s: %s", ", ".join(LABEL_METRICS), NO_LABELS_REASON)
    return dict.fromkeys(LABEL_METRICS, NO_LABELS_REASON)


def _run_model(name, data, config, out_dir, progress, resume):
    start = time.perf_counter()
    if name in CONV_MODEL_NAMES:
        # 28x28 input; its metrics compare it with the resized images it saw.
        data = resized_for_conv(data)
    if name == "pca":
        fitted = fit_pca(data, config.n_components, out_dir)
    elif name in MANIFOLD_MODEL_NAMES:
        fitted = fit_manifold(name, data, config, out_dir)
    else:
        fitted = fit_neural(name, data, config, out_dir, progress, resume)
    scores = embedding_metrics(
        data.test.X_flat,
        fitted.X_hat_test,
        fitted.Z_train,
        _train_labels(data, fitted),
        fitted.Z_test,
        data.test.y,
        data.n_classes,
    )
    row = {
        **scores,
        "params": fitted.params,
        "fit_seconds": round(fitted.fit_seconds, 3),
        "epochs": fitted.epochs,
        "total_seconds": round(time.perf_counter() - start, 3),
    }
    Z = fitted.Z_test.astype(np.float32)
    write_npz(out_dir / "embeddings" / f"{name}.npz", Z=Z, **_colours(data, fitted))
    return row, Z


def _colours(data: ImageData, fitted: Embedding) -> dict[str, np.ndarray]:
    """What the figures colour the test points by: labels ``y`` and the 5-NN
    predictions ``y_pred`` (the confusion matrix), else Gaussian-mixture
    ``clusters``."""
    if data.labelled:
        y_pred = knn_predictions(
            fitted.Z_train, _train_labels(data, fitted), fitted.Z_test
        )
        return {"y": data.test.y, "y_pred": y_pred}
    return {"clusters": gmm_clusters(fitted.Z_test)}


def _stored_result(out_dir: Path, name: str):
    result_path = out_dir / "results" / f"{name}.json"
    embedding_path = out_dir / "embeddings" / f"{name}.npz"
    if not (result_path.is_file() and embedding_path.is_file()):
        return None
    row = json.loads(result_path.read_text(encoding="utf-8"))
    return row, read_npz(embedding_path)["Z"]


def _summary_line(row: dict[str, Any]) -> str:
    shown = ("recon_mse", "knn_accuracy", "trustworthiness", "fit_seconds")
    return ", ".join(f"{k} {row[k]:.4g}" for k in shown if row.get(k) is not None)
