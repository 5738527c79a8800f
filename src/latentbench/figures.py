"""Figures of a comparison: scatters, reconstructions, components, losses, sweeps."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

from latentbench._io import atomic_path
from latentbench.constants import IMAGE_HEIGHT, IMAGE_WIDTH

MODEL_TITLES = {
    "pca": "PCA",
    "fc": "Fully connected AE",
    "cnn": "Convolutional AE",
    "vae": "Variational AE",
    "umap": "UMAP",
    "tsne": "t-SNE",
}
_POINT_SIZE = 2.0
_DPI = 120


def _title(name: str) -> str:
    return MODEL_TITLES.get(name, name)


def _with_caption(title: str, caption: str) -> str:
    return f"{title}\n{caption}" if caption else title


def class_colour(label: int, n_classes: int):
    """The colour of class ``label``: tab10 up to 10 classes, tab20 up to 20, else
    evenly spaced hues (26 letters stay distinct)."""
    if n_classes <= 10:
        return plt.get_cmap("tab10")(label % 10)
    if n_classes <= 20:
        return plt.get_cmap("tab20")(label % 20)
    return plt.get_cmap("gist_rainbow")(label / max(n_classes - 1, 1))


def _n_classes(y: np.ndarray) -> int:
    return int(y.max()) + 1 if len(y) else 0


def plane(Z: np.ndarray) -> np.ndarray:
    """Points to draw in a plane: ``Z`` itself, or for a 1-D embedding its values
    against a seeded jitter, so that the points do not stack on one line."""
    if Z.shape[1] >= 2:
        return Z
    spread = float(np.ptp(Z[:, 0])) or 1.0
    jitter = np.random.default_rng(0).uniform(-0.05, 0.05, len(Z)) * spread
    return np.column_stack([Z[:, 0], jitter])


def label_text(label: int, names: Sequence[str] | None = None) -> str:
    """What the legend calls class ``label``: its name where the data set has
    names (Fashion-MNIST's "Trouser"), else its index (digits, clusters)."""
    if names is not None and 0 <= label < len(names):
        return str(names[label])
    return str(label)


def _draw_2d(
    ax, Z: np.ndarray, y: np.ndarray, title: str, names: Sequence[str] | None = None
) -> None:
    dims = Z.shape[1]
    Z = plane(Z)
    n_classes = _n_classes(y)
    for label in np.unique(y):
        mask = y == label
        ax.scatter(
            Z[mask, 0],
            Z[mask, 1],
            s=_POINT_SIZE,
            color=class_colour(int(label), n_classes),
            alpha=0.6,
            linewidths=0,
            label=label_text(int(label), names),
            rasterized=True,
        )
    ax.set_title(title)
    suffix = f" of {dims}" if dims > 2 else ""
    ax.set_xlabel(f"dimension 1{suffix}")
    ax.set_ylabel(f"dimension 2{suffix}" if dims > 1 else "jitter (1-D embedding)")


# The legend's title: "digit" for labels, LEGEND_TITLE_CLUSTERS for unlabelled data
# coloured by their Gaussian-mixture cluster.
LEGEND_TITLE = "digit"
LEGEND_TITLE_CLUSTERS = "cluster (Gaussian mixture)"


def _legend(fig_or_ax, x: float = 1.0, title: str = LEGEND_TITLE) -> None:
    fig_or_ax.legend(
        title=title,
        ncols=2 if len(fig_or_ax.get_legend_handles_labels()[0]) > 13 else 1,
        markerscale=5,
        loc="center left",
        bbox_to_anchor=(x, 0.5),
        frameon=False,
    )


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def scatter_2d(
    Z: np.ndarray,
    y: np.ndarray,
    name: str,
    path: str | os.PathLike,
    caption: str = "",
    legend: str = LEGEND_TITLE,
    names: Sequence[str] | None = None,
) -> Path:
    """Plot the first two dimensions of ``Z`` (n, k), one colour per label;
    ``names`` label the legend (class names), else the label values do."""
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    _draw_2d(ax, Z, y, _with_caption(f"{_title(name)}: test embedding", caption), names)
    _legend(ax, title=legend)
    return _save(fig, Path(path))


def scatter_3d(
    Z: np.ndarray,
    y: np.ndarray,
    name: str,
    path: str | os.PathLike,
    caption: str = "",
    legend: str = LEGEND_TITLE,
    names: Sequence[str] | None = None,
) -> Path:
    """Plot a 3D embedding ``Z`` (n, 3), one colour per label (see
    :func:`scatter_2d` for ``names``)."""
    fig = plt.figure(figsize=(7.0, 6.0))
    ax = fig.add_subplot(projection="3d")
    n_classes = _n_classes(y)
    for label in np.unique(y):
        mask = y == label
        ax.scatter(
            Z[mask, 0],
            Z[mask, 1],
            Z[mask, 2],
            s=2 * _POINT_SIZE,  # depth thins points out; draw them larger
            color=class_colour(int(label), n_classes),
            alpha=0.7,
            linewidths=0,
            label=label_text(int(label), names),
        )
    ax.set_title(_with_caption(f"{_title(name)}: test embedding (3D)", caption))
    ax.set_xlabel("dimension 1")
    ax.set_ylabel("dimension 2")
    ax.set_zlabel("dimension 3")
    _legend(ax, x=1.12, title=legend)  # clear of the z axis label
    return _save(fig, Path(path))


def scatter_side_by_side(
    embeddings: Mapping[str, np.ndarray],
    y: np.ndarray | Mapping[str, np.ndarray],
    path: str | os.PathLike,
    captions: Mapping[str, str] | None = None,
    legend: str = LEGEND_TITLE,
    names: Sequence[str] | None = None,
) -> Path:
    """All models' 2D scatters in one row, sharing a legend.

    ``y`` is one label array for all models, or a model's own (its clusters).
    """
    captions = captions or {}
    n = len(embeddings)
    fig, axes = plt.subplots(1, n, figsize=(5.0 * n, 4.8), squeeze=False)
    for ax, (name, Z) in zip(axes[0], embeddings.items()):
        labels = y[name] if isinstance(y, Mapping) else y
        _draw_2d(
            ax, Z, labels, _with_caption(_title(name), captions.get(name, "")), names
        )
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        title=legend,
        markerscale=5,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )
    fig.tight_layout()
    return _save(fig, Path(path))


