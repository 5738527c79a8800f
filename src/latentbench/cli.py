"""The ``latentbench`` command line: the only place that reads argv, configures
logging and chooses exit codes (0 done, 2 bad input, 130 interrupted)."""

from __future__ import annotations

import logging
import signal
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from latentbench.config import AutoencoderOptions, CompareConfig, build
from latentbench.data.user import dataset_label
from latentbench.errors import ConfigError, LatentbenchError

app = typer.Typer(
    name="latentbench",
    help=(
        "Measure what a non-linear autoencoder buys you over PCA on image data: "
        "train PCA and autoencoders, embed the test set, compare the numbers."
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
    # Lightning reports its hardware and tips at INFO on every fit; ours says enough.
    # It resets its own loggers' level when imported, so filter at our handler.
    handler.addFilter(_ours_or_warning)
    logging.captureWarnings(True)
    warnings.formatwarning = _format_warning
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _format_warning(message, category, filename, lineno, line=None) -> str:
    # A user needs what went wrong, not which line of which library noticed it.
    return f"{category.__name__}: {message}"


def _ours_or_warning(record: logging.LogRecord) -> bool:
    # Our own INFO and DEBUG lines; other libraries' only from WARNING up (torch and
    # Lightning report hardware, tips and cache statistics at INFO).
    return record.name.startswith("latentbench") or record.levelno >= logging.WARNING


def _silence_lightning_info() -> None:
    """Lower Lightning's loggers to WARNING once it is imported.

    Importing ``lightning`` sets its loggers to INFO and attaches a console handler of
    its own, which would repeat hardware reports and tips on every fit.
    """
    import lightning  # noqa: F401

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _interrupt_code(exc: KeyboardInterrupt) -> int:
    """128 plus the signal's number, as shells report it: 130 Ctrl-C, 143 SIGTERM."""
    return 128 + int(getattr(exc, "signal_number", signal.SIGINT))


def _fail(exc: BaseException) -> typer.Exit:
    for line in str(exc).splitlines() or [type(exc).__name__]:
        err_console.print(
            f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True
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

# Architecture and training options, shared by compare and sweep. Their names are
# CompareConfig's fields.
PresetOption = Annotated[
    str | None,
    typer.Option(
        help="Start from a named preset (latentbench presets lists them); options "
        "given on the command line override it."
    ),
]
EncoderOption = Annotated[
    str | None,
    typer.Option(
        metavar="WIDTHS",
        help="Widths of the fully connected encoder (fc, vae), pixels to code, "
        "e.g. 784,512,256,2. Default: the reference 784,128,64,12,k.",
    ),
]
DecoderOption = Annotated[
    str | None,
    typer.Option(
        metavar="WIDTHS",
        help="Decoder widths, code to pixels, e.g. 2,64,784. Default: the encoder "
        "mirrored.",
    ),
]
ChannelsOption = Annotated[
    str | None,
    typer.Option(
        metavar="CHANNELS",
        help="Channels of cnn's stride-2 convolutions, e.g. 64,128. Default: the "
        "reference layout.",
    ),
]
DenseOption = Annotated[
    int | None,
    typer.Option(
        help="A dense layer of this width between cnn's convolutions and the code "
        "(with --channels)."
    ),
]
ActivationOption = Annotated[
    str,
    typer.Option(help="Hidden activation: relu, leaky_relu, elu, gelu, silu, tanh."),
]
OutputActivationOption = Annotated[
    str, typer.Option(help="Output activation: sigmoid or identity.")
]
BatchNormOption = Annotated[
    bool,
    typer.Option(
        "--batch-norm/--no-batch-norm", help="Batch normalisation after hidden layers."
    ),
]
DropoutOption = Annotated[
    float, typer.Option(help="Dropout probability after hidden layers.")
]
LossOption = Annotated[
    str, typer.Option(help="mse, or bce (binary cross-entropy; sigmoid output).")
]
WeightDecayOption = Annotated[
    float, typer.Option(help="AdamW weight decay; 0 trains with Adam.")
]
LRScheduleOption = Annotated[
    str, typer.Option(help="constant, cosine or onecycle, stepped every batch.")
]
KLWeightOption = Annotated[
    float, typer.Option(help="Weight of the KL term of the variational autoencoder.")
]
NoiseOption = Annotated[
    float,
    typer.Option(
        help="Denoising: std of Gaussian noise added to training inputs (0: off)."
    ),
]

_WIDTH_LISTS = ("encoder", "decoder", "channels")


def _architecture_values(ctx: typer.Context) -> dict[str, Any]:
    """The architecture and training options of ``ctx``, lists parsed."""
    values = {name: ctx.params[name] for name in AutoencoderOptions.model_fields}
    for name in _WIDTH_LISTS:
        if values[name] is not None:
            values[name] = _width_list(values[name], f"--{name}")
    return values


def _resolve_preset(
    ctx: typer.Context, values: dict[str, Any], preset: str | None
) -> dict[str, Any]:
    """The options typed win over the preset, the preset over the defaults.

    A code size typed nowhere follows ``--encoder``.
    """
    from latentbench.presets import preset_settings

    # typer's ParameterSource: DEFAULT when the option was not typed.
    typed = {
        name
        for name in values
        if name in ctx.params
        and ctx.get_parameter_source(name).name not in ("DEFAULT", "DEFAULT_MAP")
    }
    if preset is not None:
        base = preset_settings(preset)
        if "encoder" in typed and "decoder" not in typed:
            base.pop("decoder", None)  # a typed encoder is mirrored, as without one
        values = {**base, **{k: v for k, v in values.items() if k in typed}}
        if "models" in typed:
            # A preset's layout for a model that typed --models leave out goes.
            models = set(values["models"])
            unused = set()
            if "cnn" not in models:
                unused |= {"channels", "dense"}
            if not models & {"fc", "vae"}:
                unused |= {"encoder", "decoder"}
            for name in unused - typed:
                values.pop(name, None)
        if "n_components" in typed and "encoder" not in typed:
            # The preset's widths next to the code follow a typed code size.
            values = _sized(values, values["n_components"])
    encoder_sets_size = preset is None or "encoder" in typed
    if values.get("encoder") and "n_components" not in typed and encoder_sets_size:
        values.pop("n_components", None)
    return values


def _sized(values: dict[str, Any], n_components: int) -> dict[str, Any]:
    """``values`` with the code size, and the widths next to the code, set."""
    sized = {**values, "n_components": n_components}
    if values.get("encoder"):
        sized["encoder"] = [*values["encoder"][:-1], n_components]
    if values.get("decoder"):
        sized["decoder"] = [n_components, *values["decoder"][1:]]
    return sized


# An example list for each width option's messages.
_WIDTH_EXAMPLES = {"--channels": "32,64", "--decoder": "2,64,784"}


def _width_list(text: str, option: str) -> list[int]:
    """``"784,256,2"`` -> ``[784, 256, 2]``; a bad list is a ConfigError."""
    example = _WIDTH_EXAMPLES.get(option, "784,256,2")
    try:
        widths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not a comma list of integers (e.g. {example})"
        ) from None
    if not widths:
        raise ConfigError(f"{option} is empty; give a comma list such as {example}")
    return widths


@app.callback()
def main(
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Log every epoch's losses.", metavar=""),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Only warnings, errors and results.", metavar=""
        ),
    ] = False,
) -> None:
    """Compare PCA with autoencoders on MNIST, measured."""
    _configure_logging(verbose, quiet)
    _STATE["quiet"] = quiet


