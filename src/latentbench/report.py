"""Figures and a self-contained HTML report, rebuilt from a run folder alone.

``build_report(run_dir)`` reads what ``compare`` (or ``sweep``) saved, redraws every
figure into ``figures/`` and writes ``report.html``: one file with its scripts and
images inlined, so that it opens offline and prints to PDF.

Three kinds of folder are understood:

- a single run (``metrics.json`` of one seed);
- several seeds of one comparison (``status.json`` kind ``seeds``): sub-runs
  ``seed<s>/`` and the mean and spread in ``metrics.json``;
- a sweep over sizes (``sweep.json``): sub-runs ``d<k>/``.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latentbench import figures
from latentbench._io import read_npz, write_text
from latentbench.constants import MANIFOLD_MODEL_NAMES, N_CLASSES, QUALITY_COLUMNS
from latentbench.errors import RunFolderError

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"
N_CONFUSED_PAIRS = 5
# Points per model in the interactive scatter: enough to see every cluster, few
# enough that the browser stays responsive and the file small.
MAX_INTERACTIVE_POINTS = 5_000
TAB10 = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)

# column -> (heading, +1 if higher is better, -1 if lower, 0 if neither)
COLUMNS = {
    "recon_mse": ("MSE", -1),
    "knn_accuracy": ("5-NN acc.", 1),
    "silhouette": ("silhouette", 1),
    "trustworthiness": ("trustw.", 1),
    "gmm_ari": ("GMM ARI", 1),
    "gmm_nmi": ("GMM NMI", 1),
    "params": ("params", -1),
    "fit_seconds": ("fit s", -1),
    "epochs": ("epochs", 0),
}
QUALITY = QUALITY_COLUMNS
METRIC_NAMES = {
    "recon_mse": "reconstruction error (MSE per pixel)",
    "knn_accuracy": "5-NN accuracy",
    "silhouette": "silhouette",
    "trustworthiness": "trustworthiness",
    "gmm_ari": "Gaussian-mixture ARI",
    "gmm_nmi": "Gaussian-mixture NMI",
}


# --------------------------------------------------------------------------- reading


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def run_kind(run_dir: str | os.PathLike) -> str:
    """``"sweep"``, ``"seeds"`` or ``"run"``: what ``run_dir`` holds."""
    run_dir = Path(run_dir)
    status_path = run_dir / "status.json"
    status = read_json(status_path) if status_path.is_file() else {}
    if status.get("kind") == "sweep" or (run_dir / "sweep.json").is_file():
        return "sweep"
    if status.get("kind") == "seeds":
        return "seeds"
    if (run_dir / "metrics.json").is_file():
        return "run"
    raise RunFolderError(
        f"{run_dir} holds no metrics.json or sweep.json: not a finished latentbench "
        "run folder; pass the folder that compare or sweep wrote"
    )


def read_loss_log(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Lightning's CSV log as one value per epoch: ``epoch``, ``train_loss``,
    ``val_loss`` (NaN where missing; a resumed epoch keeps its last value)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    keys = ("train_loss", "val_loss")
    by_epoch: dict[int, dict[str, float]] = {}
    for row in rows:
        epoch = by_epoch.setdefault(int(row["epoch"]), {})
        for key in keys:
            if row.get(key):
                epoch[key] = float(row[key])
    epochs = sorted(by_epoch)
    log = {"epoch": np.array(epochs, dtype=np.int64)}
    for key in keys:
        log[key] = np.array([by_epoch[e].get(key, np.nan) for e in epochs])
    return log


def confusion(
    y: np.ndarray, y_pred: np.ndarray, n_classes: int = N_CLASSES
) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (y.astype(np.int64), y_pred.astype(np.int64)), 1)
    return counts


def confused_pairs(
    counts: np.ndarray, top: int = N_CONFUSED_PAIRS
) -> list[dict[str, Any]]:
    """The ``top`` digit pairs a classifier mixes up most, either way round.

    Returns
    -------
    list of dict
        ``a`` < ``b`` the digits, ``count`` the test images of either digit taken
        for the other, ``share`` that count over the test images of both digits.
    """
    pairs = []
    totals = counts.sum(axis=1)
    for a in range(len(counts)):
        for b in range(a + 1, len(counts)):
            count = int(counts[a, b] + counts[b, a])
            if count:
                share = count / max(int(totals[a] + totals[b]), 1)
                pairs.append({"a": a, "b": b, "count": count, "share": share})
    pairs.sort(key=lambda p: (-p["count"], p["a"], p["b"]))
    return pairs[:top]


class RunFolder:
    """What one run folder holds, read lazily.

    Parameters
    ----------
    run_dir : path
        A folder written by ``latentbench compare`` for one seed.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.dir = Path(run_dir)
        self.metrics = read_json(self.dir / "metrics.json")
        self.config = self._optional_json("config.json")
        self.environment = self._optional_json("environment.json")
        self.models = list(self.metrics["models"])
        self.n_components = int(self.metrics["n_components"])
        # Run folders from before labels were optional have no class_names.
        names = self.metrics.get("class_names", list(map(str, range(N_CLASSES))))
        self.class_names = names
        self.n_classes = len(names) if names is not None else None

    def _optional_json(self, name: str) -> dict[str, Any]:
        path = self.dir / name
        return read_json(path) if path.is_file() else {}

    def embedding(self, name: str) -> dict[str, np.ndarray]:
        """``Z`` (n, k) and ``y`` (n,) and, where saved, ``y_pred`` (n,); without
        labels ``clusters`` (n,) instead of ``y`` and ``y_pred``."""
        return read_npz(self.dir / "embeddings" / f"{name}.npz")

    def colours(self, name: str) -> np.ndarray:
        """What model ``name``'s test points are coloured by: labels, else its
        Gaussian-mixture clusters."""
        saved = self.embedding(name)
        return saved["y"] if "y" in saved else saved["clusters"]

    @property
    def legend(self) -> str:
        if self.class_names is None:
            return figures.LEGEND_TITLE_CLUSTERS
        return class_noun(self.metrics.get("dataset"))

    def confusions(self) -> dict[str, np.ndarray]:
        """Each model's 5-NN confusion counts, for models that saved predictions."""
        counts = {}
        for name in self.models:
            saved = self.embedding(name)
            if "y_pred" in saved:
                counts[name] = confusion(saved["y"], saved["y_pred"], self.n_classes)
        return counts

    def loss_logs(self) -> dict[str, dict[str, np.ndarray]]:
        logs = {}
        for name in self.models:
            path = self.dir / "models" / name / "log" / "metrics.csv"
            if path.is_file():
                logs[name] = read_loss_log(path)
        return logs