def embedding_figures(
    embeddings: Mapping[str, np.ndarray],
    y: np.ndarray | Mapping[str, np.ndarray],
    folder: str | os.PathLike,
    captions: Mapping[str, str] | None = None,
    legend: str = LEGEND_TITLE,
    names: Sequence[str] | None = None,
) -> list[Path]:
    """Write every scatter figure of a comparison into ``folder``.

    ``y`` colours the points: the labels, or a mapping of each model to its own
    Gaussian-mixture clusters for data without labels (then ``legend`` says so).
    ``captions`` maps a model to a line shown under its title (its key numbers).
    ``names`` are the class names the legends show, None for the label values.
    """
    folder = Path(folder)
    captions = captions or {}
    written = []
    for name, Z in embeddings.items():
        labels = y[name] if isinstance(y, Mapping) else y
        caption = captions.get(name, "")
        path = folder / f"scatter_{name}.png"
        written.append(scatter_2d(Z, labels, name, path, caption, legend, names))
        if Z.shape[1] == 3:
            path = folder / f"scatter3d_{name}.png"
            written.append(scatter_3d(Z, labels, name, path, caption, legend, names))
    written.append(
        scatter_side_by_side(
            embeddings, y, folder / "scatter_all.png", captions, legend, names
        )
    )
    return written


# Line plots give each model one colour, distinct from the digits' tab10 scatter.
MODEL_COLOURS = {
    "pca": "#4d4d4d",
    "fc": "#1f77b4",
    "cnn": "#d62728",
    "umap": "#9467bd",
    "tsne": "#8c564b",
}
_GAP_SHADE = 0.12  # light grey between tiles, on the white-is-zero scale
_PLAIN = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}")


