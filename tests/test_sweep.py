"""Sweeps over sizes and seeds: layout, aggregates, and reuse of finished sizes."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import latentbench.sweep as sweep_module
from latentbench.cli import app
from latentbench.config import CompareConfig
from latentbench.errors import RunFolderError
from latentbench.sweep import aggregate, run_sweep


@pytest.fixture
def tiny(mnist_dir):
    return CompareConfig(
        data_dir=mnist_dir,
        models=["pca"],  # reuse and layout need no training; seeds use fc below
        n_train=1000,
        n_val=500,
        n_test=300,
        max_epochs=1,
        batch_size=128,
    )


def _spy(monkeypatch):
    calls = []
    real = sweep_module.run_compare

    def counted(config, out_dir, progress=True):
        calls.append(config.n_components)
        return real(config, out_dir, progress=progress)

    monkeypatch.setattr(sweep_module, "run_compare", counted)
    return calls


def test_sweep_writes_results_and_reuses_finished_sizes(tiny, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    calls = _spy(monkeypatch)
    first = run_sweep(tiny, [3, 2], [0], out, progress=False)

    assert calls == [2, 3] and first["sizes"] == [2, 3]
    for name in ("sweep.json", "sweep.csv", "report.html", "d2/report.html"):
        assert (out / name).is_file(), name
    for name in ("mse_vs_components", "knn_accuracy_vs_components"):
        assert (out / f"figures/{name}.png").is_file()
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [(r["n_components"], r["model"]) for r in rows] == [
        ("2", "pca"),
        ("3", "pca"),
    ]
    d3 = json.loads((out / "d3/metrics.json").read_text())
    assert float(rows[1]["recon_mse"]) == pytest.approx(
        d3["models"]["pca"]["recon_mse"]
    )
    assert len(first["pca_explained_variance_ratio"]) == 3
    stamp = (out / "d2/metrics.json").stat().st_mtime_ns

    calls.clear()
    second = run_sweep(tiny, [2, 3, 5], [0], out, progress=False)

    assert calls == [5]  # 2 and 3 were complete with the same settings
    assert [r["reused"] for r in second["runs"]] == [True, True, False]
    assert (out / "d2/metrics.json").stat().st_mtime_ns == stamp
    assert second["rows"][:2] == first["rows"]


def test_sweep_refuses_a_size_computed_with_other_settings(tiny, tmp_path):
    out = tmp_path / "sweep"
    run_sweep(tiny, [2], [0], out, False)
    finished = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    changed = tiny.model_copy(update={"max_epochs": 2})
    with pytest.raises(RunFolderError, match="max_epochs 1 there, 2 here"):
        run_sweep(changed, [2, 3], [0], out, progress=False)
    # The refused sweep wrote nothing: the finished one still says complete.
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == finished
    assert json.loads((out / "status.json").read_text())["state"] == "complete"


def test_sweep_refuses_a_folder_that_is_not_a_sweep(tiny, tmp_path):
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(RunFolderError, match="already exists and is not empty"):
        run_sweep(tiny, [2], [0], tmp_path, progress=False)


def test_aggregate_is_mean_and_sample_deviation():
    per_seed = {
        seed: {
            "dataset": "mnist",
            "n_components": 2,
            "models": {"pca": {"recon_mse": mse, "knn_accuracy": 0.5, "epochs": None}},
        }
        for seed, mse in ((0, 0.05), (1, 0.06), (2, 0.07))
    }
    result = aggregate(per_seed)
    assert result["seeds"] == [0, 1, 2] and result["n_components"] == 2
    assert result["models"]["pca"]["recon_mse"] == pytest.approx(0.06)
    assert result["std"]["pca"]["recon_mse"] == pytest.approx(0.01)
    assert result["std"]["pca"]["knn_accuracy"] == 0.0
    assert result["models"]["pca"]["epochs"] is None


def test_sweep_over_seeds_nests_seed_folders(tiny, tmp_path):
    out = tmp_path / "sweep"
    result = run_sweep(tiny, [2], [0, 1], out, False)
    assert (out / "d2/seed0/metrics.json").is_file()
    assert (out / "d2/seed1/metrics.json").is_file()
    assert result["rows"][0]["recon_mse_std"] is not None
    again = run_sweep(tiny, [2], [0, 1], out, False)
    assert again["runs"][0]["reused"]


def test_cli_compare_seeds_runs_a_folder_per_seed_and_aggregates(tmp_path, mnist_dir):
    out = tmp_path / "seeds"
    args = ["--data-dir", str(mnist_dir), "--models", "pca,fc", "--max-epochs", "1"]
    args += ["--n-train", "1000", "--n-test", "300", "--seeds", "0,1"]
    result = CliRunner().invoke(app, ["--quiet", "compare", *args, "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert "means over seeds 0, 1" in result.output
    per_seed = [json.loads((out / f"seed{s}/metrics.json").read_text()) for s in (0, 1)]
    seeds = [
        json.loads((out / f"seed{s}/config.json").read_text())["seed"] for s in (0, 1)
    ]
    assert seeds == [0, 1]
    metrics = json.loads((out / "metrics.json").read_text())
    values = [m["models"]["fc"]["recon_mse"] for m in per_seed]
    assert metrics["models"]["fc"]["recon_mse"] == pytest.approx(np.mean(values))
    assert metrics["std"]["fc"]["recon_mse"] == pytest.approx(np.std(values, ddof=1))
    assert json.loads((out / "status.json").read_text())["state"] == "complete"
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert "recon_mse,recon_mse_std" in header
    text = (out / "report.html").read_text()
    assert "±" in text and "seed1/report.html" in text


def test_cli_sweep_prints_the_table_and_reuses(tmp_path, mnist_dir):
    out = tmp_path / "s"
    args = ["--quiet", "sweep", "--data-dir", str(mnist_dir), "--models", "pca"]
    args += ["--n-train", "1000", "--n-test", "300", "--n-components", "2"]
    args += ["--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "PCA var." in result.output
    result = CliRunner().invoke(app, args)
    assert "reused sizes 2" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n-components", "2,x"], "--n-components '2,x' is not a comma list"),
        (["--n-components", "2,2"], "names a value twice"),
        (["--n-components", "2,900"], "less than or equal to 783"),
        (["--seeds", ""], "--seeds is empty"),
    ],
)
def test_sweep_bad_options_get_one_clear_line(tmp_path, args, message):
    result = CliRunner().invoke(
        app, ["--quiet", "sweep", *args, "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "s").exists()