# ------------------------------------------------------------------------- figures


def _caption(row: Mapping[str, Any]) -> str:
    parts = []
    if row.get("knn_accuracy") is not None:
        parts.append(f"5-NN accuracy {row['knn_accuracy']:.3f}")
    if row.get("recon_mse") is not None:
        parts.append(f"MSE {row['recon_mse']:.4f}")
    return ", ".join(parts)


def draw_run_figures(run: RunFolder) -> dict[str, Path]:
    """Draw every figure the saved data allows into ``<run>/figures``.

    Returns
    -------
    dict
        Figure key (``scatter_all``, ``latent_map_fc``, ``reconstructions``, ...) to
        the file written, in the order the report shows them.
    """
    folder = run.dir / "figures"
    rows = run.metrics["models"]
    captions = {name: _caption(rows[name]) for name in run.models}
    embeddings = {name: run.embedding(name) for name in run.models}
    colours = {name: run.colours(name) for name in run.models}
    written = figures.embedding_figures(
        {name: e["Z"] for name, e in embeddings.items()},
        colours,
        folder,
        captions,
        run.legend,
        run.class_names,
    )
    drawn = {path.stem: path for path in written}

    for name in run.models:
        path = run.dir / "latent_maps" / f"{name}.npz"
        if path.is_file():
            grid = read_npz(path)
            drawn[f"latent_map_{name}"] = figures.latent_map(
                embeddings[name]["Z"],
                colours[name],
                grid["images"],
                grid["z1"],
                grid["z2"],
                name,
                folder / f"latent_map_{name}.png",
                captions[name],
                run.legend,
                run.class_names,
            )
    drawn.update(_draw_sample_figures(run, folder))
    return drawn


def _draw_sample_figures(run: RunFolder, folder: Path) -> dict[str, Path]:
    drawn = {}
    rows = run.metrics["models"]
    path = run.dir / "reconstructions.npz"
    if path.is_file():
        sample = read_npz(path)
        X_hats = {n: sample[f"X_hat_{n}"] for n in run.models if f"X_hat_{n}" in sample}
        mse = {name: rows[name].get("recon_mse") for name in X_hats}
        drawn["reconstructions"] = figures.reconstruction_grid(
            sample["X"], X_hats, sample.get("y"), folder / "reconstructions.png", mse
        )
    path = run.dir / "models" / "pca.npz"
    if path.is_file():
        pca = read_npz(path)
        drawn["eigendigits"] = figures.eigendigits(
            pca["components_"],
            pca["explained_variance_ratio_"],
            pca["mean_"],
            folder / "eigendigits.png",
            image_size=tuple(run.environment.get("image_size", (28, 28))),
        )
    counts = run.confusions()
    if counts:
        drawn["confusion"] = figures.confusion_matrices(
            counts, folder / "confusion.png", run.legend, run.class_names
        )
    logs = run.loss_logs()
    if logs:
        drawn["training_curves"] = figures.training_curves(
            logs, folder / "training_curves.png"
        )
    return drawn


# ------------------------------------------------------------------------ findings