@app.command()
def compare(
    ctx: typer.Context,
    dataset: Annotated[
        str,
        typer.Option(
            help="mnist, mnist-5k, fashion-mnist, kmnist, emnist-letters, or a .npz "
            "file or a folder of class subfolders."
        ),
    ] = _DEFAULTS["dataset"],
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
        str,
        typer.Option(
            help="Comma list of pca, fc, cnn, vae, umap, tsne (umap and tsne need "
            "the manifold extra)."
        ),
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
        float, typer.Option(help="Adam (AdamW) step size; the peak under onecycle.")
    ] = _DEFAULTS["learning_rate"],
    seed: Annotated[
        int, typer.Option(help="Seeds the split, the initial weights, the batches.")
    ] = _DEFAULTS["seed"],
    accelerator: Annotated[
        str, typer.Option(help="auto (a GPU where one exists), cpu or gpu.")
    ] = _DEFAULTS["accelerator"],
    devices: Annotated[
        int, typer.Option(help="Devices (processes under ddp) per node.")
    ] = _DEFAULTS["devices"],
    num_nodes: Annotated[
        int, typer.Option(help="Machines, for a cluster launch (torchrun, SLURM).")
    ] = _DEFAULTS["num_nodes"],
    strategy: Annotated[
        str, typer.Option(help="auto (one process) or ddp (one process a device).")
    ] = _DEFAULTS["strategy"],
    out: Annotated[
        Path | None,
        typer.Option(help="Run folder. Default: runs/<date>-<time>-<dataset>-d<k>."),
    ] = None,
    n_train: Annotated[
        int | None,
        typer.Option(
            help="Use only the first N training images (the 5,000-image validation "
            "split stays whole)."
        ),
    ] = None,
    n_test: Annotated[
        int | None, typer.Option(help="Use only the first N test images.")
    ] = None,
    manifold_fit_size: Annotated[
        int,
        typer.Option(
            help="umap and tsne are fit on a seeded subsample of this many training "
            "images, then transform the test images."
        ),
    ] = _DEFAULTS["manifold_fit_size"],
    resume: Annotated[
        Path | None,
        typer.Option(
            metavar="RUN_DIR",
            help="Finish an interrupted run with the settings in its config.json "
            "(other options are then ignored).",
        ),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Comma list of seeds (overrides --seed): one run per seed in "
            "<out>/seed<s>/, and the mean and spread of every metric."
        ),
    ] = None,
    preset: PresetOption = None,
    encoder: EncoderOption = None,
    decoder: DecoderOption = None,
    channels: ChannelsOption = None,
    dense: DenseOption = None,
    activation: ActivationOption = _DEFAULTS["activation"],
    output_activation: OutputActivationOption = _DEFAULTS["output_activation"],
    batch_norm: BatchNormOption = _DEFAULTS["batch_norm"],
    dropout: DropoutOption = _DEFAULTS["dropout"],
    loss: LossOption = _DEFAULTS["loss"],
    weight_decay: WeightDecayOption = _DEFAULTS["weight_decay"],
    lr_schedule: LRScheduleOption = _DEFAULTS["lr_schedule"],
    kl_weight: KLWeightOption = _DEFAULTS["kl_weight"],
    noise: NoiseOption = _DEFAULTS["noise"],
) -> None:
    """Fit PCA and the autoencoders, embed the test set and compare them."""
    from latentbench.compare import default_run_dir, resume_compare
    from latentbench.training import is_launched_worker

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
        "devices": devices,
        "num_nodes": num_nodes,
        "strategy": strategy,
        "n_train": n_train,
        "n_test": n_test,
        "manifold_fit_size": manifold_fit_size,
    }
    run_dir = resume
    try:
        values = _resolve_preset(ctx, {**values, **_architecture_values(ctx)}, preset)
        if resume is not None:
            _silence_lightning_info()
            metrics = resume_compare(resume, progress=not _STATE["quiet"])
        else:
            config = build(CompareConfig, values, "option")
            _silence_lightning_info()
            run_dir = out if out is not None else default_run_dir(config)
            metrics = _compare_seeds(config, seeds, run_dir)
    except LatentbenchError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt as exc:
        err_console.print(
            f"interrupted: {run_dir} is incomplete; continue it with "
            f"latentbench compare --resume {run_dir}"
        )
        raise typer.Exit(_interrupt_code(exc)) from None
    if is_launched_worker():
        return  # a distributed rank other than 0: rank 0 reports
    console.print(metrics_table(metrics))
    if "seeds" in metrics:
        console.print(
            f"means over seeds {', '.join(map(str, metrics['seeds']))}; the "
            "standard deviations are in metrics.csv and report.html"
        )
    if metrics["data_source"] == "embedded":
        err_console.print(
            "[bold yellow]warning:[/] these figures come from the 5,000-digit "
            "embedded subset, not the full MNIST"
        )
    console.print(f"results in [bold]{run_dir}[/], report in {run_dir}/report.html")


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

    Fields: model (fc, cnn, vae or pca), n_components, and optionally
    learning_rate, batch_size, max_epochs, patience, seed, use_gpu, num_workers,
    data_dir, and the architecture and training options of compare with
    underscores (encoder as a list such as [784, 512, 2], batch_norm, loss, ...).
    Writes model.ckpt (autoencoders) or model.npz (PCA) in the config's folder.
    """
    from latentbench.config import ReferenceTrainConfig, read_json_config
    from latentbench.train_config import train_from_config

    try:
        config = build(
            ReferenceTrainConfig, read_json_config(config_path), str(config_path)
        )
        if data_dir is None and config.data_dir and not config.data_dir.is_dir():
            raise ConfigError(
                f"{config_path}: data_dir = '{config.data_dir}' is not a folder "
                "(a relative data_dir is taken from the current folder)"
            )
        _silence_lightning_info()
        result = train_from_config(
            config, config_path.parent, data_dir=data_dir, progress=not _STATE["quiet"]
        )
    except LatentbenchError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt as exc:
        raise typer.Exit(_interrupt_code(exc)) from None
    console.print(result)


@app.command()
def summary(
    model: Annotated[str, typer.Argument(help="fc, cnn or vae.")],
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


def _int_list(text: str, option: str) -> list[int]:
    """``"2,3,5"`` -> ``[2, 3, 5]``; a bad list is a ConfigError naming the option."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not a comma list of integers (e.g. 0,1,2)"
        ) from None
    if not values:
        raise ConfigError(f"{option} is empty; give a comma list such as 0,1,2")
    if len(set(values)) != len(values):
        raise ConfigError(f"{option} {text!r} names a value twice")
    return values