def _colour(name: str) -> str:
    return MODEL_COLOURS.get(name, "#2ca02c")


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def image_mosaic(
    images: np.ndarray, n_cols: int, pad: int = 2, fill: float = _GAP_SHADE
) -> np.ndarray:
    """Tile ``images`` (n, h, w) row by row, ``n_cols`` a row, ``pad`` pixels apart.

    Returns
    -------
    ndarray of shape (n_rows * (h + pad) - pad, n_cols * (w + pad) - pad)
    """
    n, h, w = images.shape
    n_rows = -(-n // n_cols)
    mosaic = np.full(
        (n_rows * (h + pad) - pad, n_cols * (w + pad) - pad), fill, dtype=np.float32
    )
    for i, image in enumerate(images):
        top, left = (i // n_cols) * (h + pad), (i % n_cols) * (w + pad)
        mosaic[top : top + h, left : left + w] = image
    return mosaic


def reconstruction_grid(
    X: np.ndarray,
    X_hats: Mapping[str, np.ndarray],
    y: np.ndarray,
    path: str | os.PathLike,
    mse: Mapping[str, float | None] | None = None,
) -> Path:
    """The same test digits as originals (top row) and as each model rebuilds them.

    Parameters
    ----------
    X : ndarray of shape (n, h, w), or (n, 784) for 28x28 images, pixels in [0, 1]
    X_hats : dict of model name to ndarray of shape (n, h', w') (a model may see
        resized images) or (n, 784)
    y : ndarray of shape (n,) or None, the labels, shown above the columns
    mse : dict of model name to its test MSE, shown in the row label
    """
    mse = mse or {}
    rows = [("original", X)]
    for name, X_hat in X_hats.items():
        label = _title(name)
        if mse.get(name) is not None:
            label += f"\nMSE {mse[name]:.4f}"
        rows.append((label, X_hat))

    n = len(X)
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(0.5 * n + 1.8, 0.62 * len(rows) + 0.7), squeeze=False
    )
    for ax, (label, images) in zip(axes[:, 0], rows):
        tiles = np.clip(_as_tiles(images), 0.0, 1.0)
        ax.imshow(
            image_mosaic(tiles, n), cmap="gray_r", vmin=0, vmax=1, interpolation="none"
        )
        _bare(ax)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    top = axes[0, 0]
    width = _as_tiles(X).shape[2]
    if y is not None:
        top.xaxis.tick_top()
        top.set_xticks(
            [i * (width + 2) + width / 2 - 0.5 for i in range(n)],
            [str(int(label)) for label in y],
        )
    top.tick_params(length=0)
    fig.suptitle(
        "Reconstructions of the same test images (MSE per pixel over all test images)",
        fontsize=11,
    )
    fig.tight_layout(h_pad=0.3)
    return _save(fig, Path(path))


def _as_tiles(images: np.ndarray) -> np.ndarray:
    # (n, h, w) as is; flat (n, 784) rows are 28x28 (run folders before sizes varied).
    if images.ndim == 3:
        return images
    return images.reshape(len(images), IMAGE_HEIGHT, IMAGE_WIDTH)


def eigendigits(
    components: np.ndarray,
    explained_variance_ratio: np.ndarray,
    mean: np.ndarray,
    path: str | os.PathLike,
    max_shown: int = 50,
    image_size: tuple[int, int] = (IMAGE_HEIGHT, IMAGE_WIDTH),
) -> Path:
    """PCA's mean image and its first components as 28x28 images.

    Parameters
    ----------
    components : ndarray of shape (n_components, 784)
    explained_variance_ratio : ndarray of shape (n_components,)
    mean : ndarray of shape (784,)
    max_shown : int
        Draw at most this many components.
    image_size : (int, int)
        ``(height, width)`` of the images PCA was fit on.
    """
    n_shown = min(len(components), max_shown)
    n_tiles = n_shown + 1
    n_cols = min(n_tiles, 10)
    n_rows = -(-n_tiles // n_cols)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(1.25 * n_cols + 0.4, 1.45 * n_rows + 0.9),
        squeeze=False,
    )
    for ax in axes.flat:
        _bare(ax)
    shape = tuple(image_size)
    axes.flat[0].imshow(mean.reshape(shape), cmap="gray_r", vmin=0, vmax=1)
    axes.flat[0].set_title("mean", fontsize=9)
    for i in range(n_shown):
        image = components[i].reshape(shape)
        limit = float(np.abs(image).max()) or 1.0
        ax = axes.flat[i + 1]
        ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"PC{i + 1}: {100 * explained_variance_ratio[i]:.1f}%", fontsize=9)

    total = 100 * float(np.sum(explained_variance_ratio))
    shown = "" if n_shown == len(components) else f" (first {n_shown} shown)"
    fig.suptitle(
        f"PCA components ('eigendigits'): {len(components)} explain {total:.1f}% "
        f"of the pixel variance{shown}\nred positive, blue negative (a component's "
        "sign is arbitrary), each on its own scale",
        fontsize=10,
    )
    fig.tight_layout()
    return _save(fig, Path(path))