def _fmt(value: Any, column: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if column in ("params", "epochs", "n_components"):
        return f"{int(value):,}"
    if column in ("fit_seconds", "total_seconds", "metric_seconds"):
        return f"{value:,.1f}"
    if column == "recon_mse":
        return f"{value:.4f}"
    return f"{value:.3f}"


def best_models(rows: Mapping[str, Mapping[str, Any]], column: str) -> list[str]:
    """The models with the best value of ``column`` (several on a tie); none when
    the column has no direction or fewer than two values."""
    direction = COLUMNS[column][1]
    values = {n: r.get(column) for n, r in rows.items() if r.get(column) is not None}
    if not direction or len(values) < 2:
        return []
    best = (max if direction > 0 else min)(values.values())
    return [name for name, value in values.items() if value == best]


def _gap(winner: float, other: float, column: str) -> str:
    if column == "recon_mse":
        return f"{100 * (other - winner) / other:.0f}% below"
    return f"{abs(winner - other):.3f} {'above' if other < winner else 'below'}"


def metric_finding(
    rows: Mapping[str, Mapping[str, Any]],
    column: str,
    spread: Mapping[str, Mapping[str, float]] | None = None,
) -> str | None:
    """One sentence: which model wins ``column`` and by how much over each other.

    With ``spread`` (standard deviations over seeds), each gap is said to exceed or
    to lie within the seeds' spread.
    """
    best = best_models(rows, column)
    if not best:
        return None
    title = figures.MODEL_TITLES
    label = METRIC_NAMES[column]
    if len(best) > 1:
        tied = " and ".join(title.get(n, n) for n in best)
        return f"{_upper_first(label)}: {tied} tie at {_fmt(rows[best[0]][column], column)}."
    winner = best[0]
    value = rows[winner][column]
    others = []
    for name, row in rows.items():
        if name == winner or row.get(column) is None:
            continue
        text = f"{_gap(value, row[column], column)} {title.get(name, name)} "
        text += f"({_fmt(row[column], column)})"
        if spread:
            noise = spread[winner].get(column, 0.0) + spread[name].get(column, 0.0)
            larger = abs(value - row[column]) > (noise or 0.0)
            text += "; beyond the seed spread" if larger else "; within the seed spread"
        others.append(text)
    word = "Lowest" if column == "recon_mse" else "Best"
    return (
        f"{word} {label}: {title.get(winner, winner)}, {_fmt(value, column)}, "
        + ", ".join(others)
        + "."
    )


def pair_text(pair: Mapping[str, Any], names: Sequence[str] | None = None) -> str:
    """A confused pair by class name where the data set has names: ``4/9`` for
    one-character names, ``Shirt vs T-shirt/top`` for longer ones."""
    a, b = (figures.label_text(pair[key], names) for key in ("a", "b"))
    return f"{a}/{b}" if len(a) == len(b) == 1 else f"{a} vs {b}"


def pairs_finding(
    confusions: Mapping[str, np.ndarray], names: Sequence[str] | None = None
) -> list[str]:
    """A sentence per model naming its five most confused class pairs."""
    sentences = []
    for name, counts in confusions.items():
        pairs = confused_pairs(counts)
        if not pairs:
            continue
        named = ", ".join(
            f"{pair_text(p, names)} ({p['count']:,}, {100 * p['share']:.1f}%)"
            for p in pairs
        )
        sentences.append(
            f"  {figures.MODEL_TITLES.get(name, name)} most often mixes up {named}."
        )
    return sentences


def class_noun(dataset: str | None) -> str:
    """What a class is called in legends and findings: a digit on MNIST."""
    return figures.LEGEND_TITLE if dataset in ("mnist", "mnist-5k", None) else "class"


def run_findings(
    rows: Mapping[str, Mapping[str, Any]],
    confusions: Mapping[str, np.ndarray],
    spread: Mapping[str, Mapping[str, float]] | None = None,
    noun: str = "digit",
    names: Sequence[str] | None = None,
) -> list[str]:
    """The findings paragraph of a comparison, as sentences, from the numbers only.

    ``noun`` names a class ("digit" on MNIST); ``names`` are the class names.
    """
    sentences = []
    wins: dict[str, int] = {}
    for column in QUALITY:
        sentence = metric_finding(rows, column, spread)
        if sentence:
            sentences.append(sentence)
            for name in best_models(rows, column):
                wins[name] = wins.get(name, 0) + 1
    if wins:
        top = max(wins.values())
        leaders = [figures.MODEL_TITLES.get(n, n) for n, w in wins.items() if w == top]
        sentences.insert(
            0,
            f"{' and '.join(leaders)} {'is' if len(leaders) == 1 else 'are'} best on "
            f"{top} of the {len(QUALITY)} quality measures below.",
        )
    fastest = best_models(rows, "fit_seconds")
    if fastest:
        name = fastest[0]
        params = rows[name].get("params")
        size = "" if params is None else f", {int(params):,} parameters"
        sentences.append(
            f"Cheapest to fit: {figures.MODEL_TITLES.get(name, name)} "
            f"({_fmt(rows[name]['fit_seconds'], 'fit_seconds')} s{size})."
        )
    no_decoder = [name for name in rows if name in MANIFOLD_MODEL_NAMES]
    if no_decoder:
        named = " and ".join(figures.MODEL_TITLES.get(n, n) for n in no_decoder)
        sentences.append(
            f"{named} {'has' if len(no_decoder) == 1 else 'have'} no decoder: no "
            "reconstruction error, reconstructions or decoded latent map, and no "
            "parameter count (the test images are placed by a transform fitted on a "
            "training subsample)."
        )
    if confusions:
        sentences.append(
            f"{noun.capitalize()} pairs the 5-NN classifier mixes up in each "
            f"embedding, either way round (test images, share of both "
            f"{figures.plural(noun)}' images):"
        )
        sentences.extend(pairs_finding(confusions, names))
    return sentences


# ---------------------------------------------------------------------------- HTML

CSS = """
:root { --ink: #1d1d1f; --muted: #5f6368; --rule: #d9d9de; --best: #e3f1e6; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 36px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--rule); }
h3 { font-size: 1rem; margin: 20px 0 6px; }
.sub, figcaption, .note { color: var(--muted); font-size: 0.9rem; }
nav { margin: 14px 0 0; font-size: 0.9rem; }
nav a { margin-right: 14px; color: #1a5fb4; text-decoration: none; }
.findings li { margin: 4px 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 6px 0 4px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); text-align: right;
  white-space: nowrap; }
th { font-weight: 600; background: #f6f6f8; }
td:first-child, th:first-child { text-align: left; }
td { font-variant-numeric: tabular-nums; }
td.best { font-weight: 700; background: var(--best); }
table.kv td { text-align: left; white-space: normal; word-break: break-all; }
table.kv td:first-child { white-space: nowrap; word-break: normal; color: var(--muted); }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; display: block; }
.plot { width: 100%; min-height: 460px; }
.print-only { display: none; }
code { font-size: 0.85rem; }
@media print {
  @page { size: A4; margin: 12mm; }
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  nav, .interactive { display: none !important; }
  .print-only { display: block; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure, table, .findings { break-inside: avoid; page-break-inside: avoid; }
  td.best { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
}
"""


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def png_data_uri(path: str | os.PathLike) -> str:
    """A PNG as a ``data:`` URI, to inline in the page."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def figure_html(path: Path, caption: str, alt: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return (
        f'<figure{cls}><img src="{png_data_uri(path)}" alt="{esc(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def metrics_table_html(
    rows: Mapping[str, Mapping[str, Any]],
    spread: Mapping[str, Mapping[str, float]] | None = None,
    columns: Sequence[str] = tuple(COLUMNS),
) -> str:
    """The headline table; the best value of each column is bold and shaded."""
    best = {column: best_models(rows, column) for column in columns}
    head = "".join(f"<th>{esc(COLUMNS[c][0])}</th>" for c in columns)
    body = []
    for name, row in rows.items():
        cells = [f"<td>{esc(figures.MODEL_TITLES.get(name, name))}</td>"]
        for column in columns:
            text = _fmt(row.get(column), column)
            if spread and spread.get(name, {}).get(column) is not None:
                text += f" ± {_fmt(spread[name][column], column)}"
            css = (
                ' class="best" title="best in this column"'
                if name in best[column]
                else ""
            )
            cells.append(f"<td{css}>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="table-wrap"><table><thead><tr><th>model</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _plain(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def key_value_table(items: Sequence[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><td>{esc(k)}</td><td>{esc(_plain(v))}</td></tr>" for k, v in items
    )
    return (
        f'<div class="table-wrap"><table class="kv"><tbody>{body}</tbody></table></div>'
    )


def pairs_table_html(
    confusions: Mapping[str, np.ndarray], names: Sequence[str] | None = None
) -> str:
    head = "".join(f"<th>#{i + 1}</th>" for i in range(N_CONFUSED_PAIRS))
    body = []
    for name, counts in confusions.items():
        cells = [
            f"<td>{esc(pair_text(p, names))}: {p['count']:,} "
            f"({100 * p['share']:.1f}%)</td>"
            for p in confused_pairs(counts)
        ]
        title = esc(figures.MODEL_TITLES.get(name, name))
        body.append(f"<tr><td>{title}</td>{''.join(cells)}</tr>")
    return (
        f'<div class="table-wrap"><table><thead><tr><th>model</th>{head}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _hex(label: int, n_classes: int) -> str:
    if n_classes <= len(TAB10):
        return TAB10[label]
    import matplotlib.colors

    return matplotlib.colors.to_hex(figures.class_colour(label, n_classes))


def scatter_figure(
    embeddings: Mapping[str, Mapping[str, np.ndarray]],
    legend: str = figures.LEGEND_TITLE,
    class_names: Sequence[str] | None = None,
) -> Any:
    """A plotly figure of the test embeddings, models side by side.

    2 components (or more, showing the first two): one scatter per model; 3
    components: one 3D scatter per model. Hover names the class (by
    ``class_names``, else by index) and the test image's index; clicking a class
    in the legend hides it in every panel.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(embeddings)
    k = embeddings[names[0]]["Z"].shape[1]
    is_3d = k == 3
    titles = [figures.MODEL_TITLES.get(n, n) for n in names]
    specs = [[{"type": "scene" if is_3d else "xy"} for _ in names]]
    fig = make_subplots(
        rows=1,
        cols=len(names),
        subplot_titles=titles,
        specs=specs,
        horizontal_spacing=0.04 if is_3d else 0.06,
    )
    for col, name in enumerate(names, start=1):
        saved = embeddings[name]
        Z = figures.plane(saved["Z"][:MAX_INTERACTIVE_POINTS])
        y = (saved["y"] if "y" in saved else saved["clusters"])[:MAX_INTERACTIVE_POINTS]
        n_classes = max(int(y.max()) + 1 if len(y) else 0, 1)
        for digit in range(n_classes):
            index = np.flatnonzero(y == digit)
            # plotly reads names as markup, and hover text also as %{...} fields:
            # a name is escaped and reaches the hover text as data.
            shown = esc(figures.label_text(digit, class_names))
            common = {
                "name": shown,
                "legendgroup": str(digit),
                "showlegend": col == 1,
                "mode": "markers",
                "customdata": [[shown, int(i)] for i in index],
                "hovertemplate": f"{esc(legend)} %{{customdata[0]}}<br>test image "
                f"#%{{customdata[1]}}<extra>{titles[col - 1]}</extra>",
            }
            coords = {"x": Z[index, 0].round(4), "y": Z[index, 1].round(4)}
            if is_3d:
                trace = go.Scatter3d(
                    **coords,
                    z=Z[index, 2].round(4),
                    **common,
                    marker={
                        "size": 2,
                        "color": _hex(digit, n_classes),
                        "opacity": 0.8,
                    },
                )
            else:
                trace = go.Scatter(
                    **coords,
                    **common,
                    marker={
                        "size": 4,
                        "color": _hex(digit, n_classes),
                        "opacity": 0.7,
                    },
                )
            fig.add_trace(trace, row=1, col=col)
    fig.update_layout(
        template="simple_white",
        height=520 if is_3d else 470,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
        legend={"title": {"text": legend}, "itemsizing": "constant"},
        hoverlabel={"bgcolor": "white"},
    )
    return fig


def plotly_html(fig: Any, div_id: str) -> str:
    """A div and the script that draws ``fig`` into it (plotly.js loaded once)."""
    import plotly.io as pio

    spec = pio.to_json(fig, validate=False).replace("</", "<\\/")
    config = json.dumps({"responsive": True, "displaylogo": False})
    return (
        f'<div id="{div_id}" class="plot interactive"></div>'
        f"<script>(function () {{ const fig = {spec};\n"
        f'Plotly.newPlot("{div_id}", fig.data, fig.layout, {config}); }})();</script>'
    )


def plotly_script() -> str:
    """plotly.js itself, to inline in the page's head: no CDN, works offline."""
    from plotly.offline import get_plotlyjs

    return f"<script>{get_plotlyjs()}</script>"


def page(
    title: str,
    subtitle: str,
    nav: Sequence[tuple[str, str]],
    body: str,
    scripts: str = "",
) -> str:
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style>{scripts}</head><body><main>"
        f'<header><h1>{esc(title)}</h1><p class="sub">{subtitle}</p>'
        f"<nav>{links}</nav></header>{body}</main></body></html>\n"
    )


