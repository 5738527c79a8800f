"""Scatter plots of test embeddings, coloured by class."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import matplotlib.pyplot as plt
import numpy as np

from latentbench._io import atomic_path

MODEL_TITLES = {"pca": "PCA", "fc": "Fully connected AE", "cnn": "Convolutional AE"}
_POINT_SIZE = 2.0
_DPI = 120


def _title(name: str) -> str:
    return MODEL_TITLES.get(name, name)


def _with_caption(title: str, caption: str) -> str:
    return f"{title}\n{caption}" if caption else title


def _draw_2d(ax, Z: np.ndarray, y: np.ndarray, title: str) -> None:
    cmap = plt.get_cmap("tab10")
    for label in np.unique(y):
        mask = y == label
        ax.scatter(
            Z[mask, 0],
            Z[mask, 1],
            s=_POINT_SIZE,
            color=cmap(int(label) % 10),
            alpha=0.6,
            linewidths=0,
            label=str(label),
            rasterized=True,
        )
    ax.set_title(title)
    dims = Z.shape[1]
    suffix = f" of {dims}" if dims > 2 else ""
    ax.set_xlabel(f"dimension 1{suffix}")
    ax.set_ylabel(f"dimension 2{suffix}")


def _legend(fig_or_ax, x: float = 1.0) -> None:
    fig_or_ax.legend(
        title="digit",
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
    Z: np.ndarray, y: np.ndarray, name: str, path: str | os.PathLike, caption: str = ""
) -> Path:
    """Plot the first two dimensions of ``Z`` (n, k), one colour per label."""
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    _draw_2d(ax, Z, y, _with_caption(f"{_title(name)}: test embedding", caption))
    _legend(ax)
    return _save(fig, Path(path))


def scatter_3d(
    Z: np.ndarray, y: np.ndarray, name: str, path: str | os.PathLike, caption: str = ""
) -> Path:
    """Plot a 3D embedding ``Z`` (n, 3), one colour per label."""
    fig = plt.figure(figsize=(7.0, 6.0))
    ax = fig.add_subplot(projection="3d")
    cmap = plt.get_cmap("tab10")
    for label in np.unique(y):
        mask = y == label
        ax.scatter(
            Z[mask, 0],
            Z[mask, 1],
            Z[mask, 2],
            s=2 * _POINT_SIZE,  # depth thins points out; draw them larger
            color=cmap(int(label) % 10),
            alpha=0.7,
            linewidths=0,
            label=str(label),
        )
    ax.set_title(_with_caption(f"{_title(name)}: test embedding (3D)", caption))
    ax.set_xlabel("dimension 1")
    ax.set_ylabel("dimension 2")
    ax.set_zlabel("dimension 3")
    _legend(ax, x=1.12)  # clear of the z axis label
    return _save(fig, Path(path))


def scatter_side_by_side(
    embeddings: Mapping[str, np.ndarray],
    y: np.ndarray,
    path: str | os.PathLike,
    captions: Mapping[str, str] | None = None,
) -> Path:
    """All models' 2D scatters in one row, sharing a legend."""
    captions = captions or {}
    n = len(embeddings)
    fig, axes = plt.subplots(1, n, figsize=(5.0 * n, 4.8), squeeze=False)
    for ax, (name, Z) in zip(axes[0], embeddings.items()):
        _draw_2d(ax, Z, y, _with_caption(_title(name), captions.get(name, "")))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        title="digit",
        markerscale=5,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )
    fig.tight_layout()
    return _save(fig, Path(path))


def embedding_figures(
    embeddings: Mapping[str, np.ndarray],
    y: np.ndarray,
    folder: str | os.PathLike,
    captions: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write every scatter figure of a comparison into ``folder``.

    ``captions`` maps a model to a line shown under its title (its key numbers).
    """
    folder = Path(folder)
    captions = captions or {}
    written = []
    for name, Z in embeddings.items():
        path = folder / f"scatter_{name}.png"
        written.append(scatter_2d(Z, y, name, path, captions.get(name, "")))
        if Z.shape[1] == 3:
            path = folder / f"scatter3d_{name}.png"
            written.append(scatter_3d(Z, y, name, path, captions.get(name, "")))
    written.append(
        scatter_side_by_side(embeddings, y, folder / "scatter_all.png", captions)
    )
    return written
