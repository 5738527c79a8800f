"""The ``latentbench`` command line: the only place that reads argv, configures
logging and chooses exit codes (0 done, 2 bad input, 130 interrupted)."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from latentbench.config import CompareConfig, build
from latentbench.errors import LatentbenchError

app = typer.Typer(
    name="latentbench",
    help=(
        "Measure what a non-linear autoencoder buys you over PCA on image data: "
        "train PCA and two autoencoders, embed the test set, compare the numbers."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
logger = logging.getLogger("latentbench")

_STATE: dict[str, Any] = {"quiet": False}

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

_COLUMN_TITLES = {
    "recon_mse": "MSE",
    "knn_accuracy": "5-NN",
    "silhouette": "silh.",
    "trustworthiness": "trust.",
    "gmm_ari": "ARI",
    "gmm_nmi": "NMI",
    "params": "params",
    "fit_seconds": "fit s",
    "epochs": "epochs",
}


def _configure_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = RichHandler(console=err_console, show_path=False, show_time=False)
    logging.basicConfig(
        level=level, handlers=[handler], format="%(message)s", force=True
    )
    # Lightning sets its loggers to INFO when imported and then reports hardware and
    # tips on every fit; import it first so that the quieter level sticks.
    import lightning.pytorch  # noqa: F401

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _fail(exc: BaseException) -> typer.Exit:
    for line in str(exc).splitlines() or [type(exc).__name__]:
        err_console.print(
            f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True
        )
    return typer.Exit(EXIT_BAD_INPUT)


def _format(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if column in ("params", "epochs"):
        return f"{int(value):,}"
    if column == "fit_seconds":
        return f"{value:.1f}"
    if column == "recon_mse":
        return f"{value:.4f}"
    return f"{value:.3f}"


def metrics_table(metrics: dict[str, Any]) -> Table:
    """The comparison as a rich table, one row a model."""
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        caption="MSE per pixel on [0, 1]; 5-NN accuracy; silhouette; "
        "trustworthiness; Gaussian-mixture ARI and NMI",
        title=(
            f"{metrics['dataset']} ({metrics['data_source']}), "
            f"{metrics['n_components']} components, {metrics['n_test']:,} test images"
        ),
    )
    cells = {
        name: [_format(row.get(c), c) for c in _COLUMN_TITLES]
        for name, row in metrics["models"].items()
    }
    table.add_column("model", style="bold", no_wrap=True)
    for i, title in enumerate(_COLUMN_TITLES.values()):
        # Numbers are never cut: each column is at least as wide as its widest cell.
        width = max([len(title), *(len(row[i]) for row in cells.values())])
        table.add_column(title, justify="right", no_wrap=True, min_width=width)
    for name, row in cells.items():
        table.add_row(name, *row)
    return table


# Defaults live in CompareConfig alone; the flags show them.
_DEFAULTS = CompareConfig().model_dump()
_DEFAULT_MODELS = ",".join(_DEFAULTS["models"])


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log every epoch's losses.")
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Only warnings, errors and results."),
    ] = False,
) -> None:
    """Compare PCA with autoencoders on MNIST, measured."""
    _configure_logging(verbose, quiet)
    _STATE["quiet"] = quiet


@app.command()
def compare(
    dataset: Annotated[str, typer.Option(help="mnist or mnist-5k.")] = _DEFAULTS[
        "dataset"
    ],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder with the MNIST IDX files (or torchvision's MNIST/raw). "
            "Default: $LATENTBENCH_DATA, then the user cache, then download."
        ),
    ] = None,
    n_components: Annotated[
        int, typer.Option(help="Embedding dimension, 1..783.")
    ] = _DEFAULTS["n_components"],
    models: Annotated[
        str, typer.Option(help="Comma list of pca, fc, cnn.")
    ] = _DEFAULT_MODELS,
    max_epochs: Annotated[
        int, typer.Option(help="Cap on autoencoder training epochs.")
    ] = _DEFAULTS["max_epochs"],
    patience: Annotated[
        int,
        typer.Option(help="Epochs without a lower validation loss before stopping."),
    ] = _DEFAULTS["patience"],
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = _DEFAULTS[
        "batch_size"
    ],
    learning_rate: Annotated[
        float, typer.Option(help="Adam learning rate.")
    ] = _DEFAULTS["learning_rate"],
    seed: Annotated[
        int, typer.Option(help="Seeds the split, the initial weights, the batches.")
    ] = _DEFAULTS["seed"],
    accelerator: Annotated[
        str, typer.Option(help="auto (a GPU where one exists), cpu or gpu.")
    ] = _DEFAULTS["accelerator"],
    out: Annotated[
        Path | None,
        typer.Option(help="Run folder. Default: runs/<date>-<time>-<dataset>-d<k>."),
    ] = None,
    n_train: Annotated[
        int | None, typer.Option(help="Use only the first N training images.")
    ] = None,
    n_test: Annotated[
        int | None, typer.Option(help="Use only the first N test images.")
    ] = None,
) -> None:
    """Fit PCA and the autoencoders, embed the test set and compare them."""
    from latentbench.compare import default_run_dir, run_compare

    values = {
        "dataset": dataset,
        "data_dir": data_dir,
        "n_components": n_components,
        "models": [m.strip() for m in models.split(",") if m.strip()],
        "max_epochs": max_epochs,
        "patience": patience,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "accelerator": accelerator,
        "n_train": n_train,
        "n_test": n_test,
    }
    try:
        config = build(CompareConfig, values, "option")
        run_dir = out if out is not None else default_run_dir(config)
        metrics = run_compare(config, run_dir, progress=not _STATE["quiet"])
    except LatentbenchError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        err_console.print("interrupted: the run folder is incomplete (status.json)")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    console.print(metrics_table(metrics))
    if metrics["data_source"] == "embedded":
        err_console.print(
            "[bold yellow]warning:[/] these figures come from the 5,000-digit "
            "embedded subset, not the full MNIST"
        )
    console.print(f"results in [bold]{run_dir}[/]")


@app.command()
def train(
    config_path: Annotated[
        Path,
        typer.Argument(
            metavar="CONFIG.json", help="A config in models/<experiment>/config.json."
        ),
    ],
    data_dir: Annotated[
        Path | None, typer.Option(help="Overrides the config's data_dir.")
    ] = None,
) -> None:
    """Train one model from a JSON config and save it beside the config.

    Fields: model (fc, cnn or pca), n_components, and optionally learning_rate,
    batch_size, max_epochs, patience, seed, use_gpu, num_workers, data_dir.
    Writes model.ckpt (autoencoders) or model.npz (PCA) in the config's folder.
    """
    from latentbench.config import ReferenceTrainConfig, read_json_config
    from latentbench.train_config import train_from_config

    try:
        config = build(
            ReferenceTrainConfig, read_json_config(config_path), str(config_path)
        )
        result = train_from_config(
            config, config_path.parent, data_dir=data_dir, progress=not _STATE["quiet"]
        )
    except LatentbenchError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    console.print(result)


@app.command()
def summary(
    model: Annotated[str, typer.Argument(help="fc or cnn.")],
    n_components: Annotated[int, typer.Option(help="Embedding dimension.")] = 2,
) -> None:
    """Print a model's layers: name, type, parameters, input and output size."""
    from latentbench.models import AUTOENCODERS
    from latentbench.summary import layer_table

    if model not in AUTOENCODERS:
        raise _fail(
            LatentbenchError(
                f"unknown model {model!r}; summary knows {', '.join(AUTOENCODERS)}"
            )
        )
    if not 1 <= n_components < 784:
        raise _fail(LatentbenchError(f"--n-components {n_components} is not in 1..783"))
    rows, total = layer_table(AUTOENCODERS[model](n_components))
    table = Table(title=f"{model} autoencoder, {n_components} components")
    for column in ("layer", "type", "params", "input size", "output size"):
        table.add_column(column, justify="right" if column == "params" else "left")
    for row in rows:
        style = "bold" if "." not in row.name else None
        table.add_row(
            row.name,
            row.type,
            f"{row.params:,}",
            row.in_size,
            row.out_size,
            style=style,
        )
    console.print(table)
    console.print(
        f"total trainable parameters: [bold]{total:,}[/] ({total / 1e3:.1f} K)"
    )


def run() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
