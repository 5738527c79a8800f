"""UMAP and t-SNE baselines in compare, on a real MNIST subset."""

import json
import shutil
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose
from typer.testing import CliRunner

from latentbench import compare
from latentbench._io import read_npz
from latentbench.cli import app
from latentbench.compare import resume_compare, run_compare
from latentbench.config import CompareConfig, build
from latentbench.errors import ConfigError, MissingDependencyError
from latentbench.models.manifold import fit_subsample, import_manifold
from latentbench.report import findings

MANIFOLD = ("umap", "tsne")
N_TRAIN, N_TEST, FIT_SIZE = 2000, 500, 1500


def _config(mnist_dir, **changes):
    values = {
        "data_dir": mnist_dir,
        "models": ["pca", *MANIFOLD],
        "n_train": N_TRAIN,
        "n_val": 500,
        "n_test": N_TEST,
        # Smaller than the training set, so that the subsample path is the one run.
        "manifold_fit_size": FIT_SIZE,
    }
    return CompareConfig(**{**values, **changes})


@pytest.fixture(scope="module")
def manifold_run(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("manifold") / "run"
    metrics = run_compare(_config(mnist_dir), out, progress=False)
    return out, metrics


@pytest.mark.parametrize("name", MANIFOLD)
def test_knn_accuracy_is_well_above_pca(manifold_run, name):
    # 2 components: PCA's 5-NN accuracy is near 0.4 here, UMAP's and t-SNE's near
    # 0.8; with the wrong labels for the subsample's codes they would be near 0.1.
    rows = manifold_run[1]["models"]
    assert rows[name]["knn_accuracy"] > rows["pca"]["knn_accuracy"] + 0.25


@pytest.mark.parametrize("name", MANIFOLD)
def test_no_decoder_means_no_mse_no_params(manifold_run, name):
    out, metrics = manifold_run
    row = metrics["models"][name]
    assert row["recon_mse"] is None
    assert row["params"] is None
    assert row["epochs"] is None
    assert json.loads((out / "results" / f"{name}.json").read_text()) == row
    assert metrics["models"]["pca"]["recon_mse"] is not None


@pytest.mark.parametrize("name", MANIFOLD)
def test_fit_on_the_seeded_subsample_and_test_set_transformed(manifold_run, name):
    out, _ = manifold_run
    saved = read_npz(out / "models" / f"{name}.npz")
    np.testing.assert_array_equal(saved["fit_index"], fit_subsample(N_TRAIN, 1500, 0))
    assert saved["Z_fit"].shape == (FIT_SIZE, 2)
    embedding = read_npz(out / "embeddings" / f"{name}.npz")
    assert embedding["Z"].shape == (N_TEST, 2)
    assert np.isfinite(embedding["Z"]).all()
    # The confusion matrix's predictions agree with the accuracy in the table.
    accuracy = np.mean(embedding["y_pred"] == embedding["y"])
    rows = json.loads((out / "metrics.json").read_text())["models"]
    assert_allclose(accuracy, rows[name]["knn_accuracy"], atol=1e-12)


def test_figures_and_report_skip_what_needs_a_decoder(manifold_run):
    out, _ = manifold_run
    sample = read_npz(out / "reconstructions.npz")
    assert "X_hat_pca" in sample
    assert not any(f"X_hat_{name}" in sample for name in MANIFOLD)
    assert sorted(p.name for p in (out / "latent_maps").iterdir()) == ["pca.npz"]
    assert (out / "figures" / "scatter_umap.png").is_file()
    assert (out / "figures" / "scatter_tsne.png").is_file()

    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<td>UMAP</td>" in html and "<td>t-SNE</td>" in html
    sentences = findings(out)
    assert any("UMAP and t-SNE have no decoder" in s for s in sentences)
    # Only PCA has an MSE: no sentence compares reconstruction errors.
    assert not any("reconstruction error (MSE" in s for s in sentences)

    rows = {r.split(",")[0]: r for r in (out / "metrics.csv").read_text().split()}
    assert rows["umap"].split(",")[1] == ""  # recon_mse, the first metric column


def test_resume_refits_only_the_missing_model_and_agrees(
    manifold_run, tmp_path, monkeypatch
):
    out, metrics = manifold_run
    copy = shutil.copytree(out, tmp_path / "run")
    (copy / "results" / "tsne.json").unlink()
    (copy / "embeddings" / "tsne.npz").unlink()
    (copy / "status.json").write_text('{"state": "running"}')
    fitted = []
    real = compare.embed_manifold
    monkeypatch.setattr(
        compare,
        "embed_manifold",
        lambda name, *a: fitted.append(name) or real(name, *a),
    )

    resumed = resume_compare(copy, progress=False)

    assert fitted == ["tsne"]
    before, after = metrics["models"]["tsne"], resumed["models"]["tsne"]
    for column in ("knn_accuracy", "silhouette", "trustworthiness", "gmm_ari"):
        assert_allclose(after[column], before[column], rtol=1e-6)
    assert_allclose(
        read_npz(copy / "embeddings" / "tsne.npz")["Z"],
        read_npz(out / "embeddings" / "tsne.npz")["Z"],
        rtol=1e-6,
    )


def test_fit_subsample_is_seeded_sorted_and_whole_when_small():
    index = fit_subsample(1000, 100, seed=3)
    assert len(index) == len(np.unique(index)) == 100
    assert np.all(np.diff(index) > 0)
    np.testing.assert_array_equal(index, fit_subsample(1000, 100, seed=3))
    assert not np.array_equal(index, fit_subsample(1000, 100, seed=4))
    np.testing.assert_array_equal(fit_subsample(50, 100, seed=3), np.arange(50))


@pytest.mark.parametrize("name, module", [("umap", "umap"), ("tsne", "openTSNE")])
def test_missing_extra_names_it_and_leaves_no_folder(
    name, module, mnist_dir, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"latentbench\[manifold\]"):
        import_manifold(name)
    with pytest.raises(MissingDependencyError, match=f"model '{name}' needs"):
        run_compare(_config(mnist_dir, models=["pca", name]), tmp_path / "run")
    assert not (tmp_path / "run").exists()

    result = CliRunner().invoke(
        app,
        [
            "--quiet",
            "compare",
            "--models",
            f"pca,{name}",
            "--out",
            str(tmp_path / "cli"),
        ],
    )
    assert result.exit_code == 2
    assert "pip install 'latentbench[manifold]'" in " ".join(result.output.split())


def test_tsne_with_more_than_three_components_is_refused():
    with pytest.raises(ConfigError, match="tsne embeds into at most 3 dimensions"):
        build(CompareConfig, {"models": ["pca", "tsne"], "n_components": 5}, "option")
    assert build(CompareConfig, {"models": ["umap"], "n_components": 5}, "x")
