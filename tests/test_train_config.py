"""`latentbench train CONFIG.json` on configs in the reference study's format."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from latentbench.cli import app
from latentbench.models import FCAutoencoder, load_pca

runner = CliRunner()


def write_config(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(fields))
    return path


def test_fc_config_trains_and_saves_model_beside_it(tmp_path, mnist_dir):
    config = write_config(
        tmp_path / "models" / "fc_k2",
        model="fc",
        n_components=2,
        learning_rate=1e-3,
        batch_size=512,
        max_epochs=1,
        use_gpu=False,
        num_workers=4,
        data_dir=str(mnist_dir),
    )
    result = runner.invoke(app, ["--quiet", "train", str(config)])
    assert result.exit_code == 0, result.output
    assert "after 1 epoch(s); validation MSE" in result.output
    model = FCAutoencoder.load_from_checkpoint(config.parent / "model.ckpt")
    assert model.n_components == 2


def test_pca_config_saves_npz(tmp_path, mnist_dir):
    config = write_config(tmp_path / "pca_k3", model="pca", n_components=3)
    result = runner.invoke(
        app, ["--quiet", "train", str(config), "--data-dir", str(mnist_dir)]
    )
    assert result.exit_code == 0, result.output
    pca = load_pca(config.parent / "model.npz")
    assert pca.components_.shape == (3, 784)
    np.testing.assert_allclose(np.linalg.norm(pca.components_, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"model": "rnn", "n_components": 2}, "model = 'rnn'"),
        (
            {"model": "fc", "n_components": 2, "lerning_rate": 0.1},
            "unknown key 'lerning_rate' (did you mean 'learning_rate'?)",
        ),
        ({"model": "fc"}, "required key 'n_components' is missing"),
        ({"model": "fc", "n_components": 2, "batch_size": -5}, "batch_size = -5"),
    ],
)
def test_bad_config_fields_are_named(tmp_path, fields, message):
    config = write_config(tmp_path / "bad", **fields)
    result = runner.invoke(app, ["train", str(config)])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "bad" / "model.ckpt").exists()


def test_config_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("model = 'fc'\n")
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 2
    assert f"{path} is not valid JSON" in result.output.replace("\n", "")