def latent_map(
    Z: np.ndarray,
    y: np.ndarray,
    images: np.ndarray,
    z1: np.ndarray,
    z2: np.ndarray,
    name: str,
    path: str | os.PathLike,
    caption: str = "",
    legend: str = LEGEND_TITLE,
    names: Sequence[str] | None = None,
) -> Path:
    """The 2D test embedding beside the decoder's images over the same plane.

    Parameters
    ----------
    Z : ndarray of shape (n, 2)
    y : ndarray of shape (n,)
    images : ndarray of shape (len(z2), len(z1), height, width)
        ``images[i, j]`` is the decoding of the point ``(z1[j], z2[i])``.
    z1, z2 : ndarray, increasing grid coordinates along each latent dimension
    """
    half1 = (z1[1] - z1[0]) / 2 if len(z1) > 1 else 0.5
    half2 = (z2[1] - z2[0]) / 2 if len(z2) > 1 else 0.5
    extent = (z1[0] - half1, z1[-1] + half1, z2[0] - half2, z2[-1] + half2)
    fig, (ax_z, ax_map) = plt.subplots(1, 2, figsize=(12.0, 5.8))
    _draw_2d(
        ax_z, Z, y, _with_caption(f"{_title(name)}: test embedding", caption), names
    )
    ax_z.set_xlim(extent[0], extent[1])
    ax_z.set_ylim(extent[2], extent[3])
    _legend(ax_z, x=1.0, title=legend)

    # Highest z2 at the top: imshow draws the first row of the mosaic at the top.
    tiles = np.clip(images[::-1], 0.0, 1.0).reshape(-1, *images.shape[2:])
    ax_map.imshow(
        image_mosaic(tiles, len(z1), pad=0),
        cmap="gray_r",
        vmin=0,
        vmax=1,
        extent=extent,
        aspect="auto",
        interpolation="none",
    )
    ax_map.set_title(
        f"{_title(name)}: decoder over the same plane\n"
        f"{len(z2)} x {len(z1)} grid, central 99% of the test embeddings"
    )
    ax_map.set_xlabel("dimension 1")
    ax_map.set_ylabel("dimension 2")
    fig.tight_layout(w_pad=4.0)
    return _save(fig, Path(path))


def plural(noun: str) -> str:
    """``digit`` -> ``digits``, ``class`` -> ``classes``."""
    return f"{noun}es" if noun.endswith(("s", "x", "sh", "ch")) else f"{noun}s"


def confusion_matrices(
    confusions: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    noun: str = LEGEND_TITLE,
    names: Sequence[str] | None = None,
) -> Path:
    """Each model's kNN confusion matrix (rows: true class, columns: predicted).

    Off-diagonal cells are shaded by the share of the row's images, on one scale for
    every model, so that the confusions stand out; the diagonal (the per-class
    accuracy) is written in grey. ``noun`` names a class ("digit"), ``names`` label
    the ticks (else the class indices do).
    """
    rates = {}
    for name, counts in confusions.items():
        totals = counts.sum(axis=1, keepdims=True)
        rates[name] = counts / np.maximum(totals, 1)
    off = [r[~np.eye(len(r), dtype=bool)] for r in rates.values()]
    vmax = max(float(max(o.max() for o in off)), 0.01)

    n = len(confusions)
    fig, axes = plt.subplots(
        1, n, figsize=(4.4 * n + 1.0, 4.9), squeeze=False, layout="constrained"
    )
    for ax, (name, rate) in zip(axes[0], rates.items()):
        shown = np.where(np.eye(len(rate), dtype=bool), np.nan, rate)
        cmap = plt.get_cmap("Reds").with_extremes(bad="#e8e8e8")
        image = ax.imshow(100 * shown, cmap=cmap, vmin=0, vmax=100 * vmax)
        for (i, j), value in np.ndenumerate(rate):
            if i == j or value >= 0.005:
                dark = i != j and value > 0.6 * vmax
                ax.text(
                    j,
                    i,
                    f"{100 * value:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    fontweight="bold" if i == j else "normal",
                    color="white" if dark else "black",
                )
        ticks = np.arange(len(rate))
        labels = [label_text(int(t), names) for t in ticks]
        ax.set_xticks(ticks, labels, rotation=90 if max(map(len, labels)) > 2 else 0)
        ax.set_yticks(ticks, labels)
        ax.set_xlabel(f"predicted {noun} (5-NN)")
        ax.set_ylabel(f"true {noun}")
        accuracy = np.trace(confusions[name]) / max(confusions[name].sum(), 1)
        ax.set_title(f"{_title(name)}\n5-NN accuracy {accuracy:.3f}", fontsize=11)
    fig.colorbar(
        image,
        ax=list(axes[0]),
        shrink=0.85,
        label=f"% of the true {noun}'s test images",
    )
    return _save(fig, Path(path))