def section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{content}</section>'


def findings_html(sentences: Sequence[str]) -> str:
    """A list of the sentences; those indented by two spaces nest under the one
    before."""
    items: list[str] = []
    for sentence in sentences:
        if sentence.startswith("  ") and items:
            items[-1] += f"<li>{esc(sentence.strip())}</li>"
            if "<ul>" not in items[-1]:
                head, item = items[-1].rsplit("<li>", 1)
                items[-1] = f"{head}<ul><li>{item}"
        else:
            items.append(f"<li>{esc(sentence)}")
    closed = [item + ("</ul>" if "<ul>" in item else "") + "</li>" for item in items]
    return f'<ul class="findings">{"".join(closed)}</ul>'


# ----------------------------------------------------------------- one-run sections


_FIGURE_TEXT = {
    "reconstructions": (
        "Reconstructions",
        (
            "The first two test images of each digit, as they are and as each model "
            "rebuilds them from its {k}-number code. The MSE in each row label is over "
            "the whole test set."
        ),
    ),
    "eigendigits": (
        "PCA components",
        (
            "PCA's mean image and its components as 28x28 images, each with the share of "
            "the pixel variance it explains."
        ),
    ),
    "confusion": (
        "Which digits each model confuses",
        (
            "A 5-nearest-neighbour classifier fit on the training embedding, on the test "
            "embedding: each row is a true digit, in % of its test images. The diagonal "
            "(grey) is per-digit accuracy; red cells are confusions, on one scale for "
            "every model."
        ),
    ),
    "training_curves": (
        "Training curves",
        (
            "Training and validation MSE per epoch; the star marks the epoch whose "
            "weights were kept (lowest validation loss)."
        ),
    ),
}


