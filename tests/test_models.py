import pickle

import pytest
import torch

from latentbench.errors import CheckpointError
from latentbench.models import ConvAutoencoder, FCAutoencoder
from latentbench.training import InMemoryBatches

MODELS = [FCAutoencoder, ConvAutoencoder]


@pytest.mark.parametrize(
    "cls, k, expected",
    [
        (FCAutoencoder, 2, 219_866),
        (ConvAutoencoder, 2, 5_891),
        (FCAutoencoder, 3, 219_891),
    ],
)
def test_parameter_counts(cls, k, expected):
    assert cls(k).n_params == expected


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("k", [1, 2, 10])
def test_shapes(cls, k):
    model = cls(k)
    x = torch.rand(5, 1, 28, 28)
    z = model.encode(x)
    assert z.shape == (5, k)
    x_hat = model.decode(z)
    assert x_hat.shape == x.shape
    assert 0.0 <= float(x_hat.min()) and float(x_hat.max()) <= 1.0


@pytest.mark.parametrize("cls", MODELS)
def test_loss_compares_each_image_with_its_own_reconstruction(cls, mnist_small):
    model = cls(2)
    x = mnist_small.test.X[:16]
    expected = ((model(x) - x) ** 2).mean()
    torch.testing.assert_close(model.loss(x), expected)
    # A perfect reconstruction costs nothing. The reference's (B, 28, 28) output
    # against (B, 1, 28, 28) inputs broadcast to every pair of images instead and
    # would charge it the mean distance between different digits.
    model.forward = lambda images: images.clone()
    assert float(model.loss(x)) == 0.0
    broadcast = torch.nn.functional.mse_loss(x.squeeze(1), x)
    assert float(broadcast) > 0.05


def test_loss_refuses_a_shape_mismatch():
    model = FCAutoencoder(2)
    model.decoder[-1] = torch.nn.Unflatten(1, (28, 28))  # the reference's output shape
    with pytest.raises(
        RuntimeError, match=r"differs from input shape \(4, 1, 28, 28\)"
    ):
        model.loss(torch.rand(4, 1, 28, 28))


@pytest.mark.parametrize("cls", MODELS)
def test_loss_falls_on_real_digits(cls, mnist_small):
    torch.manual_seed(0)
    model = cls(2)
    optimizer = model.configure_optimizers()
    X = mnist_small.train.X[:1500]
    before = float(model.loss(X))
    for _ in range(2):
        for x in InMemoryBatches(X, 32, shuffle=True):
            optimizer.zero_grad()
            model.loss(x).backward()
            optimizer.step()
    assert float(model.loss(X)) < 0.8 * before


def _reference_checkpoint(model: torch.nn.Module) -> dict:
    """A checkpoint laid out as Lightning 1.8 wrote it, with no hyper-parameters."""
    return {
        "epoch": 11,
        "global_step": 2580,
        "pytorch-lightning_version": "1.8.6",
        "state_dict": model.state_dict(),
        "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 11}}}},
        "callbacks": {
            "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}": {
                "wait_count": 0,
                "stopped_epoch": 0,
                "best_score": torch.tensor(0.04),
                "patience": 3,
            }
        },
        "optimizer_states": [],
        "lr_schedulers": [],
    }


@pytest.mark.parametrize("cls", MODELS)
def test_reference_checkpoint_loads(cls, tmp_path):
    source = cls(2)
    path = tmp_path / "reference.ckpt"
    torch.save(_reference_checkpoint(source), path)

    by_hand = cls.load_from_checkpoint(path, n_components=2, lr=1e-3)
    inferred = cls.load_from_checkpoint(path)

    x = torch.rand(3, 1, 28, 28)
    for loaded in (by_hand, inferred):
        torch.testing.assert_close(loaded.eval()(x), source.eval()(x))
    assert by_hand.learning_rate == 1e-3


def test_checkpoint_of_the_other_architecture_is_refused(tmp_path):
    path = tmp_path / "fc.ckpt"
    torch.save(_reference_checkpoint(FCAutoencoder(2)), path)
    with pytest.raises(CheckpointError, match="does not fit ConvAutoencoder"):
        ConvAutoencoder.load_from_checkpoint(path)


class _Payload:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(_Payload.marker),))


def test_checkpoint_that_runs_code_is_refused_and_runs_nothing(tmp_path):
    _Payload.marker = str(tmp_path / "payload-ran")
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {}, "x": _Payload()}, f)
    with pytest.raises(CheckpointError, match="refused to load .*weights_only=True"):
        FCAutoencoder.load_from_checkpoint(path)
    assert not (tmp_path / "payload-ran").exists()