def training_curves(
    logs: Mapping[str, Mapping[str, np.ndarray]], path: str | os.PathLike
) -> Path:
    """Training and validation loss per epoch, one panel per autoencoder.

    ``logs`` maps a model to arrays ``epoch``, ``train_loss`` and ``val_loss`` (NaN
    where an epoch has no value).
    """
    n = len(logs)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 3.8), squeeze=False)
    for ax, (name, log) in zip(axes[0], logs.items()):
        epoch = np.asarray(log["epoch"]) + 1
        for key, style in (("train_loss", "-o"), ("val_loss", "--s")):
            ax.plot(epoch, log[key], style, ms=3, label=key.replace("_", " "))
        val = np.asarray(log["val_loss"], dtype=float)
        if np.isfinite(val).any():
            best = int(np.nanargmin(val))
            ax.plot(epoch[best], val[best], "k*", ms=11, label="best (kept)")
        ax.set_yscale("log")
        # Plain numbers on the log axis: "0.05", not "5 x 10^-2".
        ax.yaxis.set_major_formatter(_PLAIN)
        ax.yaxis.set_minor_formatter(_PLAIN)
        ax.set_xlabel("epoch")
        ax.set_ylabel("MSE per pixel")
        ax.set_title(f"{_title(name)}: loss per epoch")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(frameon=False)
        if len(epoch) < 12:
            ax.set_xticks(epoch)
    fig.tight_layout()
    return _save(fig, Path(path))


def _metric_lines(ax, sizes, values, spreads) -> None:
    for name, mean in values.items():
        spread = spreads.get(name) if spreads else None
        ax.errorbar(
            sizes,
            mean,
            yerr=spread,
            fmt="-o",
            ms=4,
            capsize=3,
            color=_colour(name),
            label=_title(name),
        )
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("components (embedding dimension)")
    ax.grid(True, alpha=0.3)


def sweep_mse(
    sizes: list[int],
    mse: Mapping[str, np.ndarray],
    explained: np.ndarray | None,
    path: str | os.PathLike,
    spreads: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Reconstruction MSE against components for every model, beside PCA's
    cumulative explained variance.

    Parameters
    ----------
    sizes : list of int, the components of each run
    mse : dict of model name to ndarray of shape (len(sizes),), NaN where missing
    explained : ndarray of shape (K,) or None
        PCA's cumulative explained-variance ratio for 1..K components.
    spreads : dict of model name to the standard deviation over seeds, or None
    """
    n_panels = 2 if explained is not None else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(6.0 * n_panels, 4.4), squeeze=False)
    ax = axes[0, 0]
    _metric_lines(ax, sizes, mse, spreads)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_PLAIN)
    ax.yaxis.set_minor_formatter(_PLAIN)
    ax.set_ylabel("test reconstruction MSE per pixel")
    ax.set_title("Rate-distortion: reconstruction error")
    ax.legend(frameon=False)
    if explained is not None:
        ax = axes[0, 1]
        k = np.arange(1, len(explained) + 1)
        ax.plot(k, 100 * explained, "-", color=_colour("pca"), label="PCA")
        marked = [s for s in sizes if s <= len(explained)]
        ax.plot(marked, [100 * explained[s - 1] for s in marked], "o", ms=4, c="k")
        ax.set_xscale("log")
        ticks = sorted({1, *sizes})
        ax.set_xticks(ticks, [str(s) for s in ticks])
        ax.minorticks_off()
        ax.set_ylim(0, 100)
        ax.set_xlabel("components")
        ax.set_ylabel("cumulative explained variance, %")
        ax.set_title("PCA: share of the pixel variance kept")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save(fig, Path(path))


def sweep_metric(
    sizes: list[int],
    values: Mapping[str, np.ndarray],
    ylabel: str,
    title: str,
    path: str | os.PathLike,
    spreads: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """One metric against components, a line per model."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    _metric_lines(ax, sizes, values, spreads)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    return _save(fig, Path(path))