def _run_figure_sections(run: RunFolder, drawn: Mapping[str, Path]) -> list[str]:
    k = run.n_components
    parts = []
    maps = [key for key in drawn if key.startswith("latent_map_")]
    if maps:
        content = "".join(
            figure_html(
                drawn[key],
                "Left: the test embedding; right: the decoder's image at each point "
                "of a grid over the same plane (central 99% of the test codes).",
                f"latent map of {key.removeprefix('latent_map_')}",
            )
            for key in maps
        )
        parts.append(section("latent-maps", "The latent plane, decoded", content))
    statics = [key for key in drawn if key.startswith("scatter3d_")]
    if statics:
        content = "".join(
            figure_html(drawn[key], "Static 3D view of the test embedding.", key)
            for key in statics
        )
        parts.append(section("scatter-3d", "3D embeddings (static)", content))
    for key, (title, caption) in _FIGURE_TEXT.items():
        if key not in drawn:
            continue
        content = figure_html(drawn[key], esc(caption.format(k=k)), title)
        if key == "confusion":
            content += "<h3>Five most confused pairs</h3>" + pairs_table_html(
                run.confusions(), run.class_names
            )
            noun = run.legend
            content += (
                f'<p class="note">Test images of either {esc(noun)} taken for the '
                f"other, and their share of both {esc(figures.plural(noun))}' test "
                "images.</p>"
            )
        parts.append(section(key, title, content))
    return parts


def _embedding_section(run: RunFolder, drawn: Mapping[str, Path]) -> str:
    embeddings = {name: run.embedding(name) for name in run.models}
    n_test = len(embeddings[run.models[0]]["Z"])
    shown = min(n_test, MAX_INTERACTIVE_POINTS)
    k = run.n_components
    dims = "" if k in (2, 3) else f" (first two of {k} dimensions)"
    note = (
        f'<p class="note interactive">Interactive: {shown:,} of {n_test:,} test '
        f"images{dims}. Hover for the {esc(run.legend)} and the test image's index; "
        "drag to zoom, double-click to reset; click a legend entry to hide it.</p>"
    )
    content = note + plotly_html(
        scatter_figure(embeddings, run.legend, run.class_names), "scatter"
    )
    if "scatter_all" in drawn:
        content += figure_html(
            drawn["scatter_all"],
            f"All {n_test:,} test images{dims}, coloured by {run.legend}.",
            "test embeddings",
            css="print-only",
        )
    return section("embedding", "Test embeddings", content)