def _compare_seeds(config: CompareConfig, seeds: str | None, run_dir: Path):
    from latentbench.compare import run_compare
    from latentbench.sweep import run_seeds

    progress = not _STATE["quiet"]
    seed_list = _int_list(seeds, "--seeds") if seeds is not None else [config.seed]
    if len(seed_list) == 1:
        config = config.model_copy(update={"seed": seed_list[0]})
        return run_compare(config, run_dir, progress=progress)
    return run_seeds(config, seed_list, run_dir, progress=progress)


def sweep_table(sweep: dict[str, Any]) -> Table:
    """MSE and 5-NN accuracy against components, a column pair per model."""
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        title=f"{sweep['dataset']} ({sweep['data_source']}), "
        f"{sweep['n_test']:,} test images, seeds "
        f"{', '.join(map(str, sweep['seeds']))}",
        caption="test MSE per pixel on [0, 1] and 5-NN accuracy (means over seeds); "
        "PCA var.: PCA's cumulative explained variance",
    )
    table.add_column("k", justify="right")
    for name in sweep["models"]:
        table.add_column(f"{name} MSE", justify="right")
    for name in sweep["models"]:
        table.add_column(f"{name} 5-NN", justify="right")
    explained = sweep.get("pca_explained_variance_ratio")
    if explained:
        table.add_column("PCA var.", justify="right")
    rows = {(r["n_components"], r["model"]): r for r in sweep["rows"]}
    for k in sweep["sizes"]:
        cells = [str(k)]
        for column in ("recon_mse", "knn_accuracy"):
            cells += [
                _format(rows[k, name][column], column) for name in sweep["models"]
            ]
        if explained:
            cells.append(f"{100 * sum(explained[:k]):.1f}%")
        table.add_row(*cells)
    return table


