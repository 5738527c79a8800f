"""A comparison repeated over seeds, and over embedding sizes.

``run_seeds`` runs one comparison per seed into ``<out>/seed<s>/`` and writes the
mean and the standard deviation of every metric. ``run_sweep`` runs the comparison
at each size into ``<sweep>/d<k>/`` (a single run, or a seeds folder when there are
several seeds) and gathers the results into ``sweep.json`` and ``sweep.csv``.

A sub-run that is already complete with the same settings (its ``config.json``,
where the data lives aside) and the same data (its payload hashes) is reused, not
recomputed; an interrupted one is resumed.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latentbench._io import read_npz, write_json, write_text
from latentbench.compare import (
    METRIC_COLUMNS,
    prepare_run_dir,
    read_status,
    resume_compare,
    run_compare,
)
from latentbench.config import CompareConfig
from latentbench.constants import TSNE_MAX_COMPONENTS
from latentbench.data import load_dataset
from latentbench.errors import ConfigError, RunFolderError
from latentbench.report import build_report

logger = logging.getLogger(__name__)

SWEEP_SIZES = (2, 3, 5, 10, 20, 30, 50)
# Settings that do not change what a run computes: where the data lives.
_IGNORED_SETTINGS = ("data_dir",)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _IGNORED_SETTINGS}


def settings_difference(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """``name: stored -> wanted`` for each setting that differs (data_dir aside)."""
    stored, wanted = _settings(stored), _settings(wanted)
    keys = sorted(set(stored) | set(wanted))
    return [
        f"{k} {stored.get(k)!r} there, {wanted.get(k)!r} here"
        for k in keys
        if stored.get(k) != wanted.get(k)
    ]


def reuse_or_run(
    config: CompareConfig,
    run_dir: Path,
    progress: bool,
    data_sha256: dict[str, str] | None = None,
) -> tuple[dict[str, Any], bool]:
    """The metrics of ``config`` in ``run_dir``: reused when the folder already holds
    them, resumed when it holds them in part, computed otherwise.

    Returns
    -------
    (metrics, reused)

    Raises
    ------
    RunFolderError
        If ``run_dir`` holds a run with other settings or other data.
    """
    if not (run_dir / "config.json").is_file():
        return run_compare(config, run_dir, progress=progress), False
    check_same_run(config, run_dir, data_sha256)
    if read_status(run_dir) == "complete":
        logger.info("%s: complete with the same settings, reused", run_dir)
        return _read_json(run_dir / "metrics.json"), True
    logger.info("%s: interrupted earlier, resuming", run_dir)
    return resume_compare(run_dir, progress=progress), False


def check_same_run(
    config: CompareConfig, run_dir: Path, data_sha256: dict[str, str] | None
) -> None:
    """Refuse ``run_dir`` if it holds a run of other settings or other data.

    A folder without ``config.json`` (new, or not yet started) passes.
    """
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        return
    wanted = config.model_dump(mode="json")
    differences = settings_difference(_read_json(config_path), wanted)
    if differences:
        raise RunFolderError(
            f"{run_dir} holds a run with other settings ({'; '.join(differences)}); "
            "choose another --out, or remove that folder to recompute it"
        )
    env_path = run_dir / "environment.json"
    if data_sha256 is not None and env_path.is_file():
        stored = _read_json(env_path).get("payload_sha256")
        if stored != data_sha256:
            raise RunFolderError(
                f"{run_dir} was computed on other data (payload SHA-256 {stored} "
                f"there, {data_sha256} here); choose another --out"
            )


def aggregate(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation (ddof=1; 0 for one seed) over seeds.

    Parameters
    ----------
    per_seed : dict of seed to that seed's ``metrics.json`` content

    Returns
    -------
    dict
        ``metrics.json`` of a seeds folder: ``models`` holds the means in the
        layout of a single run, ``std`` the standard deviations, ``per_seed`` each
        seed's rows.
    """
    seeds = list(per_seed)
    first = per_seed[seeds[0]]
    means: dict[str, dict[str, Any]] = {}
    spreads: dict[str, dict[str, Any]] = {}
    for name in first["models"]:
        means[name], spreads[name] = {}, {}
        for column in (*METRIC_COLUMNS, "metric_seconds", "total_seconds"):
            values = [per_seed[s]["models"][name].get(column) for s in seeds]
            if any(v is None for v in values):
                means[name][column] = spreads[name][column] = None
                continue
            values = np.asarray(values, dtype=float)
            means[name][column] = float(values.mean())
            spreads[name][column] = (
                float(values.std(ddof=1)) if len(values) > 1 else 0.0
            )
    return {
        **{k: v for k, v in first.items() if k != "models"},
        "seeds": seeds,
        "models": means,
        "std": spreads,
        "per_seed": {str(s): per_seed[s]["models"] for s in seeds},
    }