def provenance_section(
    config: Mapping[str, Any],
    environment: Mapping[str, Any],
    rows: Mapping[str, Mapping[str, Any]] | None = None,
    extra: Sequence[tuple[str, Any]] = (),
) -> str:
    """Settings, data source and hashes, versions and timings."""
    settings = key_value_table([(k, v) for k, v in config.items()])
    data_keys = ("dataset", "data_source", "data_location", "data_verified")
    data = [(k, environment[k]) for k in data_keys if k in environment]
    data += [
        (f"sha256 {k}", v) for k, v in environment.get("payload_sha256", {}).items()
    ]
    data += [
        (k, f"{environment[k]:,}")
        for k in ("n_train", "n_val", "n_test")
        if k in environment
    ]
    skip = {*data_keys, "payload_sha256", "n_train", "n_val", "n_test"}
    versions = [(k, v) for k, v in environment.items() if k not in skip]
    content = "<h3>Settings</h3>" + settings
    content += "<h3>Data</h3>" + key_value_table(data)
    content += "<h3>Versions and machine</h3>" + key_value_table([*versions, *extra])
    if rows:
        timing_columns = ("fit_seconds", "metric_seconds", "total_seconds")
        timings = [
            (
                f"{figures.MODEL_TITLES.get(name, name)} seconds",
                ", ".join(
                    f"{c.removesuffix('_seconds')} {_fmt(row.get(c), c)}"
                    for c in timing_columns
                    if row.get(c) is not None
                ),
            )
            for name, row in rows.items()
        ]
        content += "<h3>Timings</h3>" + key_value_table(timings)
    return section("settings", "Settings, data and versions", content)


def _subtitle(metrics: Mapping[str, Any], environment: Mapping[str, Any]) -> str:
    started = environment.get("started", "")
    return esc(
        f"{metrics['dataset']} ({metrics['data_source']}), "
        f"{metrics['n_train']:,} training and {metrics['n_test']:,} test images"
        + (f" · run started {started}" if started else "")
        + f" · report written {dt.datetime.now().astimezone():%Y-%m-%d %H:%M}"
    )


_TABLE_NOTE = (
    '<p class="note">Bold and shaded: the best value in the column (lowest MSE, '
    "parameters and fit time; highest of the others). MSE per pixel on [0, 1]; "
    "5-NN accuracy fit on the training embedding; silhouette of the digit classes; "
    "trustworthiness with 5 neighbours; the ARI and NMI against the labels of a "
    "Gaussian mixture with one component per class.</p>"
)
_NAV = [
    ("findings", "Findings"),
    ("results", "Results"),
    ("embedding", "Embeddings"),
    ("reconstructions", "Reconstructions"),
    ("confusion", "Confusions"),
    ("settings", "Settings"),
]


def skipped_findings(metrics: Mapping[str, Any]) -> list[str]:
    """A sentence naming the metrics a run skipped and why; none if it skipped none."""
    skipped = metrics.get("skipped_metrics") or {}
    if not skipped:
        return []
    reasons = "; ".join(sorted(set(skipped.values())))
    names = ", ".join(METRIC_NAMES[m] for m in skipped)
    sentence = (
        f"Skipped {names}: {reasons}. The scatter plots are coloured by "
        "Gaussian-mixture cluster instead of class, and there is no confusion matrix."
    )
    return [sentence]


def render_run(run: RunFolder, drawn: Mapping[str, Path]) -> str:
    """The HTML of a single run's report."""
    rows = run.metrics["models"]
    confusions = run.confusions()
    sentences = skipped_findings(run.metrics) + run_findings(
        rows, confusions, noun=run.legend, names=run.class_names
    )
    body = section("findings", "Findings", findings_html(sentences))
    body += section("results", "Results", metrics_table_html(rows) + _TABLE_NOTE)
    body += _embedding_section(run, drawn)
    body += "".join(_run_figure_sections(run, drawn))
    body += provenance_section(run.config, run.environment, rows)
    title = f"PCA against autoencoders: {run.n_components} components"
    return page(
        title, _subtitle(run.metrics, run.environment), _NAV, body, plotly_script()
    )


# ------------------------------------------------------------------- several seeds


def seeds_findings(run_dir: Path) -> list[str]:
    """Findings of a seeds folder: on the means, each gap set against the spread;
    the confused pairs counted over every seed."""
    metrics = read_json(run_dir / "metrics.json")
    seeds = metrics["seeds"]
    confusions: dict[str, np.ndarray] = {}
    names = None
    for seed in seeds:
        run = RunFolder(run_dir / f"seed{seed}")
        names = run.class_names
        for name, counts in run.confusions().items():
            confusions[name] = confusions.get(name, 0) + counts
    sentences = [
        (
            f"Means over {len(seeds)} seeds ({', '.join(map(str, seeds))}); a gap is "
            "beyond the seed spread when it exceeds the two standard deviations added."
        )
    ]
    noun = class_noun(metrics.get("dataset"))
    return sentences + run_findings(
        metrics["models"], confusions, metrics["std"], noun=noun, names=names
    )


