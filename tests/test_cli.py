"""The command line end to end, on a real MNIST subset."""

import csv
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from latentbench.cli import app
from latentbench.metrics import METRIC_RANGES
from latentbench.models import ConvAutoencoder, FCAutoencoder, load_pca

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["--quiet", *map(str, args)])


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("runs") / "short"
    result = invoke(
        "compare",
        "--data-dir",
        mnist_dir,
        "--n-train",
        4000,
        "--n-test",
        1000,
        "--max-epochs",
        4,
        "--batch-size",
        128,
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_compare_prints_the_table(short_run):
    _, output = short_run
    for text in ("mnist (local), 2 components, 1,000 test images", "pca", "fc", "cnn"):
        assert text in output


def test_compare_writes_a_complete_run_folder(short_run):
    out, _ = short_run
    for name in (
        "config.json",
        "environment.json",
        "metrics.json",
        "metrics.csv",
        "models/pca.npz",
        "models/fc/checkpoints/best.ckpt",
        "models/cnn/checkpoints/last.ckpt",
        "models/fc/log/metrics.csv",
        "figures/scatter_pca.png",
        "figures/scatter_all.png",
        "embeddings/cnn.npz",
    ):
        assert (out / name).is_file(), name
    assert json.loads((out / "status.json").read_text())["state"] == "complete"
    env = json.loads((out / "environment.json").read_text())
    assert env["data_source"] == "local" and env["data_verified"]
    assert len(env["payload_sha256"]) == 4
    config = json.loads((out / "config.json").read_text())
    assert config["n_components"] == 2 and config["models"] == ["pca", "fc", "cnn"]


def test_metrics_are_in_range_and_plausible(short_run):
    out, _ = short_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "mnist" and metrics["data_source"] == "local"
    assert list(metrics["models"]) == ["pca", "fc", "cnn"]
    for name, row in metrics["models"].items():
        for metric, (low, high) in METRIC_RANGES.items():
            assert low <= row[metric] <= high, (name, metric)
    pca, fc, cnn = (metrics["models"][m] for m in ("pca", "fc", "cnn"))
    assert (
        pca["params"] == 3 * 784 and fc["params"] == 219_866 and cnn["params"] == 5_891
    )
    assert pca["recon_mse"] == pytest.approx(0.056, abs=0.004)
    assert fc["epochs"] == 4 and pca["epochs"] is None
    # Untrained autoencoders rebuild the mean image at best (MSE about 0.1).
    assert fc["recon_mse"] < 0.075 and cnn["recon_mse"] < 0.09
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["model"] for r in rows] == ["pca", "fc", "cnn"]
    assert float(rows[0]["knn_accuracy"]) == pytest.approx(pca["knn_accuracy"])


def test_saved_models_reproduce_the_saved_embeddings(short_run, mnist):
    out, _ = short_run
    X = mnist.test.X[:1000]
    pca_Z = np.load(out / "embeddings/pca.npz")["Z"]
    np.testing.assert_allclose(
        load_pca(out / "models/pca.npz").transform(X.reshape(1000, -1).numpy()),
        pca_Z,
        rtol=1e-4,
        atol=1e-5,
    )
    for name, cls in (("fc", FCAutoencoder), ("cnn", ConvAutoencoder)):
        saved = np.load(out / f"embeddings/{name}.npz")
        np.testing.assert_array_equal(saved["y"], mnist.test.y[:1000])
        model = cls.load_from_checkpoint(out / f"models/{name}/checkpoints/best.ckpt")
        with torch.no_grad():
            Z = model.eval().encode(X).numpy()
        np.testing.assert_allclose(Z, saved["Z"], rtol=1e-5, atol=1e-5)


def test_figures_are_real_images(short_run):
    from PIL import Image

    out, _ = short_run
    with Image.open(out / "figures/scatter_all.png") as image:
        assert image.width > 1200 and image.height > 400
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 10  # not blank


def test_second_run_into_the_same_folder_is_refused(short_run):
    out, _ = short_run
    result = invoke("compare", "--models", "pca", "--out", out)
    assert result.exit_code == 2
    assert "already exists and is not empty" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--models", "pca,vea"], "unknown model 'vea' (did you mean 'vae'?)"),
        (["--models", "pca,fcc"], "did you mean 'fc'"),
        (["--n-components", "0"], "--n-components = 0"),
        (["--n-components", "784"], "less than or equal to 783"),
        (
            ["--learning-rate", "-1"],
            "--learning-rate = -1.0: Input should be greater than 0",
        ),
        (["--batch-size", "0"], "--batch-size = 0"),
        (["--dataset", "cifar"], "--dataset = 'cifar'"),
        (["--accelerator", "tpu"], "--accelerator = 'tpu'"),
        (["--out", "."], "already exists and is not empty"),
    ],
)
def test_bad_options_get_one_clear_line(tmp_path, args, message):
    if "--out" not in args:
        args = [*args, "--out", tmp_path / "run"]
    result = invoke("compare", *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--accelerator", "gpu"], "--accelerator gpu was asked for but torch sees"),
        (["--n-train", "50", "--n-components", "60"], "--n-components 60 is more than"),
        (["--data-dir", "EMPTY"], "holds no MNIST files"),
    ],
)
def test_input_refused_after_checks_leaves_no_folder(
    tmp_path, mnist_dir, args, message
):
    if torch.cuda.is_available() and "gpu" in args:
        pytest.skip("a GPU is present")
    (tmp_path / "empty").mkdir()
    args = [str(tmp_path / "empty") if a == "EMPTY" else a for a in args]
    if "--data-dir" not in args:
        args += ["--data-dir", str(mnist_dir)]
    result = invoke("compare", *args, "--models", "pca", "--out", tmp_path / "run")
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def test_out_that_is_a_file_is_named(tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    result = invoke("compare", "--out", target)
    assert result.exit_code == 2
    assert f"--out {target} is a file" in " ".join(result.output.split())


def test_summary_prints_layers_and_total():
    result = invoke("summary", "cnn", "--n-components", "2")
    assert result.exit_code == 0
    assert "ConvTranspose2d" in result.output and "[1, 8, 15, 15]" in result.output
    assert "total trainable parameters: 5,891" in result.output
    result = invoke("summary", "fc")
    assert "219,866" in result.output


def test_summary_refuses_an_unknown_model():
    result = invoke("summary", "rnn")
    assert result.exit_code == 2
    assert "unknown model 'rnn'" in result.output


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("compare", "train", "summary"):
        assert command in result.output
