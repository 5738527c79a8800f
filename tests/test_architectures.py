"""Architectures as data, training options, the VAE, denoising and presets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from latentbench.cli import app
from latentbench.config import CompareConfig, build
from latentbench.errors import ConfigError
from latentbench.export import export_safetensors, load_autoencoder, load_safetensors
from latentbench.models import (
    AUTOENCODERS,
    ConvAutoencoder,
    FCAutoencoder,
    VariationalAutoencoder,
)
from latentbench.presets import PRESETS, preset_settings
from latentbench.training import TrainSettings, fit_autoencoder, init_autoencoder

runner = CliRunner()


def _linear_widths(module: nn.Module) -> list[tuple[int, int]]:
    return [
        (m.in_features, m.out_features)
        for m in module.modules()
        if isinstance(m, nn.Linear)
    ]


def test_widths_build_exactly_the_layers_asked_for_asymmetric_pairs_included():
    model = FCAutoencoder(2, hidden=[512, 256], decoder_hidden=[64])
    assert _linear_widths(model.encoder) == [(784, 512), (512, 256), (256, 2)]
    assert _linear_widths(model.decoder) == [(2, 64), (64, 784)]
    expected = (784 * 512 + 512) + (512 * 256 + 256) + (256 * 2 + 2)
    expected += (2 * 64 + 64) + (64 * 784 + 784)
    assert model.n_params == expected
    x = torch.rand(5, 1, 28, 28)
    assert model(x).shape == x.shape and model.encode(x).shape == (5, 2)


def test_default_layouts_are_the_reference_ones():
    assert _linear_widths(FCAutoencoder(2).encoder) == [
        (784, 128),
        (128, 64),
        (64, 12),
        (12, 2),
    ]
    # No normalisation or dropout unless asked for.
    for cls in (FCAutoencoder, ConvAutoencoder):
        kinds = {type(m) for m in cls(2).modules()}
        assert not kinds & {nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout}


@pytest.mark.parametrize("channels", [[8], [8, 16], [4, 8, 16, 32]])
def test_conv_channels_halve_the_image_and_come_back_to_28x28(channels):
    model = ConvAutoencoder(3, channels=channels, dense=20)
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == channels
    x = torch.rand(4, 1, 28, 28)
    assert model.encode(x).shape == (4, 3)
    assert model(x).shape == x.shape


def test_batch_norm_dropout_activation_and_output_are_where_asked():
    model = FCAutoencoder(
        2,
        hidden=[32, 16],
        batch_norm=True,
        dropout=0.25,
        activation="gelu",
        output_activation="identity",
    )
    kinds = [type(m) for m in model.encoder]
    assert kinds == [
        nn.Flatten,
        nn.Linear,
        nn.BatchNorm1d,
        nn.GELU,
        nn.Dropout,
        nn.Linear,
        nn.BatchNorm1d,
        nn.GELU,
        nn.Dropout,
        nn.Linear,
    ]
    assert not any(isinstance(m, nn.Sigmoid) for m in model.decoder)
    conv = ConvAutoencoder(2, channels=[4, 8], batch_norm=True, activation="silu")
    assert sum(isinstance(m, nn.BatchNorm2d) for m in conv.modules()) == 3
    assert any(isinstance(m, nn.SiLU) for m in conv.modules())


def test_bce_loss_is_binary_cross_entropy_and_differs_from_mse():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28)
    mse = FCAutoencoder(2, loss="mse").eval()
    bce = FCAutoencoder(2, loss="bce").eval()
    bce.load_state_dict(mse.state_dict())
    x_hat = mse(x)
    assert torch.isclose(mse.loss(x), F.mse_loss(x_hat, x))
    assert torch.isclose(bce.loss(x), F.binary_cross_entropy(x_hat, x))
    assert not torch.isclose(mse.loss(x), bce.loss(x))


def test_vae_kl_weight_adds_exactly_the_weighted_kl_term():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 28, 28)
    plain = VariationalAutoencoder(2, kl_weight=0.0).eval()
    heavy = VariationalAutoencoder(2, kl_weight=3.0).eval()
    heavy.load_state_dict(plain.state_dict())
    mean, log_var = plain.posterior(x)
    kl = -0.5 * torch.sum(1 + log_var - mean**2 - log_var.exp())
    per_pixel = kl / (len(x) * 784)
    assert per_pixel > 0
    assert torch.isclose(heavy.loss(x) - plain.loss(x), 3.0 * per_pixel, rtol=1e-4)
    # The embedding is the posterior mean.
    assert torch.equal(plain.encode(x), mean)


def _train(model, data, tmp_path, epochs=3):
    settings = TrainSettings(max_epochs=epochs, patience=epochs, progress=False)
    return fit_autoencoder(model, data, settings, tmp_path)


def test_a_larger_kl_weight_pulls_the_codes_towards_the_prior(mnist_small, tmp_path):
    """Trained on real digits, the KL weight changes what the model learns."""
    kl = {}
    for weight in (0.0, 1.0):
        model = init_autoencoder("vae", 2, 1e-3, seed=0)
        model.kl_weight = weight
        _train(model, mnist_small, tmp_path / str(weight))
        with torch.no_grad():
            mean, log_var = model.eval().posterior(mnist_small.test.X)
        per_image = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(dim=1)
        kl[weight] = per_image.mean().item()
    # Without the KL term nothing keeps the posterior near the prior N(0, I).
    assert kl[0.0] > 3 * kl[1.0], kl


def test_denoising_corrupts_training_inputs_only():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 28, 28)
    model = FCAutoencoder(2, noise=0.5)
    noisy = model.corrupt(x)
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert (noisy - x).abs().mean() > 0.1
    assert torch.equal(FCAutoencoder(2).corrupt(x), x)
    # Validation is on the clean images.
    assert torch.isclose(model.validation_step(x, 0), model.loss(x))


@pytest.mark.parametrize(
    ("schedule", "final_ratio"), [("constant", 1.0), ("cosine", 0.0), ("onecycle", 0.0)]
)
def test_learning_rate_schedules_end_where_they_should(
    mnist_small, tmp_path, schedule, final_ratio
):
    model = init_autoencoder("fc", 2, 1e-3, seed=0)
    model.lr_schedule = schedule
    settings = TrainSettings(max_epochs=2, patience=2, progress=False)
    fit_autoencoder(model, mnist_small, settings, tmp_path)
    lr = model.trainer.optimizers[0].param_groups[0]["lr"]
    # Within 2% of the end point: the last step of the schedule is not taken.
    assert lr == pytest.approx(1e-3 * final_ratio, abs=2e-5)


def test_weight_decay_trains_with_adamw_and_shrinks_the_weights(mnist_small, tmp_path):
    norms = {}
    # AdamW shrinks each weight by lr * decay per step: 2% a step here.
    for decay in (0.0, 20.0):
        model = init_autoencoder("fc", 2, 1e-3, seed=0)
        model.weight_decay = decay
        _train(model, mnist_small, tmp_path / str(decay), epochs=2)
        optimizer = model.trainer.optimizers[0]
        assert isinstance(optimizer, torch.optim.AdamW) == (decay > 0)
        norms[decay] = model.encoder[1].weight.norm().item()
    assert norms[20.0] < 0.8 * norms[0.0]


def test_custom_architectures_reload_from_checkpoints_and_safetensors(
    mnist_small, tmp_path
):
    config = build(
        CompareConfig,
        {"encoder": [784, 64, 3], "decoder": [3, 32, 784], "batch_norm": True},
        "option",
    )
    x = mnist_small.test.X[:50]
    for name in ("fc", "vae"):
        model = init_autoencoder(name, 3, 1e-3, seed=0, options=config)
        result = _train(model, mnist_small, tmp_path / name, epochs=1)
        loaded = load_autoencoder(result.best_checkpoint)
        assert type(loaded) is AUTOENCODERS[name]
        with torch.no_grad():
            Z = loaded.encode(x)
            assert Z.shape == (50, 3)
            export_safetensors(loaded, tmp_path / f"{name}.safetensors")
            again = load_safetensors(tmp_path / f"{name}.safetensors")
            assert torch.allclose(again.encode(x), Z)
            assert torch.allclose(again(x), loaded(x))


def test_config_refuses_inconsistent_architectures():
    cases = {
        "ends in 3 units but n_components is 2": {
            "encoder": [784, 64, 3],
            "n_components": 2,
        },
        "decoder starts at 5 units but the code has 3": {
            "encoder": [784, 64, 3],
            "decoder": [5, 784],
        },
        "decoder ends in 700 units": {"encoder": [784, 3], "decoder": [3, 700]},
        "loss bce needs output_activation sigmoid": {
            "loss": "bce",
            "output_activation": "identity",
        },
        "dense needs channels": {"dense": 64},
        "shape the cnn model, which pca,fc does not include": {
            "channels": [8, 16],
            "models": ["pca", "fc"],
        },
        "shape the fc and vae models, which pca,cnn does not include": {
            "encoder": [784, 64, 2],
            "models": ["pca", "cnn"],
        },
    }
    for message, values in cases.items():
        with pytest.raises(ConfigError, match=message):
            build(CompareConfig, values, "option")
    # One line, naming the option and the rule, for a list too short.
    with pytest.raises(ConfigError) as short:
        build(CompareConfig, {"encoder": [784]}, "option")
    assert str(short.value) == "--encoder = 784: needs at least 2 values"
    with pytest.raises(ConfigError, match=r"^--channels item 1 = 0: Input should"):
        build(CompareConfig, {"channels": [0, 4]}, "option")
    # The code size follows the encoder when it is not given.
    assert build(CompareConfig, {"encoder": [784, 64, 7]}, "option").n_components == 7


def test_encoder_that_does_not_start_at_the_pixel_count_is_refused():
    config = build(CompareConfig, {"encoder": [700, 64, 2]}, "option")
    with pytest.raises(
        ConfigError, match="starts at 700 units but the images have 784"
    ):
        init_autoencoder("fc", 2, 1e-3, seed=0, options=config)


def test_cli_refuses_a_bad_width_list(tmp_path):
    result = runner.invoke(
        app, ["compare", "--encoder", "784,x,2", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "--encoder '784,x,2' is not a comma list of integers" in result.output


def test_presets_resolve_and_typed_options_override_them():
    settings = preset_settings("map2d")
    assert settings["preset"] == "map2d" and settings["n_components"] == 2
    with pytest.raises(ConfigError, match="did you mean 'map2d'"):
        preset_settings("map2")
    for preset in PRESETS.values():
        build(CompareConfig, preset_settings(preset.name), "option")


def test_preset_run_records_the_preset_and_the_overrides(mnist_dir, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "-q",
            "compare",
            "--preset",
            "map2d",
            "--encoder",
            "784,32,3",
            "--decoder",
            "3,32,784",
            "--max-epochs",
            "1",
            "--models",
            "fc,vae",
            "--data-dir",
            str(mnist_dir),
            "--n-train",
            "600",
            "--n-test",
            "200",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "map2d"
    assert config["encoder"] == [784, 32, 3] and config["n_components"] == 3
    assert config["max_epochs"] == 1 and config["batch_norm"] is True
    assert config["lr_schedule"] == "onecycle"
    metrics = json.loads((out / "metrics.json").read_text())["models"]
    assert set(metrics) == {"fc", "vae"}
    assert metrics["vae"]["params"] == metrics["fc"]["params"] + 32 * 3 + 3
    Z = np.load(out / "embeddings" / "vae.npz")["Z"]
    assert Z.shape == (200, 3) and np.isfinite(Z).all()


def _resolved(args: list[str]) -> dict:
    """The config compare would run for ``args``, without running it."""
    import typer

    from latentbench import cli

    seen = {}

    def capture(config, seeds, run_dir):
        seen["config"] = config
        raise typer.Exit(0)

    original = cli._compare_seeds
    cli._compare_seeds = capture
    try:
        result = runner.invoke(app, ["compare", *args, "--out", "unused"])
    finally:
        cli._compare_seeds = original
    assert result.exit_code == 0, result.output
    return seen["config"].model_dump()


def test_a_typed_code_size_resizes_the_presets_widths():
    config = _resolved(["--preset", "map2d", "--n-components", "5"])
    assert config["encoder"] == [784, 512, 256, 128, 5]
    assert config["decoder"] == [5, 128, 256, 512, 784]


def test_a_typed_encoder_replaces_the_presets_pair():
    config = _resolved(["--preset", "map2d", "--encoder", "784,64,3"])
    assert config["encoder"] == [784, 64, 3] and config["decoder"] is None
    assert config["n_components"] == 3 and config["batch_norm"] is True


def test_typed_models_drop_the_preset_layout_of_models_left_out():
    config = _resolved(["--preset", "compress30", "--models", "pca,fc"])
    assert config["models"] == ["pca", "fc"] and config["n_components"] == 30
    assert config["channels"] is None and config["dense"] is None
    assert config["loss"] == "bce" and config["batch_norm"] is True
    kept = _resolved(["--preset", "compress30", "--models", "cnn"])
    assert kept["channels"] == [32, 64] and kept["dense"] == 256
    widths = _resolved(["--preset", "deep30", "--models", "pca,cnn"])
    assert widths["encoder"] is None and widths["decoder"] is None
    assert widths["n_components"] == 30


def test_widths_that_do_not_fit_the_images_are_refused_before_the_folder(
    mnist_dir, tmp_path
):
    out = tmp_path / "never"
    result = runner.invoke(
        app,
        [
            "compare",
            "--models",
            "pca,fc",
            "--encoder",
            "700,2",
            "--data-dir",
            str(mnist_dir),
            "--n-train",
            "300",
            "--n-test",
            "100",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert "starts at 700 units but the images have 784 pixels" in result.output
    assert not out.exists()


def test_a_one_dimensional_embedding_is_drawn_and_reported(mnist_dir, tmp_path):
    out = tmp_path / "k1"
    result = runner.invoke(
        app,
        [
            "-q",
            "compare",
            "--models",
            "pca",
            "--n-components",
            "1",
            "--data-dir",
            str(mnist_dir),
            "--n-train",
            "300",
            "--n-test",
            "100",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "status.json").read_text())["state"] == "complete"
    assert (out / "report.html").stat().st_size > 0
    from latentbench.figures import plane

    Z = np.arange(10.0).reshape(10, 1)
    drawn = plane(Z)
    assert drawn.shape == (10, 2) and np.array_equal(drawn[:, 0], Z[:, 0])
    assert np.ptp(drawn[:, 1]) > 0