def render_seeds(run_dir: Path, first: RunFolder, drawn: Mapping[str, Path]) -> str:
    """The HTML of a comparison repeated over seeds: mean ± spread, then the first
    seed's figures."""
    metrics = read_json(run_dir / "metrics.json")
    rows, spread = metrics["models"], metrics["std"]
    seeds = metrics["seeds"]
    sentences = seeds_findings(run_dir)
    per_seed = "".join(
        f"<h3>Seed {esc(seed)}</h3>"
        + metrics_table_html(metrics["per_seed"][str(seed)])
        + f'<p class="note"><a href="seed{esc(seed)}/{REPORT_NAME}">full report of '
        f"seed {esc(seed)}</a></p>"
        for seed in seeds
    )
    body = section("findings", "Findings", findings_html(sentences))
    body += section(
        "results",
        "Results: mean ± standard deviation over seeds",
        metrics_table_html(rows, spread) + _TABLE_NOTE,
    )
    body += section("per-seed", "Each seed", per_seed)
    detail = f'<p class="note">The figures below are seed {seeds[0]}\'s.</p>'
    body += detail + _embedding_section(first, drawn)
    body += "".join(_run_figure_sections(first, drawn))
    body += provenance_section(
        read_json(run_dir / "config.json"), first.environment, rows
    )
    title = (
        f"PCA against autoencoders: {metrics['n_components']} components, "
        f"{len(seeds)} seeds"
    )
    return page(
        title, _subtitle(metrics, first.environment), _NAV, body, plotly_script()
    )


# --------------------------------------------------------------------------- sweep


def _series(sweep: Mapping[str, Any], column: str) -> tuple[dict, dict]:
    sizes = sweep["sizes"]
    values, spreads = {}, {}
    for name in sweep["models"]:
        rows = {r["n_components"]: r for r in sweep["rows"] if r["model"] == name}
        values[name] = np.array(
            [
                np.nan if rows.get(k, {}).get(column) is None else rows[k][column]
                for k in sizes
            ],
            dtype=float,
        )
        spreads[name] = np.array(
            [rows.get(k, {}).get(f"{column}_std") or 0.0 for k in sizes], dtype=float
        )
    if len(sweep["seeds"]) < 2:
        spreads = {}
    return values, spreads


def draw_sweep_figures(sweep_dir: Path, sweep: Mapping[str, Any]) -> dict[str, Path]:
    """MSE against components (beside PCA's explained variance), and kNN accuracy,
    silhouette and trustworthiness against components."""
    folder = sweep_dir / "figures"
    sizes = sweep["sizes"]
    explained = sweep.get("pca_explained_variance_ratio")
    curve = np.cumsum(explained) if explained else None
    mse, mse_spread = _series(sweep, "recon_mse")
    drawn = {
        "mse_vs_components": figures.sweep_mse(
            sizes, mse, curve, folder / "mse_vs_components.png", mse_spread
        )
    }
    for column, title in (
        ("knn_accuracy", "5-NN accuracy in the embedding"),
        ("trustworthiness", "Trustworthiness (5 neighbours)"),
    ):
        values, spread = _series(sweep, column)
        drawn[f"{column}_vs_components"] = figures.sweep_metric(
            sizes,
            values,
            COLUMNS[column][0],
            title,
            folder / f"{column}_vs_components.png",
            spread,
        )
    return drawn


def _ranges(sizes: Sequence[int]) -> str:
    return ", ".join(str(s) for s in sizes)


def sweep_findings(sweep: Mapping[str, Any]) -> list[str]:
    """Which model wins each metric at which sizes, and the gaps at the ends."""
    sizes = sweep["sizes"]
    title = figures.MODEL_TITLES
    sentences = []
    for column in ("recon_mse", "knn_accuracy", "trustworthiness"):
        values, _ = _series(sweep, column)
        winners: dict[str, list[int]] = {}
        for i, k in enumerate(sizes):
            rows = {n: {column: v[i]} for n, v in values.items() if not np.isnan(v[i])}
            for name in best_models(rows, column):
                winners.setdefault(name, []).append(k)
        if not winners:
            continue
        parts = [
            f"{title.get(n, n)} at {_ranges(ks)} components"
            for n, ks in winners.items()
        ]
        word = "Lowest" if column == "recon_mse" else "Best"
        sentences.append(f"{word} {METRIC_NAMES[column]}: {'; '.join(parts)}.")
        for i in sorted({0, len(sizes) - 1}):
            rows = {n: {column: v[i]} for n, v in values.items() if not np.isnan(v[i])}
            shown = ", ".join(
                f"{title.get(n, n)} {_fmt(r[column], column)}" for n, r in rows.items()
            )
            sentences.append(f"  At {sizes[i]} components: {shown}.")
    explained = sweep.get("pca_explained_variance_ratio")
    if explained:
        curve = np.cumsum(explained)
        kept = ", ".join(
            f"{100 * curve[k - 1]:.0f}% at {k}" for k in sizes if k <= len(curve)
        )
        sentences.append(f"PCA keeps this share of the pixel variance: {kept}.")
    return sentences