@app.command()
def sweep(
    ctx: typer.Context,
    n_components: Annotated[
        str, typer.Option(help="Comma list of embedding dimensions.")
    ] = "2,3,5,10,20,30,50",
    seeds: Annotated[
        str, typer.Option(help="Comma list of seeds; several give mean and spread.")
    ] = str(_DEFAULTS["seed"]),
    dataset: Annotated[
        str,
        typer.Option(
            help="mnist, mnist-5k, fashion-mnist, kmnist, emnist-letters, or a .npz "
            "file or a folder of class subfolders."
        ),
    ] = _DEFAULTS["dataset"],
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with the MNIST IDX files; as for compare."),
    ] = None,
    models: Annotated[
        str,
        typer.Option(
            help="Comma list of pca, fc, cnn, vae, umap, tsne (umap and tsne need "
            "the manifold extra)."
        ),
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
        float, typer.Option(help="Adam (AdamW) step size; the peak under onecycle.")
    ] = _DEFAULTS["learning_rate"],
    accelerator: Annotated[
        str, typer.Option(help="auto (a GPU where one exists), cpu or gpu.")
    ] = _DEFAULTS["accelerator"],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Sweep folder; run again with the same --out to reuse finished "
            "sizes. Default: runs/<date>-<time>-<dataset>-sweep."
        ),
    ] = None,
    n_train: Annotated[
        int | None,
        typer.Option(
            help="Use only the first N training images (the 5,000-image validation "
            "split stays whole)."
        ),
    ] = None,
    n_test: Annotated[
        int | None, typer.Option(help="Use only the first N test images.")
    ] = None,
    manifold_fit_size: Annotated[
        int,
        typer.Option(
            help="umap and tsne are fit on a seeded subsample of this many training "
            "images, then transform the test images."
        ),
    ] = _DEFAULTS["manifold_fit_size"],
    preset: PresetOption = None,
    encoder: EncoderOption = None,
    decoder: DecoderOption = None,
    channels: ChannelsOption = None,
    dense: DenseOption = None,
    activation: ActivationOption = _DEFAULTS["activation"],
    output_activation: OutputActivationOption = _DEFAULTS["output_activation"],
    batch_norm: BatchNormOption = _DEFAULTS["batch_norm"],
    dropout: DropoutOption = _DEFAULTS["dropout"],
    loss: LossOption = _DEFAULTS["loss"],
    weight_decay: WeightDecayOption = _DEFAULTS["weight_decay"],
    lr_schedule: LRScheduleOption = _DEFAULTS["lr_schedule"],
    kl_weight: KLWeightOption = _DEFAULTS["kl_weight"],
    noise: NoiseOption = _DEFAULTS["noise"],
) -> None:
    """Run the comparison at each embedding size; plot and tabulate against size.

    Each size runs into <out>/d<k>/. Sizes already complete there with the same
    settings and data are reused, interrupted ones resumed.
    """
    import datetime as dt

    from latentbench.sweep import run_sweep

    values = {
        "dataset": dataset,
        "data_dir": data_dir,
        "models": [m.strip() for m in models.split(",") if m.strip()],
        "max_epochs": max_epochs,
        "patience": patience,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "accelerator": accelerator,
        "n_train": n_train,
        "n_test": n_test,
        "manifold_fit_size": manifold_fit_size,
    }
    run_dir = out
    try:
        sizes = _int_list(n_components, "--n-components")
        seed_list = _int_list(seeds, "--seeds")
        values = _resolve_preset(ctx, {**values, **_architecture_values(ctx)}, preset)
        values.pop("n_components", None)
        for k in sizes:  # every size is checked before the first one runs
            config = build(CompareConfig, _sized(values, k), "option")
        if run_dir is None:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            run_dir = Path("runs") / f"{stamp}-{dataset_label(dataset)}-sweep"
        result = run_sweep(
            config, sizes, seed_list, run_dir, progress=not _STATE["quiet"]
        )
    except LatentbenchError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt as exc:
        err_console.print(
            f"interrupted: run the same command with --out {run_dir} to continue"
        )
        raise typer.Exit(_interrupt_code(exc)) from None
    console.print(sweep_table(result))
    reused = [r["n_components"] for r in result["runs"] if r["reused"]]
    console.print(
        f"wall time {result['wall_seconds']:,.0f} s"
        + (f"; reused sizes {', '.join(map(str, reused))}" if reused else "")
    )
    console.print(f"results in [bold]{run_dir}[/], report in {run_dir}/report.html")