def _prepare_group_dir(out_dir: Path, kind: str, reuse: bool) -> Path:
    """A folder for several runs: new, or (with ``reuse``) one of the same kind."""
    status = out_dir / "status.json"
    if reuse and status.is_file() and _read_json(status).get("kind") == kind:
        return out_dir
    if reuse and status.is_file():
        raise RunFolderError(
            f"{out_dir} holds a {_read_json(status).get('kind', 'single')} run, not "
            f"a {kind} folder; choose another --out"
        )
    return prepare_run_dir(out_dir)


def run_seeds(
    config: CompareConfig,
    seeds: Sequence[int],
    out_dir: str | os.PathLike,
    progress: bool = True,
    reuse: bool = False,
    data_sha256: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the comparison once per seed into ``<out_dir>/seed<s>/`` and aggregate.

    Writes ``config.json`` (the settings and the seeds), ``metrics.json`` (see
    :func:`aggregate`), ``metrics.csv`` (means, then ``<metric>_std`` columns),
    ``report.html`` and ``status.json`` (kind ``seeds``).

    Parameters
    ----------
    reuse : bool
        Accept a folder that holds some of these seeds already and reuse them
        (a sweep); otherwise the folder must be new or empty, as for ``compare``.
    """
    out_dir = _prepare_group_dir(Path(out_dir), "seeds", reuse)
    write_json(out_dir / "status.json", {"state": "running", "kind": "seeds"})
    settings = config.model_dump(mode="json")
    settings.pop("seed")
    write_json(out_dir / "config.json", {**settings, "seeds": list(seeds)})

    per_seed, reused = {}, []
    for seed in seeds:
        seed_config = config.model_copy(update={"seed": seed})
        sub_dir = out_dir / f"seed{seed}"
        per_seed[seed], was_reused = reuse_or_run(
            seed_config, sub_dir, progress, data_sha256
        )
        if was_reused:
            reused.append(seed)

    metrics = aggregate(per_seed)
    write_json(out_dir / "metrics.json", metrics)
    write_text(out_dir / "metrics.csv", _seeds_csv(metrics))
    build_report(out_dir)
    write_json(
        out_dir / "status.json",
        {"state": "complete", "kind": "seeds", "reused_seeds": reused},
    )
    return metrics


def _seeds_csv(metrics: dict[str, Any]) -> str:
    """One row a model: the means, then a ``<metric>_std`` column for each."""
    columns = ["model"]
    for column in METRIC_COLUMNS:
        columns += [column, f"{column}_std"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for name, row in metrics["models"].items():
        spread = {f"{k}_std": v for k, v in metrics["std"][name].items()}
        cells = {"model": name, **row, **spread}
        writer.writerow({k: "" if v is None else v for k, v in cells.items()})
    return buffer.getvalue()


def run_sweep(
    config: CompareConfig,
    sizes: Sequence[int] = SWEEP_SIZES,
    seeds: Sequence[int] = (0,),
    out_dir: str | os.PathLike = "runs/sweep",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the comparison at every size in ``sizes`` and gather the results.

    Parameters
    ----------
    config : CompareConfig
        Every setting but ``n_components`` (and ``seed``, when ``seeds`` has more
        than one), which the sweep sets.
    sizes : sequence of int
        Embedding dimensions; each runs into ``<out_dir>/d<k>/``.
    seeds : sequence of int
        One seed: ``d<k>/`` is a single run with that seed. Several: ``d<k>/`` holds
        ``seed<s>/`` sub-runs and their mean and spread.
    out_dir : path
        New, empty, or a sweep folder written before: its finished sizes with the
        same settings are reused.

    Returns
    -------
    dict
        The content of ``sweep.json``.
    """
    start = time.perf_counter()
    too_many = [k for k in sizes if k > TSNE_MAX_COMPONENTS]
    if "tsne" in config.models and too_many:
        raise ConfigError(
            f"tsne embeds into at most {TSNE_MAX_COMPONENTS} dimensions, but the "
            f"sweep asks for {', '.join(map(str, too_many))}; drop tsne from "
            f"the models or keep the sizes at {TSNE_MAX_COMPONENTS} or less"
        )
    out_dir = _prepare_group_dir(Path(out_dir), "sweep", reuse=True)
    data = load_dataset(config.dataset, config.data_dir, seed=config.seed)
    hashes = data.payload_sha256
    del data

    sizes = sorted(set(sizes))
    # Every size a folder of earlier work may hold is checked before anything is
    # written, so a refused sweep leaves a finished one as it was.
    for k in sizes:
        sized = config.model_copy(update=config.with_code_size(k))
        for seed in seeds:
            run_dir = out_dir / f"d{k}" / (f"seed{seed}" if len(seeds) > 1 else "")
            check_same_run(sized.model_copy(update={"seed": seed}), run_dir, hashes)
    write_json(out_dir / "status.json", {"state": "running", "kind": "sweep"})
    results, runs = {}, []
    for k in sizes:
        run_start = time.perf_counter()
        sized = config.model_copy(update=config.with_code_size(k))
        folder = out_dir / f"d{k}"
        if len(seeds) > 1:
            results[k] = run_seeds(sized, seeds, folder, progress, True, hashes)
            reused = _read_json(folder / "status.json")["reused_seeds"] == list(seeds)
        else:
            sized = sized.model_copy(update={"seed": seeds[0]})
            results[k], reused = reuse_or_run(sized, folder, progress, hashes)
        runs.append(
            {
                "n_components": k,
                "folder": folder.name,
                "reused": reused,
                "seconds": _compute_seconds(results[k]),
                "wall_seconds": round(time.perf_counter() - run_start, 3),
            }
        )
        logger.info(
            "d%d: %s",
            k,
            "reused" if reused else f"done in {runs[-1]['wall_seconds']} s",
        )

    sweep = _sweep_record(config, sizes, seeds, results, runs, out_dir)
    sweep["wall_seconds"] = round(time.perf_counter() - start, 3)
    write_json(out_dir / "sweep.json", sweep)
    write_text(out_dir / "sweep.csv", sweep_csv(sweep))
    build_report(out_dir)
    write_json(out_dir / "status.json", {"state": "complete", "kind": "sweep"})
    return sweep


def _compute_seconds(metrics: dict[str, Any]) -> float:
    """Seconds the runs behind ``metrics`` took, all seeds together."""
    per_seed = metrics.get("per_seed") or {"": metrics["models"]}
    return round(
        sum(
            row.get("total_seconds") or 0.0
            for rows in per_seed.values()
            for row in rows.values()
        ),
        3,
    )


def _sweep_record(config, sizes, seeds, results, runs, out_dir) -> dict[str, Any]:
    rows = []
    for k in sizes:
        metrics = results[k]
        for name, row in metrics["models"].items():
            entry = {"n_components": k, "model": name, "n_seeds": len(seeds)}
            for column in METRIC_COLUMNS:
                entry[column] = row.get(column)
                entry[f"{column}_std"] = (
                    metrics.get("std", {}).get(name, {}).get(column)
                )
            rows.append(entry)
    first = results[sizes[0]]
    settings = config.model_dump(mode="json")
    for key in ("n_components", "seed"):
        settings.pop(key)
    return {
        "dataset": first["dataset"],
        "data_source": first["data_source"],
        "n_train": first["n_train"],
        "n_test": first["n_test"],
        "sizes": list(sizes),
        "seeds": list(seeds),
        "models": list(first["models"]),
        "config": {**settings, "n_components": list(sizes), "seeds": list(seeds)},
        "pca_explained_variance_ratio": _pca_curve(out_dir, max(sizes), seeds),
        "runs": runs,
        "rows": rows,
    }


def _pca_curve(out_dir: Path, k: int, seeds: Sequence[int]) -> list[float] | None:
    """PCA's explained-variance ratio per component, from the largest size's run."""
    folder = out_dir / f"d{k}"
    if len(seeds) > 1:
        folder = folder / f"seed{seeds[0]}"
    path = folder / "models" / "pca.npz"
    if not path.is_file():
        return None
    return [float(v) for v in read_npz(path)["explained_variance_ratio_"]]


def sweep_csv(sweep: dict[str, Any]) -> str:
    """``sweep.json``'s rows as CSV: one row per size and model."""
    columns = ["n_components", "model", "n_seeds"]
    for column in METRIC_COLUMNS:
        columns += [column, f"{column}_std"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in sweep["rows"]:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()