def sweep_table_html(sweep: Mapping[str, Any], column: str) -> str:
    """Rows: components; columns: models; the best model of each row marked."""
    values, spreads = _series(sweep, column)
    names = list(values)
    head = "".join(f"<th>{esc(figures.MODEL_TITLES.get(n, n))}</th>" for n in names)
    explained = sweep.get("pca_explained_variance_ratio")
    curve = np.cumsum(explained) if explained else None
    if curve is not None and column == "recon_mse":
        head += "<th>PCA explained var.</th>"
    body = []
    for i, k in enumerate(sweep["sizes"]):
        rows = {n: {column: v[i]} for n, v in values.items() if not np.isnan(v[i])}
        best = best_models(rows, column)
        cells = [f"<td>{k}</td>"]
        for name in names:
            text = _fmt(values[name][i], column)
            if spreads:
                text += f" ± {_fmt(spreads[name][i], column)}"
            css = ' class="best"' if name in best else ""
            cells.append(f"<td{css}>{esc(text)}</td>")
        if curve is not None and column == "recon_mse":
            share = f"{100 * curve[k - 1]:.1f}%" if k <= len(curve) else "–"
            cells.append(f"<td>{share}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="table-wrap"><table><thead><tr><th>components</th>{head}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def render_sweep(
    sweep_dir: Path, sweep: Mapping[str, Any], drawn: Mapping[str, Path]
) -> str:
    """The HTML of a sweep's report."""
    seeds = sweep["seeds"]
    spread_note = (
        f" Mean ± standard deviation over seeds {', '.join(map(str, seeds))}."
        if len(seeds) > 1
        else ""
    )
    body = section("findings", "Findings", findings_html(sweep_findings(sweep)))
    tables = ""
    for column in ("recon_mse", "knn_accuracy"):
        tables += f"<h3>{esc(_upper_first(METRIC_NAMES[column]))}</h3>"
        tables += sweep_table_html(sweep, column)
    tables += (
        f'<p class="note">Bold and shaded: the best model at each size.{spread_note} '
        "Every metric of every run is in sweep.csv.</p>"
    )
    body += section("results", "Results by size", tables)
    captions = {
        "mse_vs_components": "Left: test reconstruction MSE against the number of "
        "components, every model (log scales). Right: PCA's cumulative explained "
        "variance; dots mark the sizes run.",
        "knn_accuracy_vs_components": "5-NN accuracy of the test embedding against "
        "the number of components.",
        "trustworthiness_vs_components": "Trustworthiness (do embedding neighbours "
        "stay pixel neighbours?) against the number of components.",
    }
    content = "".join(figure_html(drawn[key], esc(captions[key]), key) for key in drawn)
    body += section("figures", "Against the number of components", content)
    links = "".join(
        f'<tr><td>{r["n_components"]}</td><td><a href="{esc(r["folder"])}/'
        f'{REPORT_NAME}">{esc(r["folder"])}/{REPORT_NAME}</a></td>'
        f"<td>{'reused' if r['reused'] else 'computed'}</td>"
        f"<td>{_fmt(r['seconds'], 'total_seconds')}</td></tr>"
        for r in sweep["runs"]
    )
    body += section(
        "runs",
        "The runs",
        '<div class="table-wrap"><table><thead><tr><th>components</th><th>report</th>'
        "<th>this sweep</th><th>compute s</th></tr></thead>"
        f"<tbody>{links}</tbody></table></div>",
    )
    first = sweep_dir / sweep["runs"][0]["folder"]
    env_dir = first / f"seed{seeds[0]}" if len(seeds) > 1 else first
    environment = read_json(env_dir / "environment.json")
    extra = [("sweep wall seconds", _fmt(sweep.get("wall_seconds"), "total_seconds"))]
    body += provenance_section(sweep["config"], environment, None, extra)
    nav = [
        ("findings", "Findings"),
        ("results", "Results"),
        ("figures", "Figures"),
        ("runs", "Runs"),
        ("settings", "Settings"),
    ]
    title = f"PCA against autoencoders: sweep over {len(sweep['sizes'])} sizes"
    return page(title, _subtitle(sweep, environment), nav, body)


# ---------------------------------------------------------------------- entry point


def findings(run_dir: str | os.PathLike) -> list[str]:
    """The findings sentences of any run folder, as its report states them."""
    run_dir = Path(run_dir)
    kind = run_kind(run_dir)
    if kind == "sweep":
        return sweep_findings(read_json(run_dir / "sweep.json"))
    if kind == "seeds":
        return seeds_findings(run_dir)
    run = RunFolder(run_dir)
    return run_findings(
        run.metrics["models"], run.confusions(), noun=run.legend, names=run.class_names
    )


def build_report(run_dir: str | os.PathLike) -> Path:
    """Redraw the figures of ``run_dir`` and write its ``report.html``.

    Parameters
    ----------
    run_dir : path
        A folder written by ``latentbench compare`` (one seed or several) or by
        ``latentbench sweep``.

    Returns
    -------
    Path
        The report written.
    """
    run_dir = Path(run_dir)
    kind = run_kind(run_dir)
    if kind == "sweep":
        sweep = read_json(run_dir / "sweep.json")
        text = render_sweep(run_dir, sweep, draw_sweep_figures(run_dir, sweep))
    elif kind == "seeds":
        seeds = read_json(run_dir / "metrics.json")["seeds"]
        first = RunFolder(run_dir / f"seed{seeds[0]}")
        text = render_seeds(run_dir, first, draw_run_figures(first))
    else:
        run = RunFolder(run_dir)
        text = render_run(run, draw_run_figures(run))
    path = run_dir / REPORT_NAME
    write_text(path, text)
    logger.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path