@app.command()
def presets() -> None:
    """List the presets that --preset accepts, with what each is for."""
    from latentbench.presets import PRESETS

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("preset")
    table.add_column("for")
    table.add_column("settings")
    for preset in PRESETS.values():
        settings = ", ".join(
            f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in preset.settings.items()
        )
        table.add_row(preset.name, preset.purpose, settings or "(the defaults)")
    console.print(table)


@app.command()
def report(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A compare or sweep folder.")
    ],
) -> None:
    """Rebuild a run folder's figures and report.html from its files; print the findings."""
    from latentbench.report import build_report, findings

    try:
        path = build_report(run_dir)
        sentences = findings(run_dir)
    except LatentbenchError as exc:
        raise _fail(exc) from None
    for sentence in sentences:
        console.print(sentence, highlight=False, soft_wrap=True)
    console.print(f"report in [bold]{path}[/]")


@app.command()
def export(
    model_path: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL_CKPT",
            help="An fc, cnn or vae checkpoint (.ckpt) or a safetensors export.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            metavar="PATH",
            help="The .safetensors file, or for onnx the folder that gets "
            "encoder.onnx and decoder.onnx.",
        ),
    ],
    export_format: Annotated[
        str, typer.Option("--format", help="safetensors or onnx.")
    ] = "safetensors",
) -> None:
    """Export an autoencoder's encoder and decoder to safetensors or ONNX."""
    from latentbench.export import (
        EXPORT_FORMATS,
        export_onnx,
        export_safetensors,
        load_autoencoder,
    )

    try:
        if export_format not in EXPORT_FORMATS:
            raise ConfigError(
                f"--format {export_format!r} is not one of {', '.join(EXPORT_FORMATS)}"
            )
        model = load_autoencoder(model_path)
        if export_format == "onnx":
            written = export_onnx(model, out)
        else:
            written = [export_safetensors(model, out)]
    except LatentbenchError as exc:
        raise _fail(exc) from None
    for path in written:
        console.print(f"wrote [bold]{path}[/]", highlight=False)


@app.command()
def embed(
    model_path: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL",
            help="An autoencoder checkpoint (.ckpt), a safetensors export or a PCA "
            ".npz.",
        ),
    ],
    data_path: Annotated[
        Path,
        typer.Argument(
            metavar="DATA",
            help="A folder of MNIST IDX files, or an .npz with images X (n, 28, 28) "
            "or (n, 784), uint8 or float on [0, 1], and optional labels y.",
        ),
    ],
    out: Annotated[
        Path, typer.Option(metavar="FILE.npz", help="Where the codes Z (and y) go.")
    ],
    split: Annotated[
        str,
        typer.Option(help="For an IDX folder: test (10,000) or train (all 60,000)."),
    ] = "test",
) -> None:
    """Write the embedding Z of a data set under a saved model to an .npz."""
    from latentbench.embed import embed_file

    try:
        arrays = embed_file(model_path, data_path, out, split=split)
    except LatentbenchError as exc:
        raise _fail(exc) from None
    n, k = arrays["Z"].shape
    labels = " and labels y" if "y" in arrays else ""
    console.print(f"wrote Z ({n:,} x {k}){labels} to [bold]{out}[/]", highlight=False)


def run() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
